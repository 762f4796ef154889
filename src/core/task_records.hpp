// The JSON records the scheduler's SQL functions take (orch._tasks_started,
// orch._tasks_finished) and the retry policy they hand back: one place for
// the format, shared by the scheduler and the sql task runner.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/task_outcome.hpp"
#include "core/task_spec.hpp"
#include "core/cpp_only.hpp"

namespace orch {

// {"id", "pid", "started_at": Unix time now}
nlohmann::json started_record(std::uint64_t task_id, int pid);

// {"id", "outcome", "retry_ms", "exit_code", "output", "truncated", "error"};
// output and error are made storable text (to_database_text), an empty
// error is null.
nlohmann::json finished_record(std::uint64_t task_id, const AttemptOutcome &outcome, std::optional<int> exit_code,
                               const std::string &output, bool truncated, const std::string &error);

// The retry policy of a task row with max_retries, retry_delay_ms and
// retry_backoff (as orch._claim_tasks and orch._orphaned_tasks return).
TaskSpec retry_policy_of(const nlohmann::json &row);

}  // namespace orch
