// Transactions and queries for the workers, in C++ terms. Every call goes
// through pg_call, so a PostgreSQL ERROR arrives as a PgError exception.
#pragma once

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
// first column of every row as text ("" for NULL). Queries return one jsonb
// value per row, so that rows cross into C++ as JSON.
std::vector<std::string> query(const char *sql, const std::vector<std::string> &args = {});

}  // namespace orch::pg
