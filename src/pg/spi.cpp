#include <map>
#include <stdexcept>
#include <utility>

#include "pg/spi.hpp"

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

std::vector<std::string> query(const char *sql, const std::vector<std::string> &args) {
  constexpr int kMaxArgs = 8;
  if (args.size() > kMaxArgs) throw std::logic_error("too many query arguments");
  std::vector<std::string> rows;
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
    for (uint64 i = 0; i < SPI_processed; ++i) {
      char *value = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
      rows.emplace_back(value ? value : "");
    }
    if (SPI_tuptable) SPI_freetuptable(SPI_tuptable);
  });
  return rows;
}

}  // namespace orch::pg
