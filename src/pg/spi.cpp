#include <map>
#include <stdexcept>
#include <utility>

#include "pg/spi.hpp"

extern "C" {
#include "utils/array.h"
}

namespace orch::pg {
namespace {

// Each of the workers' statements is parsed and planned once per session:
// the scheduler runs the same few every turn. PostgreSQL's plan cache
// re-plans them when what they use changes.
SPIPlanPtr prepared(const char *sql, int count, Oid *types) {
  static std::map<std::pair<std::string, int>, SPIPlanPtr> plans;
  auto key = std::make_pair(std::string(sql), count);
  if (auto found = plans.find(key); found != plans.end()) return found->second;
  SPIPlanPtr plan = SPI_prepare(sql, count, types);
  if (plan == nullptr) elog(ERROR, "pg_orch: could not prepare (%s): %s", SPI_result_code_string(SPI_result), sql);
  if (SPI_keepplan(plan) != 0) elog(ERROR, "pg_orch: could not keep the plan of: %s", sql);
  plans.emplace(std::move(key), plan);
  return plan;
}

}  // namespace

void begin_transaction() {
  pg_call([] {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    PushActiveSnapshot(GetTransactionSnapshot());
  });
}

void commit_transaction() {
  pg_call([] {
    SPI_finish();
    PopActiveSnapshot();
    CommitTransactionCommand();
    pgstat_report_stat(false);
    pgstat_report_activity(STATE_IDLE, nullptr);
  });
}

void abort_transaction() {
  // Cleans up SPI and the snapshot stack as well (AtEOXact_SPI).
  pg_call([] { AbortCurrentTransaction(); });
}

namespace {

// Executes `sql` with text parameters; the rows are in SPI_tuptable.
void execute(const char *sql, const std::vector<std::string> &args) {
  constexpr int kMaxArgs = 8;
  if (args.size() > kMaxArgs) throw std::logic_error("too many query arguments");
  pg_call([&] {
    Oid types[kMaxArgs];
    Datum values[kMaxArgs];
    int count = static_cast<int>(args.size());
    for (int i = 0; i < count; ++i) {
      types[i] = TEXTOID;
      values[i] = CStringGetTextDatum(args[i].c_str());
    }
    pgstat_report_activity(STATE_RUNNING, sql);
    int rc = SPI_execute_plan(prepared(sql, count, types), values, nullptr, false, 0);
    if (rc < 0) elog(ERROR, "pg_orch: query failed (%s): %s", SPI_result_code_string(rc), sql);
  });
}

void free_rows() {
  pg_call([] {
    if (SPI_tuptable) SPI_freetuptable(SPI_tuptable);
  });
}

}  // namespace

std::vector<std::string> query(const char *sql, const std::vector<std::string> &args) {
  execute(sql, args);
  std::vector<std::string> rows;
  pg_call([&] {
    for (uint64 i = 0; i < SPI_processed; ++i) {
      char *value = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
      rows.emplace_back(value ? value : "");
    }
  });
  free_rows();
  return rows;
}

void for_each_row(const char *sql, const std::vector<std::string> &args, const std::function<void(const Row &)> &each) {
  execute(sql, args);
  // The rows stay valid until the next query; an exception aborts the
  // transaction, which frees them.
  SPITupleTable *rows = pg_call([] { return SPI_tuptable; });
  std::uint64_t count = pg_call([] { return static_cast<std::uint64_t>(SPI_processed); });
  for (std::uint64_t i = 0; i < count; ++i) each(Row(rows->vals[i], rows->tupdesc));
  free_rows();
}

Datum Row::value(const char *column, Oid type, bool &is_null) const {
  int number = pg_call([&] { return SPI_fnumber(desc_, column); });
  if (number <= 0) throw std::logic_error(std::string("pg_orch: no column ") + column);
  Oid actual = pg_call([&] { return SPI_gettypeid(desc_, number); });
  if (actual != type) throw std::logic_error(std::string("pg_orch: column ") + column + " has another type");
  return pg_call([&] { return SPI_getbinval(tuple_, desc_, number, &is_null); });
}

bool Row::is_null(const char *column) const {
  int number = pg_call([&] { return SPI_fnumber(desc_, column); });
  if (number <= 0) throw std::logic_error(std::string("pg_orch: no column ") + column);
  bool null;
  pg_call([&] { (void)SPI_getbinval(tuple_, desc_, number, &null); });
  return null;
}

bool Row::boolean(const char *column) const {
  bool null;
  Datum datum = value(column, BOOLOID, null);
  if (null) throw std::logic_error(std::string("pg_orch: column ") + column + " is NULL");
  return DatumGetBool(datum);
}

std::int64_t Row::int8(const char *column) const {
  std::optional<std::int64_t> value = int8_or_null(column);
  if (!value) throw std::logic_error(std::string("pg_orch: column ") + column + " is NULL");
  return *value;
}

std::optional<std::int64_t> Row::int8_or_null(const char *column) const {
  bool null;
  Datum datum = value(column, INT8OID, null);
  return null ? std::nullopt : std::optional<std::int64_t>(DatumGetInt64(datum));
}

std::optional<std::int32_t> Row::int4(const char *column) const {
  bool null;
  Datum datum = value(column, INT4OID, null);
  return null ? std::nullopt : std::optional<std::int32_t>(DatumGetInt32(datum));
}

std::string Row::text(const char *column) const {
  bool null;
  Datum datum = value(column, TEXTOID, null);
  std::string result;
  if (null) return result;
  pg_call([&] {
    struct varlena *string = pg_detoast_datum_packed(reinterpret_cast<struct varlena *>(DatumGetPointer(datum)));
    result.assign(VARDATA_ANY(string), VARSIZE_ANY_EXHDR(string));
  });
  return result;
}

std::vector<std::string> Row::text_array(const char *column) const {
  bool null;
  Datum datum = value(column, TEXTARRAYOID, null);
  std::vector<std::string> result;
  if (null) return result;
  pg_call([&] {
    Datum *elements;
    bool *nulls;
    int count;
    deconstruct_array(DatumGetArrayTypeP(datum), TEXTOID, -1, false, TYPALIGN_INT, &elements, &nulls, &count);
    for (int i = 0; i < count; ++i) {
      if (nulls[i]) elog(ERROR, "pg_orch: column %s has a NULL element", column);
      struct varlena *element = pg_detoast_datum_packed(reinterpret_cast<struct varlena *>(DatumGetPointer(elements[i])));
      result.emplace_back(VARDATA_ANY(element), VARSIZE_ANY_EXHDR(element));
    }
  });
  return result;
}

std::string Row::jsonb_text(const char *column) const {
  bool null;
  Datum datum = value(column, JSONBOID, null);
  std::string result;
  if (null) return result;
  pg_call([&] {
    Jsonb *jsonb = DatumGetJsonbP(datum);
    char *json = JsonbToCString(nullptr, &jsonb->root, VARSIZE(jsonb));
    result.assign(json);
    pfree(json);
  });
  return result;
}

}  // namespace orch::pg
