#include "core/retry_backoff.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace orch {

std::chrono::milliseconds retry_delay_for(const TaskSpec &spec, int attempt) {
  const std::int64_t base = std::max<std::int64_t>(spec.retry_delay.count(), 0);
  const std::int64_t cap = std::max<std::int64_t>(kMaxBackoffDelay.count(), base);
  // Specs are validated to 1..10, but a hand-built one must not shrink or
  // explode the delay.
  const double backoff = spec.retry_backoff >= 1.0 && spec.retry_backoff <= 1e6 ? spec.retry_backoff : 1.0;
  if (attempt <= 1 || backoff == 1.0 || base == 0) return std::chrono::milliseconds(base);
  double delay = static_cast<double>(base) * std::pow(backoff, attempt - 1);
  if (!(delay < static_cast<double>(cap))) return std::chrono::milliseconds(cap);
  return std::chrono::milliseconds(std::min<std::int64_t>(std::llround(delay), cap));
}

}  // namespace orch
