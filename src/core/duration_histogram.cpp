#include "core/duration_histogram.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace orch {

namespace {

// Counts never wrap around, even from hostile arrays (they stop at the most).
std::int64_t saturating_add(std::int64_t a, std::int64_t b) {
  std::int64_t sum;
  return __builtin_add_overflow(a, b, &sum) ? std::numeric_limits<std::int64_t>::max() : sum;
}

}  // namespace

int DurationHistogram::bucket_of(double ms) {
  if (!(ms >= 1.0)) return 0;  // also NaN and negatives (a clock step)
  double bucket = std::floor(std::log(ms) / std::log(kGrowth)) + 1;
  return static_cast<int>(std::min<double>(bucket, kBuckets - 1));
}

double DurationHistogram::bucket_value(int bucket) {
  if (bucket <= 0) return 0.5;
  return std::pow(kGrowth, bucket - 0.5);
}

DurationHistogram::DurationHistogram(int first, std::vector<std::int64_t> counts)
    : first_(std::clamp(first, 0, kBuckets - 1)), counts_(std::move(counts)) {
  if (first_ + static_cast<int>(counts_.size()) > kBuckets) counts_.resize(kBuckets - first_);
  for (auto &count : counts_) count = std::max<std::int64_t>(count, 0);
  trim();
}

void DurationHistogram::add(double ms, std::int64_t count) {
  DurationHistogram one(bucket_of(ms), {count});
  merge(one);
}

void DurationHistogram::merge(const DurationHistogram &other) {
  if (other.counts_.empty()) return;
  if (counts_.empty()) {
    *this = other;
    return;
  }
  int first = std::min(first_, other.first_);
  int end = std::max(first_ + static_cast<int>(counts_.size()), other.first_ + static_cast<int>(other.counts_.size()));
  std::vector<std::int64_t> merged(static_cast<std::size_t>(end - first), 0);
  for (std::size_t i = 0; i < counts_.size(); ++i) merged[first_ - first + i] = counts_[i];
  for (std::size_t i = 0; i < other.counts_.size(); ++i)
    merged[other.first_ - first + i] = saturating_add(merged[other.first_ - first + i], other.counts_[i]);
  first_ = first;
  counts_ = std::move(merged);
  trim();
}

std::int64_t DurationHistogram::total() const {
  std::int64_t total = 0;
  for (std::int64_t count : counts_) total = saturating_add(total, count);
  return total;
}

std::optional<double> DurationHistogram::percentile(double q) const {
  std::int64_t total = this->total();
  if (total == 0 || !(q > 0)) return std::nullopt;
  // In doubles: a saturated total must not overflow a rank.
  double rank = std::ceil(std::min(q, 1.0) * static_cast<double>(total));
  std::int64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen = saturating_add(seen, counts_[i]);
    if (static_cast<double>(seen) >= rank) return bucket_value(first_ + static_cast<int>(i));
  }
  return bucket_value(first_ + static_cast<int>(counts_.size()) - 1);
}

// Only the non-empty span is kept.
void DurationHistogram::trim() {
  auto begin = std::find_if(counts_.begin(), counts_.end(), [](std::int64_t c) { return c != 0; });
  if (begin == counts_.end()) {
    counts_.clear();
    first_ = 0;
    return;
  }
  auto end = std::find_if(counts_.rbegin(), counts_.rend(), [](std::int64_t c) { return c != 0; }).base();
  first_ += static_cast<int>(begin - counts_.begin());
  counts_ = std::vector<std::int64_t>(begin, end);
}

}  // namespace orch
