// The one place that says which status changes are legal. The SQL enum
// types use the same labels (to_string).
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "core/cpp_only.hpp"

namespace orch {

// Processes and runs.
enum class RunStatus { Pending, InProgress, Completed, Failed, Stopped };
// One task of one run; SKIPPED = a dependency did not complete.
enum class TaskStatus { Pending, Dispatched, Running, Completed, Failed, Stopped, Skipped };

constexpr std::array<RunStatus, 5> kAllRunStatuses = {RunStatus::Pending, RunStatus::InProgress, RunStatus::Completed,
                                                      RunStatus::Failed, RunStatus::Stopped};
constexpr std::array<TaskStatus, 7> kAllTaskStatuses = {TaskStatus::Pending,   TaskStatus::Dispatched,
                                                        TaskStatus::Running,   TaskStatus::Completed,
                                                        TaskStatus::Failed,    TaskStatus::Stopped,
                                                        TaskStatus::Skipped};

// "PENDING", "IN_PROGRESS", "COMPLETED", "FAILED", "STOPPED"
std::string to_string(RunStatus status);
// "PENDING", "DISPATCHED", "RUNNING", "COMPLETED", "FAILED", "STOPPED", "SKIPPED"
std::string to_string(TaskStatus status);

// Exact labels as above; anything else gives nullopt.
std::optional<RunStatus> parse_run_status(std::string_view label);
std::optional<TaskStatus> parse_task_status(std::string_view label);

// Whether a row may move from one status to another; staying put is not a
// move and is never legal.
//   run / process: PENDING -> IN_PROGRESS | FAILED (its first run could
//     not be made) | STOPPED;
//     IN_PROGRESS -> COMPLETED | FAILED | STOPPED;
//     COMPLETED | FAILED | STOPPED -> IN_PROGRESS (new run, retry, restart)
//   task: PENDING -> DISPATCHED | SKIPPED | STOPPED;
//     DISPATCHED -> RUNNING | PENDING | FAILED | STOPPED;
//     RUNNING -> COMPLETED | FAILED | STOPPED | PENDING (retry);
//     FAILED | STOPPED | SKIPPED -> PENDING (run retry)
bool is_legal(RunStatus from, RunStatus to);
bool is_legal(TaskStatus from, TaskStatus to);

// "illegal run status change from COMPLETED to FAILED"
std::string describe_illegal(RunStatus from, RunStatus to);
// "illegal task status change from COMPLETED to RUNNING"
std::string describe_illegal(TaskStatus from, TaskStatus to);

}  // namespace orch
