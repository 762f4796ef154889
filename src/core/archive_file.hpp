// One archive file of pruned history: gzip-compressed JSON lines, created
// new (never over another file), 0600, and durable before it is reported
// written: it is written as NAME.partial, fsynced, renamed to NAME, and its
// directory fsynced, so the rows it holds can be deleted. A file not
// finished is removed (by its destructor, or, after a crash, by
// remove_partials).
#pragma once

#include <cstdint>
#include <string>

#include "core/cpp_only.hpp"

namespace orch {

class ArchiveFile {
 public:
  // Throws std::runtime_error saying why (errno's text) if it cannot be created.
  ArchiveFile(const std::string &directory, const std::string &name);
  ~ArchiveFile();
  ArchiveFile(const ArchiveFile &) = delete;
  ArchiveFile &operator=(const ArchiveFile &) = delete;

  void write_line(const std::string &line);
  // Completes, fsyncs and closes it; returns its size in bytes.
  std::int64_t finish();

  const std::string &path() const { return path_; }

  // Removes the NAME.partial files starting with `prefix` that nothing has
  // written to for `idle_seconds` (left by a crash); returns how many.
  static int remove_partials(const std::string &directory, const std::string &prefix, long idle_seconds);

 private:
  [[noreturn]] void fail(const std::string &what);

  std::string directory_;
  std::string path_;     // NAME
  std::string partial_;  // NAME.partial, until finished
  int fd_ = -1;
  void *gz_ = nullptr;  // gzFile, kept out of this header
  bool finished_ = false;
};

}  // namespace orch
