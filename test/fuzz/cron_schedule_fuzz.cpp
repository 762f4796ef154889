// libFuzzer target: parse arbitrary text as a cron expression; when it
// parses, compute a few firing times in UTC and in a synthetic zone with
// frequent one-hour gaps and repeats, and check they strictly increase and
// that asking again from just before each one gives the same answer.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "core/cron_schedule.hpp"
#include "core/error.hpp"

namespace {

// UTC+1, with UTC+2 from 01:17 on the third day to 01:17 on the sixth day of
// every week: a spring-forward gap and a fall-back repeat every week.
class WeeklyDstZone : public orch::TimeZoneRules {
 public:
  long utc_offset_at(std::int64_t utc) const override {
    std::int64_t in_week = ((utc % kWeek) + kWeek) % kWeek;
    bool summer = in_week >= 2 * 86400 + kShift && in_week < 5 * 86400 + kShift;
    return summer ? 7200 : 3600;
  }

 private:
  static constexpr std::int64_t kWeek = 7 * 86400;
  static constexpr std::int64_t kShift = 3600 + 17 * 60;
};

void check(const orch::CronSchedule &cron, std::int64_t start, const orch::TimeZoneRules &tz) {
  std::int64_t t = start;
  for (int i = 0; i < 8; ++i) {
    std::optional<std::int64_t> next = cron.next_after(t, tz);
    if (!next) return;
    if (*next <= t) std::abort();                          // must strictly increase
    if (cron.next_after(*next - 1, tz) != next) std::abort();  // and be the first after *next - 1
    t = *next;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  std::optional<orch::CronSchedule> cron;
  try {
    cron = orch::CronSchedule::parse(text);
  } catch (const orch::InvalidInput &) {
    return 0;
  }
  std::uint64_t hash = 1469598103934665603ULL;  // FNV-1a: a start time that varies with the input
  for (std::size_t i = 0; i < size; ++i) hash = (hash ^ data[i]) * 1099511628211ULL;
  std::int64_t start = static_cast<std::int64_t>(hash % (4000000000ULL)) - 100000000;
  orch::UtcTimeZone utc;
  WeeklyDstZone dst;
  check(*cron, 1700000000, utc);
  check(*cron, start, utc);
  check(*cron, start, dst);
  return 0;
}
