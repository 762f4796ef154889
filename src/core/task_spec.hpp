// Validation of a process type's task list (the `tasks` jsonb given to
// orch.define_process_type) into TaskSpecs.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/cpp_only.hpp"

namespace orch {

enum class TaskKind { Command, Shell, Sql, Http };

constexpr std::size_t kMaxTasks = 1000;
constexpr std::size_t kMaxTaskNameLength = 63;  // fits a PostgreSQL identifier
constexpr int kMaxRetries = 100;
constexpr double kMaxRetryBackoff = 10.0;

constexpr int kMaxFanOutCount = 1000000;
constexpr int kMaxParallel = 10000;

// "for_each": [...] | "for_each": "{{key}}" | "count": N: one instance of
// the task per item (core/fan_out.hpp).
struct FanOut {
  std::string items_json;  // a literal array, as JSON text; "" otherwise
  std::string items_key;   // the key of the one placeholder naming the array; "" otherwise
  int count = -1;          // "count"; -1 otherwise
};

struct TaskSpec {
  std::string name;
  TaskKind kind = TaskKind::Command;
  std::vector<std::string> command;  // Command: argv, argv[0] non-empty; Http: http_command()
  std::string shell;                 // Shell: script for /bin/sh -c
  std::string sql;                   // Sql: statement, input data as $1
  std::string working_directory;     // empty = not set; else absolute
  std::map<std::string, std::string> env;
  std::chrono::milliseconds timeout{0};  // 0 = no timeout
  int max_retries = 0;
  std::chrono::milliseconds retry_delay{0};
  double retry_backoff = 1.0;  // delay multiplier per further attempt
  std::vector<std::size_t> depends_on;  // indexes into ProcessTypeSpec::tasks
  std::optional<FanOut> fan_out;
  int max_parallel = 0;  // most instances running at once; 0: no limit
  std::string slurm_json;  // "executor": "slurm": its "slurm" options as JSON ("{}" by default); "": this host
};

struct ProcessTypeSpec {
  std::vector<TaskSpec> tasks;
  // True when any task is a command or shell task: defining such a type is
  // as powerful as COPY ... TO PROGRAM.
  bool runs_os_commands() const;
};

// Parses and validates a JSON array of task objects (see README "Task
// specs"). Keys: name, command | shell | sql | http (with expect_status),
// executor (with slurm), working_directory, env,
// timeout, max_retries, retry_delay, retry_backoff, depends_on, for_each |
// count, max_parallel; a null value
// counts as absent. When no task has "depends_on", each task depends on the
// one before it; otherwise the graph is exactly as written and must be
// acyclic.
//
// Throws InvalidInput. Messages name tasks by their 0-based position (as in
// jsonb tasks->N) and, once known, their name: `task 2 ("load"): ...`.
ProcessTypeSpec parse_process_type(const std::string &tasks_json);

// "command" | "shell" | "sql" | "http"
std::string task_kind_name(TaskKind kind);

}  // namespace orch
