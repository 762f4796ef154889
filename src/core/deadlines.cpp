#include "core/deadlines.hpp"

#include <algorithm>

namespace orch {

std::optional<SteadyTime> Deadlines::earliest(std::optional<SteadyTime> other) const {
  std::optional<SteadyTime> result = other;
  for (const auto &at : at_)
    if (at && (!result || *at < *result)) result = at;
  return result;
}

long Deadlines::sleep_ms(std::optional<SteadyTime> deadline, SteadyTime now, std::chrono::milliseconds cap) {
  if (!deadline) return static_cast<long>(cap.count());
  if (*deadline <= now) return 0;
  auto wait = std::chrono::ceil<std::chrono::milliseconds>(*deadline - now);
  return static_cast<long>(std::min(wait, cap).count());
}

}  // namespace orch
