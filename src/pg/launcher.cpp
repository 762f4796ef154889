#include "pg/launcher.hpp"

#include "pg/guards.hpp"
#include "pg/scheduler.hpp"
#include "pg/settings.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_database.h"
}

namespace orch::pg {

namespace {

constexpr long kRecheckMs = 1000;

// Without a database only nailed catalogs can be read, so this scans
// pg_database itself rather than use get_database_oid() and its index.
Oid target_database() {
  return pg_call([] {
    Oid oid = InvalidOid;
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    Relation rel = table_open(DatabaseRelationId, AccessShareLock);
    TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
    while (HeapTuple tuple = heap_getnext(scan, ForwardScanDirection)) {
      auto *database = reinterpret_cast<Form_pg_database>(GETSTRUCT(tuple));
      if (strcmp(NameStr(database->datname), settings.database_name) == 0 && database->datallowconn) {
        oid = database->oid;
        break;
      }
    }
    table_endscan(scan);
    table_close(rel, AccessShareLock);
    PopActiveSnapshot();
    CommitTransactionCommand();
    return oid;
  });
}

BackgroundWorkerHandle *start_scheduler(Oid database) {
  return pg_call([&] {
    BackgroundWorker worker = {};
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = BGW_NEVER_RESTART;  // the launcher restarts it
    strlcpy(worker.bgw_library_name, "pg_orch", BGW_MAXLEN);
    strlcpy(worker.bgw_function_name, "orch_scheduler_main", BGW_MAXLEN);
    snprintf(worker.bgw_name, BGW_MAXLEN, "pg_orch scheduler %u", database);
    strlcpy(worker.bgw_type, "pg_orch scheduler", BGW_MAXLEN);
    worker.bgw_main_arg = ObjectIdGetDatum(database);
    worker.bgw_notify_pid = MyProcPid;
    BackgroundWorkerHandle *handle = nullptr;
    if (!RegisterDynamicBackgroundWorker(&worker, &handle)) {
      ereport(WARNING, (errmsg("pg_orch could not start a scheduler"),
                        errhint("Raise max_worker_processes.")));
      return static_cast<BackgroundWorkerHandle *>(nullptr);
    }
    return handle;
  });
}

bool is_running(BackgroundWorkerHandle *handle) {
  pid_t pid;
  return handle != nullptr && GetBackgroundWorkerPid(handle, &pid) != BGWH_STOPPED;
}

void launcher_loop() {
  BackgroundWorkerHandle *scheduler = nullptr;
  TimestampTz last_start = 0;
  while (!ShutdownRequestPending) {
    pg_call([] {
      if (ConfigReloadPending) {
        ConfigReloadPending = false;
        ProcessConfigFile(PGC_SIGHUP);
      }
    });
    // A scheduler that keeps failing is started again at most once per
    // recheck interval, not in a tight loop.
    TimestampTz now = GetCurrentTimestamp();
    if (!is_running(scheduler) && TimestampDifferenceExceeds(last_start, now, kRecheckMs)) {
      Oid database = target_database();
      scheduler = OidIsValid(database) ? start_scheduler(database) : nullptr;
      if (scheduler != nullptr) last_start = now;
    }
    // Woken when the scheduler starts or exits (bgw_notify_pid); without a
    // running scheduler, also every kRecheckMs to try again.
    long timeout = is_running(scheduler) ? -1 : kRecheckMs;
    pg_call([&] {
      (void)WaitLatch(MyLatch, WL_LATCH_SET | (timeout < 0 ? 0 : WL_TIMEOUT) | WL_EXIT_ON_PM_DEATH, timeout,
                      PG_WAIT_EXTENSION);
      ResetLatch(MyLatch);
      CHECK_FOR_INTERRUPTS();
    });
  }
}

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
  cpp_entry([] { launcher_loop(); });
  proc_exit(0);
}
