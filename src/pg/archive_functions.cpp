// orch._write_archive(name, query): writes the rows of `query` (one text
// column: a JSON line each) to a new gzip file `name` in
// orch.archive_directory, durably, and returns its size in bytes; and
// orch._remove_partial_archives. Only the pruning functions call them
// (they are revoked from PUBLIC): the directory is a superuser's setting
// and the query theirs.
#include <stdexcept>
#include <string>

#include "core/archive_file.hpp"
#include "pg/guards.hpp"
#include "pg/settings.hpp"

extern "C" {
PG_FUNCTION_INFO_V1(orch_write_archive);
PG_FUNCTION_INFO_V1(orch_remove_partial_archives);
}

namespace orch::pg {
namespace {

constexpr long kFetch = 500;
// A .partial file nothing wrote to for this long was left by a crash.
constexpr long kPartialIdleSeconds = 600;

bool is_plain_name(const std::string &name) {
  if (name.empty() || name[0] == '.') return false;
  for (char c : name)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  return true;
}

}  // namespace
}  // namespace orch::pg

using namespace orch::pg;

extern "C" Datum orch_write_archive(PG_FUNCTION_ARGS) {
  return cpp_entry([&] {
    std::string name, query, directory = settings.archive_directory ? settings.archive_directory : "";
    pg_call([&] {
      name = text_to_cstring(PG_GETARG_TEXT_PP(0));
      query = text_to_cstring(PG_GETARG_TEXT_PP(1));
    });
    if (directory.empty()) throw std::runtime_error("orch.archive_directory is not set");
    if (!is_plain_name(name)) throw std::runtime_error("an archive's name is a plain file name");
    orch::ArchiveFile file(directory, name);
    Portal portal = pg_call([&] {
      if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
      return SPI_cursor_open_with_args(nullptr, query.c_str(), 0, nullptr, nullptr, nullptr, true, 0);
    });
    for (;;) {
      std::uint64_t count = pg_call([&] {
        SPI_cursor_fetch(portal, true, kFetch);
        return static_cast<std::uint64_t>(SPI_processed);
      });
      if (count == 0) break;
      for (std::uint64_t i = 0; i < count; ++i) {
        std::string line;
        pg_call([&] {
          char *text = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
          if (text != nullptr) line.assign(text);
        });
        file.write_line(line);
      }
      pg_call([] { SPI_freetuptable(SPI_tuptable); });
    }
    pg_call([&] {
      SPI_cursor_close(portal);
      SPI_finish();
    });
    return Int64GetDatum(file.finish());
  });
}

// orch._remove_partial_archives(prefix): removes what a crash left in
// orch.archive_directory (the pruner calls it when it starts).
extern "C" Datum orch_remove_partial_archives(PG_FUNCTION_ARGS) {
  return cpp_entry([&] {
    std::string prefix, directory = settings.archive_directory ? settings.archive_directory : "";
    pg_call([&] { prefix = text_to_cstring(PG_GETARG_TEXT_PP(0)); });
    if (directory.empty() || !is_plain_name(prefix)) return Int32GetDatum(0);
    return Int32GetDatum(orch::ArchiveFile::remove_partials(directory, prefix, kPartialIdleSeconds));
  });
}
