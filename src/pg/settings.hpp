// The orch.* settings (GUCs). Defined once at load; read directly.
#pragma once

namespace orch::pg {

struct Settings {
  bool enabled;
  char *database_name;
  int max_concurrent_tasks;
  int max_output;       // bytes of output kept per task
  int max_output_data;  // bytes of a task's output data ($ORCH_OUTPUT, an sql task's rows as JSON)
  int max_input_size;   // bytes of a process's input data
  int max_fan_out;      // most instances of one fan-out task
  int max_tasks_per_owner;  // 0: half of max_concurrent_tasks (at least 1)
  int kill_grace_ms;
  int poll_interval_ms;  // safety net only: the scheduler is woken by events
  char *timezone;        // default zone of schedules; empty: the session's TimeZone
  char *jwt_roles;           // roles whose JWT claims are honoured (identity.hpp)
  char *jwt_authenticators;  // ... when the session user is one of these
  char *http_allowed_hosts;  // hosts ordinary users' http tasks may call (read in SQL)
  char *slurm_directory;     // Slurm jobs' scripts and outputs (shared with the nodes); empty: the data directory
  int slurm_unreachable_timeout_ms;  // a Slurm controller unreachable this long fails the attempt
  int history_retention_s;   // finished runs older than this are pruned; 0: kept
  int events_retention_s;    // events older than this are pruned; 0: kept
  char *archive_directory;   // pruned rows are written here first; empty: not archived
};

extern Settings settings;

void define_settings();

}  // namespace orch::pg
