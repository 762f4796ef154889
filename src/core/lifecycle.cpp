#include "core/lifecycle.hpp"

namespace orch {

std::string to_string(RunStatus status) {
  switch (status) {
    case RunStatus::Pending:
      return "PENDING";
    case RunStatus::InProgress:
      return "IN_PROGRESS";
    case RunStatus::Completed:
      return "COMPLETED";
    case RunStatus::Failed:
      return "FAILED";
    case RunStatus::Stopped:
      return "STOPPED";
  }
  return "UNKNOWN";
}

std::string to_string(TaskStatus status) {
  switch (status) {
    case TaskStatus::Pending:
      return "PENDING";
    case TaskStatus::Dispatched:
      return "DISPATCHED";
    case TaskStatus::Running:
      return "RUNNING";
    case TaskStatus::Completed:
      return "COMPLETED";
    case TaskStatus::Failed:
      return "FAILED";
    case TaskStatus::Stopped:
      return "STOPPED";
    case TaskStatus::Skipped:
      return "SKIPPED";
  }
  return "UNKNOWN";
}

std::optional<RunStatus> parse_run_status(std::string_view label) {
  for (RunStatus s : kAllRunStatuses)
    if (to_string(s) == label) return s;
  return std::nullopt;
}

std::optional<TaskStatus> parse_task_status(std::string_view label) {
  for (TaskStatus s : kAllTaskStatuses)
    if (to_string(s) == label) return s;
  return std::nullopt;
}

bool is_legal(RunStatus from, RunStatus to) {
  using S = RunStatus;
  switch (from) {
    case S::Pending:  // FAILED: a process whose first run could not be made
      return to == S::InProgress || to == S::Failed || to == S::Stopped;
    case S::InProgress:
      return to == S::Completed || to == S::Failed || to == S::Stopped;
    case S::Completed:
    case S::Failed:
    case S::Stopped:
      return to == S::InProgress;
  }
  return false;
}

bool is_legal(TaskStatus from, TaskStatus to) {
  using S = TaskStatus;
  switch (from) {
    case S::Pending:  // FAILED: its command could not be given the outputs it uses
      return to == S::Dispatched || to == S::Skipped || to == S::Stopped || to == S::Failed;
    case S::Dispatched:  // COMPLETED and the rest: it ended before its start was written
      return to == S::Running || to == S::Completed || to == S::Pending || to == S::Failed || to == S::Stopped;
    case S::Running:
      return to == S::Completed || to == S::Failed || to == S::Stopped || to == S::Pending;
    case S::Completed:
      return false;  // a retried run keeps completed tasks
    case S::Failed:
    case S::Stopped:
    case S::Skipped:
      return to == S::Pending;
  }
  return false;
}

std::string describe_illegal(RunStatus from, RunStatus to) {
  return "illegal run status change from " + to_string(from) + " to " + to_string(to);
}

std::string describe_illegal(TaskStatus from, TaskStatus to) {
  return "illegal task status change from " + to_string(from) + " to " + to_string(to);
}

}  // namespace orch
