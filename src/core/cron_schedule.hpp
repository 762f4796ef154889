// Cron expressions: parsing and "when does it fire next".
//
// Syntax: 5 fields (minute hour day-of-month month day-of-week) or 6 with a
// seconds field first. Each field is `*` or a comma list of `n`, `a-b`,
// `*/s`, `a-b/s` and `a/s` (from a to the field's maximum, by s). Months
// take JAN-DEC, weekdays SUN-SAT (any case, also in ranges); 0 and 7 are both
// Sunday. `L` in the day-of-month field is the last day of the month. Macros:
// @yearly @annually @monthly @weekly @daily @midnight @hourly, and
// `@every <interval>` ("@every 30 seconds", "@every 1h 30m").
//
// Days follow Vixie cron: when both day-of-month and day-of-week are
// restricted (neither starts with `*`) a day matches if either matches;
// otherwise both must (so a `*` field does not restrict).
//
// Time zones and daylight saving time follow Vixie/ISC cron, applied to
// local wall-clock time:
//  - a "fixed-time" schedule (neither the minute nor the hour field starts
//    with `*`) fires once for each matching wall-clock time, when the clock
//    first reaches or passes it: in the first pass when the clocks fall back
//    and the time repeats, and at the first instant after the gap when they
//    spring forward over it (a 02:30 job runs at 03:00);
//  - any other schedule keeps its real-time rhythm: it fires at every
//    instant whose wall-clock time matches, so in both passes of a repeated
//    hour and never inside a gap.
// The zone is consulted only through TimeZoneRules::utc_offset_at(), and is
// assumed to change its offset at most once within any day.
// `@every` fires at multiples of its interval counted from the Unix epoch,
// independent of time zone and DST.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/time_zone_rules.hpp"
#include "core/cpp_only.hpp"

namespace orch {

class CronSchedule {
 public:
  // How far next_after() looks ahead, in calendar years: enough for
  // "0 0 29 2 *" across a century year that is not a leap year (2096 to 2104).
  static constexpr int kSearchYears = 9;

  // Throws InvalidInput with a message for users on a bad expression.
  static CronSchedule parse(const std::string &expression);

  // The first firing time strictly after `after` (UTC seconds since the
  // epoch), evaluated in zone `tz`; nullopt if it does not fire within
  // kSearchYears (an impossible date such as "0 0 30 2 *") or before the
  // year 10000.
  std::optional<std::int64_t> next_after(std::int64_t after, const TimeZoneRules &tz) const;

  // Whether firing times need second resolution: the 6-field form, or
  // @every with an interval that is not a whole number of minutes.
  bool has_seconds() const { return has_seconds_; }

  // Whether DST gaps and repeats are handled by the fixed-time rule (see above).
  bool is_fixed_time() const { return fixed_time_; }

  // The interval of an @every schedule in seconds, else nullopt.
  std::optional<std::int64_t> every_interval() const;

  // The expression as given, without surrounding white space.
  const std::string &expression() const { return expression_; }

 private:
  CronSchedule() = default;

  bool day_matches(std::int64_t year, int month, int day, int days_in_month) const;
  std::optional<std::int64_t> next_local_match(std::int64_t local, std::int64_t last_year) const;

  std::string expression_;
  std::uint64_t seconds_ = 0;   // bit n: second n
  std::uint64_t minutes_ = 0;   // bit n: minute n
  std::uint32_t hours_ = 0;     // bit n: hour n
  std::uint32_t days_ = 0;      // bit n: day of month n (1-31)
  std::uint32_t months_ = 0;    // bit n: month n (1-12)
  std::uint32_t weekdays_ = 0;  // bit n: weekday n (0 = Sunday)
  bool last_day_ = false;       // `L` in the day-of-month field
  bool dom_star_ = false;
  bool dow_star_ = false;
  bool fixed_time_ = false;
  bool has_seconds_ = false;
  std::int64_t every_ = 0;      // @every interval in seconds, 0 if not @every
};

}  // namespace orch
