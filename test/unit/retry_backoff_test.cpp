#include "core/retry_backoff.hpp"

#include <climits>
#include <cmath>
#include <limits>

#include <gtest/gtest.h>

namespace orch {
namespace {

using std::chrono::milliseconds;

TaskSpec spec(long long delay_ms, double backoff) {
  TaskSpec t;
  t.retry_delay = milliseconds(delay_ms);
  t.retry_backoff = backoff;
  return t;
}

TEST(RetryBackoff, ConstantWithoutBackoff) {
  for (int attempt = 1; attempt <= 10; ++attempt) EXPECT_EQ(retry_delay_for(spec(5000, 1.0), attempt), milliseconds(5000));
  EXPECT_EQ(retry_delay_for(spec(0, 2.0), 5), milliseconds(0));
}

TEST(RetryBackoff, GrowsPerAttempt) {
  const TaskSpec t = spec(1000, 2.0);
  EXPECT_EQ(retry_delay_for(t, 1), milliseconds(1000));
  EXPECT_EQ(retry_delay_for(t, 2), milliseconds(2000));
  EXPECT_EQ(retry_delay_for(t, 3), milliseconds(4000));
  EXPECT_EQ(retry_delay_for(t, 4), milliseconds(8000));
  EXPECT_EQ(retry_delay_for(t, 12), milliseconds(2048000));
  EXPECT_EQ(retry_delay_for(spec(1000, 1.5), 3), milliseconds(2250));
  EXPECT_EQ(retry_delay_for(spec(333, 1.5), 2), milliseconds(500));  // 499.5 rounds up
  EXPECT_EQ(retry_delay_for(spec(100, 10.0), 4), milliseconds(100000));
}

TEST(RetryBackoff, CappedAtOneHour) {
  EXPECT_EQ(retry_delay_for(spec(1000, 2.0), 13), milliseconds(3600000));  // 4096 s
  EXPECT_EQ(retry_delay_for(spec(1000, 2.0), 101), milliseconds(3600000));
  EXPECT_EQ(retry_delay_for(spec(3600000, 10.0), 2), milliseconds(3600000));
  EXPECT_EQ(retry_delay_for(spec(1000, 10.0), INT_MAX), milliseconds(3600000));
  EXPECT_EQ(retry_delay_for(spec(1000, 1.0000001), INT_MAX), milliseconds(3600000));
}

TEST(RetryBackoff, LongerConfiguredDelayIsKept) {
  EXPECT_EQ(retry_delay_for(spec(7200000, 1.0), 1), milliseconds(7200000));
  EXPECT_EQ(retry_delay_for(spec(7200000, 2.0), 1), milliseconds(7200000));
  EXPECT_EQ(retry_delay_for(spec(7200000, 2.0), 5), milliseconds(7200000));
}

TEST(RetryBackoff, OddArgumentsAreSafe) {
  EXPECT_EQ(retry_delay_for(spec(1000, 2.0), 0), milliseconds(1000));
  EXPECT_EQ(retry_delay_for(spec(1000, 2.0), INT_MIN), milliseconds(1000));
  EXPECT_EQ(retry_delay_for(spec(1000, std::nan("")), 5), milliseconds(1000));
  EXPECT_EQ(retry_delay_for(spec(1000, 0.5), 5), milliseconds(1000));
  EXPECT_EQ(retry_delay_for(spec(1000, std::numeric_limits<double>::infinity()), 5), milliseconds(1000));
  EXPECT_EQ(retry_delay_for(spec(-5, 2.0), 3), milliseconds(0));
  EXPECT_EQ(retry_delay_for(spec(std::numeric_limits<long long>::max(), 2.0), 3),
            milliseconds(std::numeric_limits<long long>::max()));
}

TEST(RetryBackoff, NeverDecreases) {
  for (double backoff : {1.0, 1.1, 1.5, 2.0, 3.7, 10.0}) {
    for (long long delay : {1LL, 250LL, 5000LL, 600000LL}) {
      milliseconds prev(0);
      for (int attempt = 1; attempt <= 200; ++attempt) {
        milliseconds d = retry_delay_for(spec(delay, backoff), attempt);
        ASSERT_GE(d, prev) << backoff << " " << delay << " " << attempt;
        ASSERT_LE(d, milliseconds(3600000));
        prev = d;
      }
    }
  }
}

}  // namespace
}  // namespace orch
