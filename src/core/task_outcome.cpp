#include "core/task_outcome.hpp"

#include "core/retry_backoff.hpp"

namespace orch {

AttemptOutcome decide_outcome(Ending ending, int exit_code, int attempt, const TaskSpec &spec) {
  if (ending == Ending::Stopped) return {Outcome::Stopped};
  if (ending == Ending::Exited && exit_code == 0) return {Outcome::Completed};
  // Attempt n failed; retries left while n <= max_retries (n-th retry next).
  if (attempt <= spec.max_retries) return {Outcome::Retry, retry_delay_for(spec, attempt)};
  return {Outcome::Failed};
}

std::string outcome_label(Outcome outcome) {
  switch (outcome) {
    case Outcome::Completed: return "COMPLETED";
    case Outcome::Retry: return "RETRY";
    case Outcome::Failed: return "FAILED";
    case Outcome::Stopped: return "STOPPED";
  }
  return "FAILED";
}

}  // namespace orch
