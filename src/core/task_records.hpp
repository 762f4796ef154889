// The JSON records the scheduler's SQL functions take (orch._tasks_started,
// orch._tasks_finished): one place for the format, shared by the scheduler
// and the sql task runner. They carry facts (how an attempt ended); SQL
// decides what that means for the task (orch._tasks_finished).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/child_supervisor.hpp"
#include "core/cpp_only.hpp"
#include "core/executor.hpp"

namespace orch {

// {"id", "pid" (null for 0), "execution_name" (the pid when not given),
// "started_at": Unix time now}
nlohmann::json started_record(std::uint64_t task_id, int pid, const std::string &execution_name = "");

// {"id", "ending", "exit_code", "output", "truncated", "error"}; ending is
// ending_label(ending), exit_code is null unless given; output and error are
// made storable text (to_database_text), an empty error is null.
nlohmann::json finished_record(std::uint64_t task_id, Ending ending, std::optional<int> exit_code,
                               const std::string &output, bool truncated, const std::string &error);
// ... plus "output_data" (JSON text) and "output_error" when it has them.
nlohmann::json finished_record(const AttemptEnd &end);

// Moves the start of each attempt that has also ended into its finished
// record ("pid", "execution_name", "started_at"), so that the task's row is
// written once, not RUNNING then ended, in the same transaction. The rest
// stay in `started`.
void fold_started_into_finished(nlohmann::json &started, nlohmann::json &finished);

// exited, signaled, timed_out, stopped, spawn_failed, succeeded, failed or
// rejected.
std::string ending_label(Ending ending);

}  // namespace orch
