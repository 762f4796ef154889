#include "core/task_outcome.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using orch::Ending;
using orch::Outcome;

namespace {

orch::TaskSpec spec_with_retries(int retries, std::chrono::milliseconds delay, double backoff = 1.0) {
  orch::TaskSpec spec;
  spec.max_retries = retries;
  spec.retry_delay = delay;
  spec.retry_backoff = backoff;
  return spec;
}

}  // namespace

TEST(TaskOutcome, ExitZeroCompletes) {
  EXPECT_EQ(orch::decide_outcome(Ending::Exited, 0, 1, spec_with_retries(3, 1s)).outcome, Outcome::Completed);
}

TEST(TaskOutcome, FailureIsRetriedWhileRetriesRemain) {
  auto spec = spec_with_retries(2, 500ms, 2.0);
  auto first = orch::decide_outcome(Ending::Exited, 1, 1, spec);
  EXPECT_EQ(first.outcome, Outcome::Retry);
  EXPECT_EQ(first.retry_after, 500ms);
  auto second = orch::decide_outcome(Ending::TimedOut, -1, 2, spec);
  EXPECT_EQ(second.outcome, Outcome::Retry);
  EXPECT_EQ(second.retry_after, 1000ms);
  EXPECT_EQ(orch::decide_outcome(Ending::Exited, 1, 3, spec).outcome, Outcome::Failed);
}

TEST(TaskOutcome, EveryKindOfFailureCounts) {
  auto spec = spec_with_retries(0, 0ms);
  for (Ending ending : {Ending::Exited, Ending::Signaled, Ending::TimedOut, Ending::SpawnFailed})
    EXPECT_EQ(orch::decide_outcome(ending, 2, 1, spec).outcome, Outcome::Failed);
}

TEST(TaskOutcome, StoppedIsNeverRetried) {
  EXPECT_EQ(orch::decide_outcome(Ending::Stopped, -1, 1, spec_with_retries(5, 0ms)).outcome, Outcome::Stopped);
}

TEST(TaskOutcome, Labels) {
  EXPECT_EQ(orch::outcome_label(Outcome::Completed), "COMPLETED");
  EXPECT_EQ(orch::outcome_label(Outcome::Retry), "RETRY");
  EXPECT_EQ(orch::outcome_label(Outcome::Failed), "FAILED");
  EXPECT_EQ(orch::outcome_label(Outcome::Stopped), "STOPPED");
}
