// Task durations as a fixed log-bucket histogram, so that percentiles are
// kept as runs end instead of computed by scanning history (seed 003's
// StepMetrics). Bucket 0 holds durations under 1 ms; bucket i >= 1 holds
// [1.1^(i-1), 1.1^i) ms, up to the last, which holds everything longer
// (1.1^254 ms is about a year). A bucket reads as its geometric middle, so
// a percentile is within 5% of the true duration (sqrt(1.1) < 1.05).
//
// In SQL a histogram is a bigint[] whose subscripts are bucket numbers and
// whose bounds span only its non-empty buckets ('[12:14]={3,0,7}').
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/cpp_only.hpp"

namespace orch {

class DurationHistogram {
 public:
  static constexpr int kBuckets = 256;
  static constexpr double kGrowth = 1.1;

  static int bucket_of(double ms);
  static double bucket_value(int bucket);

  DurationHistogram() = default;
  // From SQL's form: counts[i] is the count of bucket first + i.
  DurationHistogram(int first, std::vector<std::int64_t> counts);

  void add(double ms, std::int64_t count = 1);
  void merge(const DurationHistogram &other);
  std::int64_t total() const;
  // The q-quantile (0 < q <= 1) in ms: the middle of the bucket that holds
  // the ceil(q * total)-th duration; none when empty.
  std::optional<double> percentile(double q) const;

  // SQL's form: the first non-empty bucket and the counts up to the last.
  int first() const { return first_; }
  const std::vector<std::int64_t> &counts() const { return counts_; }

 private:
  void trim();

  int first_ = 0;
  std::vector<std::int64_t> counts_;
};

}  // namespace orch
