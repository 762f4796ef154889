// Delay before a failed task's next attempt.
#pragma once

#include <chrono>

#include "core/task_spec.hpp"
#include "core/cpp_only.hpp"

namespace orch {

// Growth by retry_backoff stops here.
constexpr std::chrono::milliseconds kMaxBackoffDelay = std::chrono::hours(1);

// retry_delay * retry_backoff^(attempt - 1), attempt 1 being the first
// retry, rounded to the millisecond. Backoff never takes the delay past one
// hour, but a retry_delay set above an hour is used as written. Never
// overflows; attempt < 1 counts as 1.
std::chrono::milliseconds retry_delay_for(const TaskSpec &spec, int attempt);

}  // namespace orch
