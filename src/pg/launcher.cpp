#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "core/scheduler_roster.hpp"
#include "pg/background_worker.hpp"
#include "pg/guards.hpp"
#include "pg/launcher.hpp"
#include "pg/shared_state.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_database.h"
}

namespace orch::pg {

namespace {

using Clock = std::chrono::steady_clock;

// Schedulers started per round, and a round's length when more are due.
constexpr std::size_t kStartsPerRound = 4;
constexpr long kRoundMs = 100;

// Databases a scheduler may run in: not templates, connections allowed.
// Without a database only shared catalogs can be read, so this scans
// pg_database itself rather than use its index.
std::vector<DatabaseId> connectable_databases() {
  std::vector<DatabaseId> databases;
  pg_call([&] {
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    Relation rel = table_open(DatabaseRelationId, AccessShareLock);
    TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
    while (HeapTuple tuple = heap_getnext(scan, ForwardScanDirection)) {
      auto *database = reinterpret_cast<Form_pg_database>(GETSTRUCT(tuple));
      if (database->datallowconn && !database->datistemplate) databases.push_back(database->oid);
    }
    table_endscan(scan);
    table_close(rel, AccessShareLock);
    PopActiveSnapshot();
    CommitTransactionCommand();
  });
  return databases;
}

BackgroundWorkerHandle *start_scheduler(Oid database) {
  BackgroundWorkerHandle *handle =
      start_worker("orch_scheduler_main", "pg_orch scheduler " + std::to_string(database), "pg_orch scheduler", database);
  if (handle == nullptr)
    pg_call([&] {
      ereport(WARNING, (errmsg("pg_orch could not start the scheduler of database %u: no background worker slot",
                               database),
                        errhint("Raise max_worker_processes; it is tried again later.")));
    });
  return handle;
}

class Launcher {
 public:
  void run() {
    register_launcher_latch();
    roster_.databases_found(connectable_databases(), Clock::now());
    while (!ShutdownRequestPending) {
      reload_config_if_asked();
      read_messages();
      note_exits();
      start_due();
      sleep();
    }
  }

 private:
  void read_messages() {
    auto now = Clock::now();
    LauncherMessages messages = take_launcher_messages();
    if (messages.lost)
      for (DatabaseId database : connectable_databases()) roster_.extension_changed(database, now);
    for (Oid database : messages.extension_changed) roster_.extension_changed(database, now);
    for (Oid database : messages.not_installed) roster_.not_installed(database);
    std::vector<Oid> held = held_databases();
    for (Oid database : held)
      if (held_.count(database) == 0) roster_.hold(database);
    for (Oid database : held_)
      if (std::find(held.begin(), held.end(), database) == held.end()) roster_.release(database, now);
    held_ = std::set<Oid>(held.begin(), held.end());
  }

  void note_exits() {
    for (DatabaseId database : roster_.running()) {
      auto it = handles_.find(database);
      if (it == handles_.end() || worker_stopped(it->second)) {
        if (it != handles_.end()) {
          pfree(it->second);
          handles_.erase(it);
        }
        roster_.exited(database, Clock::now());
      }
    }
  }

  void start_due() {
    std::vector<DatabaseId> due = roster_.due(Clock::now());
    capped_ = false;
    if (due.empty()) return;
    // Only databases that still exist and allow connections (a message may
    // name one dropped since).
    roster_.databases_found(connectable_databases(), Clock::now());
    // A few at a time: each start takes a worker slot, and most probes of a
    // burst of new databases find no extension (the rest wait a round).
    due = roster_.due(Clock::now());
    capped_ = due.size() > kStartsPerRound;
    if (capped_) due.resize(kStartsPerRound);
    for (DatabaseId database : due) {
      BackgroundWorkerHandle *handle = start_scheduler(database);
      if (handle == nullptr) {
        roster_.start_failed(database, Clock::now());
        continue;
      }
      handles_[database] = handle;
      roster_.started(database, Clock::now());
    }
  }

  // Woken by messages, a scheduler's start or exit (bgw_notify_pid), a
  // database's release, SIGHUP or SIGTERM; or when a delayed start is due.
  void sleep() {
    long timeout = -1;
    if (auto next = roster_.next_due()) {
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(*next - Clock::now()).count() + 1;
      timeout = std::max(capped_ ? kRoundMs : 0L, static_cast<long>(wait));
    }
    pg_call([&] {
      (void)WaitLatch(MyLatch, WL_LATCH_SET | (timeout < 0 ? 0 : WL_TIMEOUT) | WL_EXIT_ON_PM_DEATH, timeout,
                      PG_WAIT_EXTENSION);
      ResetLatch(MyLatch);
      CHECK_FOR_INTERRUPTS();
    });
  }

  bool capped_ = false;  // the last round left due databases for the next
  SchedulerRoster roster_;
  std::map<DatabaseId, BackgroundWorkerHandle *> handles_;
  std::set<Oid> held_;  // databases being dropped or renamed
};

}  // namespace

void register_launcher() {
  BackgroundWorker worker = {};
  worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
  worker.bgw_restart_time = 1;
  strlcpy(worker.bgw_library_name, "pg_orch", BGW_MAXLEN);
  strlcpy(worker.bgw_function_name, "orch_launcher_main", BGW_MAXLEN);
  strlcpy(worker.bgw_name, "pg_orch launcher", BGW_MAXLEN);
  strlcpy(worker.bgw_type, "pg_orch launcher", BGW_MAXLEN);
  RegisterBackgroundWorker(&worker);
}

}  // namespace orch::pg

extern "C" void orch_launcher_main(Datum) {
  using namespace orch::pg;
  pqsignal(SIGTERM, SignalHandlerForShutdownRequest);  // sets ShutdownRequestPending and the latch
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  BackgroundWorkerUnblockSignals();
  // No database: the launcher only reads the shared catalog pg_database.
  BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);
  cpp_entry([] {
    Launcher launcher;
    launcher.run();
  });
  proc_exit(0);
}
