// Transactions and queries for the workers, in C++ terms. Every call goes
// through pg_call, so a PostgreSQL ERROR arrives as a PgError exception.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "pg/guards.hpp"

namespace orch::pg {

void begin_transaction();
void commit_transaction();
void abort_transaction();  // after a PgError: releases everything the transaction held

// Runs body in a transaction with SPI connected; aborts it and re-throws if
// anything fails.
template <typename F>
void in_transaction(F &&body) {
  try {
    begin_transaction();
    body();
    commit_transaction();
  } catch (...) {
    abort_transaction();
    throw;
  }
}

// Runs `sql` with text parameters ($1, $2, ... typed text) and returns the
// first column of every row as text ("" for NULL): for single values.
std::vector<std::string> query(const char *sql, const std::vector<std::string> &args = {});

// One row of a result, read by column name as C++ values: rows cross into
// C++ as typed columns. A column that is missing or of another type is a
// programming error (std::logic_error).
class Row {
 public:
  Row(HeapTuple tuple, TupleDesc desc) : tuple_(tuple), desc_(desc) {}
  bool is_null(const char *column) const;
  bool boolean(const char *column) const;  // bool; NULL is an error
  std::int64_t int8(const char *column) const;  // int8; NULL is an error
  std::optional<std::int32_t> int4(const char *column) const;
  std::optional<std::int64_t> int8_or_null(const char *column) const;
  std::string text(const char *column) const;  // text; "" for NULL
  std::vector<std::string> text_array(const char *column) const;  // text[]; {} for NULL
  std::string jsonb_text(const char *column) const;  // jsonb as JSON text; "" for NULL

 private:
  Datum value(const char *column, Oid type, bool &is_null) const;
  HeapTuple tuple_;
  TupleDesc desc_;
};

// Runs `sql` like query() and calls `each` for every row.
void for_each_row(const char *sql, const std::vector<std::string> &args, const std::function<void(const Row &)> &each);

}  // namespace orch::pg
