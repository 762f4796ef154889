#include "pg/settings.hpp"

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <string>

#include "pg/guards.hpp"
#include "pg/schedule_functions.hpp"

extern "C" {
#include "utils/varlena.h"
}

namespace orch::pg {

Settings settings;

namespace {

// A list of role names, as in search_path: "anon, authenticated".
bool check_role_list(char **newval, void **, GucSource) {
  char *copy = pstrdup(*newval ? *newval : "");
  List *names = nullptr;
  bool valid = SplitIdentifierString(copy, ',', &names);
  list_free(names);
  pfree(copy);
  if (!valid) GUC_check_errdetail("List syntax is invalid: give role names separated by commas.");
  return valid;
}

bool check_time_zone(char **newval, void **, GucSource) {
  if (*newval == nullptr || (*newval)[0] == '\0') return true;
  return cpp_entry([&] {
    std::string problem = time_zone_problem(*newval);
    if (!problem.empty()) pg_call([&] { GUC_check_errdetail("%s", problem.c_str()); });
    return problem.empty();
  });
}

// Host names or addresses, separated by commas (orch._api_define_process_type
// splits them on commas and compares them without case).
bool check_host_list(char **newval, void **, GucSource) {
  std::string value = *newval ? *newval : "";
  bool valid = value.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:, ") ==
               std::string::npos;
  if (!valid) GUC_check_errdetail("Give host names or IP addresses (without brackets) separated by commas.");
  return valid;
}

bool check_absolute_directory(char **newval, void **, GucSource) {
  if (*newval == nullptr || (*newval)[0] == '\0' || (*newval)[0] == '/') return true;
  GUC_check_errdetail("Give an absolute path, or nothing.");
  return false;
}

}  // namespace

void define_settings() {
  DefineCustomBoolVariable("orch.enabled", "Whether the scheduler launches tasks.",
                           "When off, running tasks continue but no new task is launched.",
                           &settings.enabled, true, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  // Gone in 0.2 (a scheduler runs in every database with the extension):
  // accepted so that existing configurations still start.
  DefineCustomStringVariable("orch.database_name", "Ignored: pg_orch runs in every database that has it.", nullptr,
                             &settings.database_name, "", PGC_POSTMASTER, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
                             nullptr, nullptr, nullptr);
  if (settings.database_name != nullptr && settings.database_name[0] != '\0')
    ereport(WARNING, (errmsg("orch.database_name is ignored: pg_orch runs a scheduler in every database where "
                             "the extension is installed"),
                      errhint("Remove orch.database_name from the configuration.")));
  // Each task is a process: a few per core keeps the machine busy without
  // thrashing; tasks that mostly wait can be given more.
  long cores = std::max(1L, sysconf(_SC_NPROCESSORS_ONLN));
  DefineCustomIntVariable("orch.max_concurrent_tasks", "Most commands running at once in a database.",
                          nullptr, &settings.max_concurrent_tasks, static_cast<int>(std::min(4 * cores, 64L)),
                          1, 10000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("orch.max_output", "Bytes of a task's output kept (the tail).", nullptr,
                          &settings.max_output, 64 * 1024, 0, 64 * 1024 * 1024, PGC_SIGHUP, GUC_UNIT_BYTE,
                          nullptr, nullptr, nullptr);
  DefineCustomIntVariable("orch.max_output_data",
                          "Largest output of a task, in bytes (what it writes to $ORCH_OUTPUT, an sql task's rows "
                          "as JSON); more fails the attempt.",
                          nullptr, &settings.max_output_data, 1024 * 1024, 0, 1024 * 1024 * 1024, PGC_SIGHUP,
                          GUC_UNIT_BYTE, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("orch.max_fan_out", "Most instances of one fan-out task (\"for_each\" or \"count\").",
                          "More fails the task.", &settings.max_fan_out, 10000, 0, 1000000, PGC_SUSET, 0, nullptr,
                          nullptr, nullptr);
  // Input is stored once per run and read by every task: bounded, and only
  // a superuser may raise the bound.
  DefineCustomIntVariable("orch.max_input_size", "Largest input data of a process, in bytes (as JSON text).",
                          nullptr, &settings.max_input_size, 1024 * 1024, 0, 1024 * 1024 * 1024, PGC_SUSET,
                          GUC_UNIT_BYTE, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("orch.max_tasks_per_owner", "Most tasks of one owner running at once in a database.",
                          "0: half of orch.max_concurrent_tasks, at least 1.", &settings.max_tasks_per_owner, 0, 0,
                          10000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("orch.kill_grace", "Time between SIGTERM and SIGKILL when a task is killed.",
                          nullptr, &settings.kill_grace_ms, 5000, 0, 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS,
                          nullptr, nullptr, nullptr);
  DefineCustomIntVariable("orch.poll_interval", "Longest the scheduler sleeps without an event (safety net).",
                          nullptr, &settings.poll_interval_ms, 10000, 10, 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS,
                          nullptr, nullptr, nullptr);
  DefineCustomStringVariable("orch.timezone", "Default time zone of schedules.",
                             "Empty: the TimeZone of the session that sets the schedule.", &settings.timezone, "",
                             PGC_USERSET, 0, check_time_zone, nullptr, nullptr);
  // Who may speak for a JWT's "sub": superuser-only, as they decide owners.
  DefineCustomStringVariable("orch.jwt_roles", "Roles whose requests carry JWT claims (request.jwt.claims).",
                             "Claims are honoured only for these roles, in sessions of orch.jwt_authenticators.",
                             &settings.jwt_roles, "anon, authenticated", PGC_SUSET, GUC_LIST_INPUT,
                             check_role_list, nullptr, nullptr);
  DefineCustomStringVariable("orch.jwt_authenticators", "Session users that set JWT claims (PostgREST's login role).",
                             nullptr, &settings.jwt_authenticators, "authenticator", PGC_SUSET, GUC_LIST_INPUT,
                             check_role_list, nullptr, nullptr);
  // Whom ordinary users' http tasks may call: superuser-only, as any other
  // host needs the command privilege.
  DefineCustomStringVariable("orch.http_allowed_hosts", "Hosts that http tasks of ordinary users may call.",
                             "Other hosts need the privilege of command tasks.", &settings.http_allowed_hosts, "",
                             PGC_SUSET, GUC_LIST_INPUT, check_host_list, nullptr, nullptr);
  // The server's OS user writes job scripts there: only a superuser may choose where.
  DefineCustomStringVariable("orch.slurm_directory",
                             "Directory for Slurm jobs' scripts and output files, shared with the compute nodes.",
                             "Empty: the data directory (a single-host Slurm).", &settings.slurm_directory, "",
                             PGC_SIGHUP, GUC_SUPERUSER_ONLY, check_absolute_directory, nullptr, nullptr);
  DefineCustomIntVariable("orch.slurm_unreachable_timeout",
                          "How long a Slurm controller may stay unreachable before a job's attempt fails.", nullptr,
                          &settings.slurm_unreachable_timeout_ms, 60000, 1000, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS,
                          nullptr, nullptr, nullptr);
  DefineCustomIntVariable("orch.history_retention", "Finished runs older than this are pruned with their tasks.",
                          "Each process's latest run is kept. 0 keeps all.", &settings.history_retention_s,
                          30 * 86400, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("orch.events_retention", "Events older than this are pruned.", "0 keeps all.",
                          &settings.events_retention_s, 90 * 86400, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_S, nullptr,
                          nullptr, nullptr);
  // The server's OS user writes there: only a superuser may choose where.
  DefineCustomStringVariable("orch.archive_directory",
                             "Directory where pruned rows are first written (gzip-compressed JSON lines).",
                             "Empty: pruned rows are not archived.", &settings.archive_directory, "", PGC_SIGHUP,
                             GUC_SUPERUSER_ONLY, check_absolute_directory, nullptr, nullptr);
  MarkGUCPrefixReserved("orch");
}

}  // namespace orch::pg
