#include "pg/background_worker.hpp"

#include "pg/guards.hpp"

namespace orch::pg {

BackgroundWorkerHandle *start_worker(const char *function, const std::string &name, const char *type, Oid database,
                                     const void *extra, std::size_t extra_size) {
  return pg_call([&] {
    BackgroundWorker worker = {};
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = BGW_NEVER_RESTART;
    strlcpy(worker.bgw_library_name, "pg_orch", BGW_MAXLEN);
    strlcpy(worker.bgw_function_name, function, BGW_MAXLEN);
    strlcpy(worker.bgw_name, name.c_str(), BGW_MAXLEN);
    strlcpy(worker.bgw_type, type, BGW_MAXLEN);
    worker.bgw_main_arg = ObjectIdGetDatum(database);
    if (extra != nullptr) memcpy(worker.bgw_extra, extra, Min(extra_size, static_cast<std::size_t>(BGW_EXTRALEN)));
    worker.bgw_notify_pid = MyProcPid;
    // The handle outlives any transaction of the starter.
    BackgroundWorkerHandle *handle = nullptr;
    MemoryContext caller = MemoryContextSwitchTo(TopMemoryContext);
    bool registered = RegisterDynamicBackgroundWorker(&worker, &handle);
    MemoryContextSwitchTo(caller);
    return registered ? handle : static_cast<BackgroundWorkerHandle *>(nullptr);
  });
}

bool worker_stopped(BackgroundWorkerHandle *handle) {
  return pg_call([&] {
    pid_t pid;
    return GetBackgroundWorkerPid(handle, &pid) == BGWH_STOPPED;
  });
}

bool reload_config_if_asked() {
  return pg_call([] {
    if (!ConfigReloadPending) return false;
    ConfigReloadPending = false;
    ProcessConfigFile(PGC_SIGHUP);
    return true;
  });
}

void pin_worker_settings() {
  static const char *const pinned[][2] = {
      {"search_path", "pg_catalog, pg_temp"},
      {"default_transaction_read_only", "off"},
      {"default_transaction_isolation", "read committed"},
      {"statement_timeout", "0"},
      {"idle_in_transaction_session_timeout", "0"},
#if PG_VERSION_NUM >= 170000
      {"transaction_timeout", "0"},
#endif
      {"session_replication_role", "origin"},
      // Each statement planned once per session: with a large history the
      // planner judged generic plans costlier and planned the claim anew at
      // every turn (1 ms of a 1.2 ms claim with 10,000,000 task rows).
      {"plan_cache_mode", "force_generic_plan"},
  };
  pg_call([] {
    for (const auto &setting : pinned) SetConfigOption(setting[0], setting[1], PGC_SUSET, PGC_S_OVERRIDE);
  });
}

}  // namespace orch::pg
