// What a finished attempt means for its task: done, retried later, failed
// for good, or stopped. The scheduler records the answer as is.
#pragma once

#include <chrono>
#include <string>

#include "core/child_supervisor.hpp"
#include "core/task_spec.hpp"
#include "core/cpp_only.hpp"

namespace orch {

enum class Outcome { Completed, Retry, Failed, Stopped };

struct AttemptOutcome {
  Outcome outcome;
  std::chrono::milliseconds retry_after{0};  // Retry only
};

// `attempt` counts from 1 (the first run); `spec` supplies max_retries,
// retry_delay and retry_backoff. A stopped child is never retried.
AttemptOutcome decide_outcome(Ending ending, int exit_code, int attempt, const TaskSpec &spec);

// The SQL label of an outcome: COMPLETED, RETRY, FAILED or STOPPED.
std::string outcome_label(Outcome outcome);

}  // namespace orch
