#include "pg/settings.hpp"

#include <unistd.h>

#include <algorithm>

#include "pg/postgres_headers.hpp"

namespace orch::pg {

Settings settings;

void define_settings() {
  DefineCustomBoolVariable("orch.enabled", "Whether the scheduler launches tasks.",
                           "When off, running tasks continue but no new task is launched.",
                           &settings.enabled, true, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomStringVariable("orch.database_name", "Database in which the scheduler runs.", nullptr,
                             &settings.database_name, "postgres", PGC_POSTMASTER, GUC_SUPERUSER_ONLY,
                             nullptr, nullptr, nullptr);
  // Each task is a process: a few per core keeps the machine busy without
  // thrashing; tasks that mostly wait can be given more.
  long cores = std::max(1L, sysconf(_SC_NPROCESSORS_ONLN));
  DefineCustomIntVariable("orch.max_concurrent_tasks", "Most commands running at once in a database.",
                          nullptr, &settings.max_concurrent_tasks, static_cast<int>(std::min(4 * cores, 64L)),
                          1, 10000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("orch.max_output", "Bytes of a task's output kept (the tail).", nullptr,
                          &settings.max_output, 64 * 1024, 0, 64 * 1024 * 1024, PGC_SIGHUP, GUC_UNIT_BYTE,
                          nullptr, nullptr, nullptr);
  DefineCustomIntVariable("orch.kill_grace", "Time between SIGTERM and SIGKILL when a task is killed.",
                          nullptr, &settings.kill_grace_ms, 5000, 0, 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS,
                          nullptr, nullptr, nullptr);
  DefineCustomIntVariable("orch.poll_interval", "Longest the scheduler sleeps without an event (safety net).",
                          nullptr, &settings.poll_interval_ms, 10000, 10, 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS,
                          nullptr, nullptr, nullptr);
  DefineCustomStringVariable("orch.timezone", "Default time zone of schedules.",
                             "Empty: the TimeZone of the session that sets the schedule.", &settings.timezone, "",
                             PGC_USERSET, 0, nullptr, nullptr, nullptr);
  MarkGUCPrefixReserved("orch");
}

}  // namespace orch::pg
