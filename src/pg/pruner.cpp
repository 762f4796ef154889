#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "pg/background_worker.hpp"
#include "pg/guards.hpp"
#include "pg/pruner.hpp"
#include "pg/shared_state.hpp"
#include "pg/spi.hpp"

namespace orch::pg {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr milliseconds kLeastRest{10};
constexpr long kRestPerBatchTime = 3;
// Pruning is for idle time: when runs were started since the last batch
// began (or the pruner started), the next waits until none has been for
// kQuietTime (a start's p99 latency doubled while batches ran beside it),
// but no longer than kLongestDeferral after the last batch began, so that
// history stays bounded under any load: 1,000 rows every 10 s at least.
constexpr milliseconds kQuietTime{100};
constexpr milliseconds kLongestDeferral{10000};

// Sleeps on the latch (SIGTERM ends the process).
void rest(milliseconds time) {
  pg_call([&] {
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, static_cast<long>(time.count()),
                    PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
  });
}

// Waits while runs are being started (wake_generation moves: orch.start,
// schedules, events), but not past `deadline`.
void wait_for_quiet(steady_clock::time_point deadline) {
  for (;;) {
    std::uint32_t seen = wake_generation();
    rest(kQuietTime);
    if (wake_generation() == seen || steady_clock::now() >= deadline) return;
  }
}

void prune_until_done() {
  // Archive files a crash left half written go; expired months leave
  // orch.events in a transaction of their own (see
  // orch._detach_expired_months), and the batches archive and drop them.
  in_transaction([] {
    query("SELECT orch._remove_partial_archives(orch._archive_prefix())");
    query("SELECT orch._detach_expired_months()");
  });
  wait_for_quiet(steady_clock::now() + kLongestDeferral);
  for (;;) {  // until a batch finds nothing; SIGTERM (die) ends the process
    reload_config_if_asked();
    auto begin = steady_clock::now();
    std::uint32_t generation = wake_generation();
    std::vector<std::string> removed;
    in_transaction([&] {
      removed = query("SELECT (b.runs + b.tasks + b.events)::pg_catalog.text FROM orch._prune_batch() b");
    });
    if (removed.empty() || removed[0] == "0") return;
    // Pruning a quarter of the time at most: on a small machine a pruner
    // that never rests takes a core from the scheduler and its commands.
    auto took = std::chrono::duration_cast<milliseconds>(steady_clock::now() - begin);
    rest(std::max(kLeastRest, kRestPerBatchTime * took));
    if (wake_generation() != generation) wait_for_quiet(begin + kLongestDeferral);
  }
}

}  // namespace

BackgroundWorkerHandle *start_pruner() {
  return start_worker("orch_pruner_main", "pg_orch pruner " + std::to_string(MyDatabaseId), "pg_orch pruner",
                      MyDatabaseId);
}

}  // namespace orch::pg

extern "C" void orch_pruner_main(Datum database_oid) {
  using namespace orch::pg;
  // SIGTERM ends it at once, a batch in progress rolled back (it is done
  // again later): DROP DATABASE waits for no pruner.
  pqsignal(SIGTERM, die);
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  BackgroundWorkerUnblockSignals();
  BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(database_oid), InvalidOid, 0);
  // The lowest CPU priority: on a small machine the pruner takes only what
  // the scheduler, its commands and the sessions leave.
  (void)setpriority(PRIO_PROCESS, 0, 19);
  cpp_entry([] {
    pin_worker_settings();
    prune_until_done();
  });
  proc_exit(0);
}
