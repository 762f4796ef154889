#include "core/duration_histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

namespace orch {
namespace {

using H = DurationHistogram;

TEST(DurationHistogram, BucketsGrowByTenPercentFromOneMillisecond) {
  EXPECT_EQ(H::bucket_of(0), 0);
  EXPECT_EQ(H::bucket_of(0.99), 0);
  EXPECT_EQ(H::bucket_of(-5), 0);       // a clock step backwards
  EXPECT_EQ(H::bucket_of(NAN), 0);
  EXPECT_EQ(H::bucket_of(1.0), 1);
  EXPECT_EQ(H::bucket_of(1.09), 1);
  EXPECT_EQ(H::bucket_of(1.11), 2);
  EXPECT_EQ(H::bucket_of(1e300), H::kBuckets - 1);  // everything longer lands in the last
  EXPECT_EQ(H::bucket_of(INFINITY), H::kBuckets - 1);
  for (int b = 1; b < H::kBuckets - 1; ++b) EXPECT_EQ(H::bucket_of(H::bucket_value(b)), b) << b;
}

// The bound: every reading within 5% of the truth (for 1 ms and more).
TEST(DurationHistogram, AnyDurationReadsBackWithinFivePercent) {
  for (double ms = 1.0; ms < 1e10; ms *= 1.013) {
    H h;
    h.add(ms);
    double read = *h.percentile(0.5);
    EXPECT_LE(std::abs(read - ms) / ms, 0.05) << ms;
  }
}

TEST(DurationHistogram, PercentilesOfAKnownDistributionAreWithinFivePercent) {
  std::mt19937 random(42);
  std::lognormal_distribution<double> durations(std::log(250.0), 1.2);
  std::vector<double> all;
  H h;
  for (int i = 0; i < 100000; ++i) {
    double ms = 1 + durations(random);
    all.push_back(ms);
    h.add(ms);
  }
  std::sort(all.begin(), all.end());
  for (double q : {0.5, 0.95, 0.99}) {
    double truth = all[static_cast<std::size_t>(std::ceil(q * all.size())) - 1];
    EXPECT_LE(std::abs(*h.percentile(q) - truth) / truth, 0.05) << q;
  }
  EXPECT_EQ(h.total(), 100000);
}

TEST(DurationHistogram, KeepsOnlyItsNonEmptySpan) {
  H h;
  h.add(5);       // bucket 17
  h.add(5.2, 2);  // bucket 18
  EXPECT_EQ(h.first(), 17);
  EXPECT_EQ(h.counts(), (std::vector<std::int64_t>{1, 2}));
  H from_sql(10, {0, 0, 4, 0});
  EXPECT_EQ(from_sql.first(), 12);
  EXPECT_EQ(from_sql.counts(), std::vector<std::int64_t>{4});
  EXPECT_FALSE(H().percentile(0.5));
  EXPECT_FALSE(H(3, {0, 0}).percentile(0.5));
}

TEST(DurationHistogram, MergingAddsCountsBucketByBucket) {
  H a(3, {1, 2});
  H b(4, {5, 0, 0, 1});
  a.merge(b);
  EXPECT_EQ(a.first(), 3);
  EXPECT_EQ(a.counts(), (std::vector<std::int64_t>{1, 7, 0, 0, 1}));
  H empty;
  empty.merge(a);
  EXPECT_EQ(empty.counts(), a.counts());
  a.merge(H());
  EXPECT_EQ(a.total(), 9);
}

TEST(DurationHistogram, HostileInputIsBounded) {
  H h(-7, {1});  // a subscript below 0 is read as bucket 0
  EXPECT_EQ(h.first(), 0);
  H wide(H::kBuckets - 1, {1, 1, 1});  // nothing past the last bucket
  EXPECT_EQ(wide.counts().size(), 1u);
  H negative(5, {-3, 2});  // negative counts are none
  EXPECT_EQ(negative.total(), 2);
  EXPECT_EQ(*H(0, {1}).percentile(0.5), 0.5);
  // Counts stop at the most instead of wrapping around.
  const std::int64_t most = std::numeric_limits<std::int64_t>::max();
  H full(10, {most, most});
  full.merge(H(10, {most}));
  EXPECT_EQ(full.counts(), (std::vector<std::int64_t>{most, most}));
  EXPECT_EQ(full.total(), most);
  EXPECT_GE(*full.percentile(1.0), H::bucket_value(10));
  EXPECT_LE(*full.percentile(1.0), H::bucket_value(11));
  EXPECT_EQ(h.percentile(0), std::nullopt);
}

}  // namespace
}  // namespace orch
