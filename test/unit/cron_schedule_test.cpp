// Unit tests for orch::CronSchedule: syntax, calendar rules, DST rules, and a
// sweep against a brute-force reference.
#include "core/cron_schedule.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "system_time_zone.hpp"

namespace {

using orch::CronSchedule;
using orch::InvalidInput;
using orch::TimeZoneRules;
using orch_test::FixedOffsetZone;
using orch_test::SystemTimeZone;

const orch::UtcTimeZone kUtc;

// ---------------------------------------------------------------------------
// Readable times: "2024-03-31T03:00:00+02:00" (or "...Z" for offset 0).

std::int64_t at(const std::string &iso) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, consumed = 0;
  if (std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%d%n", &y, &mo, &d, &h, &mi, &s, &consumed) < 6) {
    ADD_FAILURE() << "bad ISO time in test: " << iso;
    return 0;
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  std::int64_t local = timegm(&tm);
  std::string zone = iso.substr(static_cast<std::size_t>(consumed));
  if (zone == "Z") return local;
  int zh = 0, zm = 0;
  if (zone.size() != 6 || std::sscanf(zone.c_str() + 1, "%d:%d", &zh, &zm) != 2) {
    ADD_FAILURE() << "bad ISO zone in test: " << iso;
    return 0;
  }
  long off = (zh * 3600L + zm * 60L) * (zone[0] == '-' ? -1 : 1);
  return local - off;
}

std::string iso(std::int64_t utc, long offset) {
  std::time_t t = static_cast<std::time_t>(utc + offset);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string r = buf;
  if (offset == 0) return r + "Z";
  long a = offset < 0 ? -offset : offset;
  std::snprintf(buf, sizeof buf, "%c%02ld:%02ld", offset < 0 ? '-' : '+', a / 3600, a / 60 % 60);
  return r + buf;
}

std::string iso(std::int64_t utc, const TimeZoneRules &tz) { return iso(utc, tz.utc_offset_at(utc)); }

// The next `n` firing times after `after`, written in the zone's local time.
std::vector<std::string> seq(const std::string &expr, const std::string &after, const TimeZoneRules &tz,
                             int n) {
  CronSchedule s = CronSchedule::parse(expr);
  std::vector<std::string> out;
  std::int64_t t = at(after);
  for (int i = 0; i < n; ++i) {
    std::optional<std::int64_t> next = s.next_after(t, tz);
    if (!next) {
      out.push_back("none");
      break;
    }
    out.push_back(iso(*next, tz));
    t = *next;
  }
  return out;
}

std::string next(const std::string &expr, const std::string &after, const TimeZoneRules &tz = kUtc) {
  return seq(expr, after, tz, 1)[0];
}

using V = std::vector<std::string>;

std::string error_of(const std::string &expr) {
  try {
    CronSchedule::parse(expr);
  } catch (const InvalidInput &e) {
    return e.what();
  }
  return "(no error)";
}

#define REQUIRE_ZONE(name)                                                                     \
  if (!SystemTimeZone::available(name))                                                        \
    GTEST_SKIP() << "zoneinfo for " << name << " not found (install the tzdata package)";

// ---------------------------------------------------------------------------
// Field forms

TEST(CronSchedule, EveryMinuteAndStrictlyAfter) {
  EXPECT_EQ(next("* * * * *", "2024-01-01T00:00:00Z"), "2024-01-01T00:01:00Z");
  EXPECT_EQ(next("* * * * *", "2024-01-01T00:00:59Z"), "2024-01-01T00:01:00Z");
  EXPECT_EQ(next("0 12 * * *", "2024-01-01T12:00:00Z"), "2024-01-02T12:00:00Z");
  EXPECT_EQ(next("0 12 * * *", "2024-01-01T11:59:59Z"), "2024-01-01T12:00:00Z");
  EXPECT_EQ(next("59 23 31 12 *", "2024-12-31T23:58:30Z"), "2024-12-31T23:59:00Z");
  EXPECT_EQ(next("* * * * *", "2024-12-31T23:59:00Z"), "2025-01-01T00:00:00Z");
}

TEST(CronSchedule, Lists) {
  EXPECT_EQ(seq("5,20,40 * * * *", "2024-05-01T10:00:00Z", kUtc, 4),
            (V{"2024-05-01T10:05:00Z", "2024-05-01T10:20:00Z", "2024-05-01T10:40:00Z", "2024-05-01T11:05:00Z"}));
  EXPECT_EQ(seq("0 6,18 * * *", "2024-05-01T12:00:00Z", kUtc, 3),
            (V{"2024-05-01T18:00:00Z", "2024-05-02T06:00:00Z", "2024-05-02T18:00:00Z"}));
}

TEST(CronSchedule, Ranges) {
  EXPECT_EQ(seq("10-12 * * * *", "2024-05-01T10:00:00Z", kUtc, 4),
            (V{"2024-05-01T10:10:00Z", "2024-05-01T10:11:00Z", "2024-05-01T10:12:00Z", "2024-05-01T11:10:00Z"}));
  EXPECT_EQ(seq("0 0 5-6 * *", "2024-05-05T12:00:00Z", kUtc, 3),
            (V{"2024-05-06T00:00:00Z", "2024-06-05T00:00:00Z", "2024-06-06T00:00:00Z"}));
}

TEST(CronSchedule, Steps) {
  EXPECT_EQ(seq("*/15 * * * *", "2024-05-01T00:00:00Z", kUtc, 4),
            (V{"2024-05-01T00:15:00Z", "2024-05-01T00:30:00Z", "2024-05-01T00:45:00Z", "2024-05-01T01:00:00Z"}));
  EXPECT_EQ(seq("10-50/20 * * * *", "2024-05-01T00:00:00Z", kUtc, 4),
            (V{"2024-05-01T00:10:00Z", "2024-05-01T00:30:00Z", "2024-05-01T00:50:00Z", "2024-05-01T01:10:00Z"}));
  // "a/s" runs from a to the field's maximum.
  EXPECT_EQ(seq("5/20 * * * *", "2024-05-01T00:00:00Z", kUtc, 4),
            (V{"2024-05-01T00:05:00Z", "2024-05-01T00:25:00Z", "2024-05-01T00:45:00Z", "2024-05-01T01:05:00Z"}));
  EXPECT_EQ(seq("0 9-17/4 * * *", "2024-05-01T00:00:00Z", kUtc, 4),
            (V{"2024-05-01T09:00:00Z", "2024-05-01T13:00:00Z", "2024-05-01T17:00:00Z", "2024-05-02T09:00:00Z"}));
  EXPECT_EQ(seq("0 0 */10 * *", "2024-01-01T00:00:00Z", kUtc, 4),
            (V{"2024-01-11T00:00:00Z", "2024-01-21T00:00:00Z", "2024-01-31T00:00:00Z", "2024-02-01T00:00:00Z"}));
  EXPECT_EQ(seq("0 0 1 */5 *", "2024-01-01T00:00:00Z", kUtc, 3),
            (V{"2024-06-01T00:00:00Z", "2024-11-01T00:00:00Z", "2025-01-01T00:00:00Z"}));
  // A step larger than the range: only the start.
  EXPECT_EQ(seq("*/100 * * * *", "2024-05-01T00:00:00Z", kUtc, 2),
            (V{"2024-05-01T01:00:00Z", "2024-05-01T02:00:00Z"}));
  // Lists of mixed forms.
  EXPECT_EQ(seq("1,10-12,50/5 * * * *", "2024-05-01T00:00:00Z", kUtc, 7),
            (V{"2024-05-01T00:01:00Z", "2024-05-01T00:10:00Z", "2024-05-01T00:11:00Z", "2024-05-01T00:12:00Z",
               "2024-05-01T00:50:00Z", "2024-05-01T00:55:00Z", "2024-05-01T01:01:00Z"}));
}

TEST(CronSchedule, MonthNames) {
  EXPECT_EQ(seq("0 0 1 jan,JUL *", "2024-02-01T00:00:00Z", kUtc, 3),
            (V{"2024-07-01T00:00:00Z", "2025-01-01T00:00:00Z", "2025-07-01T00:00:00Z"}));
  EXPECT_EQ(seq("0 0 1 Mar-May *", "2024-04-15T00:00:00Z", kUtc, 3),
            (V{"2024-05-01T00:00:00Z", "2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z"}));
  EXPECT_EQ(next("0 0 1 feb-dec/10 *", "2024-03-01T00:00:00Z"), "2024-12-01T00:00:00Z");
}

TEST(CronSchedule, WeekdayNames) {
  // 2024-03-08 is a Friday.
  EXPECT_EQ(seq("0 8 * * mon-fri", "2024-03-08T09:00:00Z", kUtc, 2),
            (V{"2024-03-11T08:00:00Z", "2024-03-12T08:00:00Z"}));
  EXPECT_EQ(seq("0 8 * * SAT,sun", "2024-03-08T09:00:00Z", kUtc, 3),
            (V{"2024-03-09T08:00:00Z", "2024-03-10T08:00:00Z", "2024-03-16T08:00:00Z"}));
  EXPECT_EQ(next("0 8 * * Wed", "2024-03-08T09:00:00Z"), "2024-03-13T08:00:00Z");
}

TEST(CronSchedule, SevenIsSunday) {
  // 2024-03-10 and 2024-03-17 are Sundays.
  EXPECT_EQ(next("0 0 * * 7", "2024-03-08T00:00:00Z"), "2024-03-10T00:00:00Z");
  EXPECT_EQ(next("0 0 * * 0", "2024-03-08T00:00:00Z"), "2024-03-10T00:00:00Z");
  EXPECT_EQ(seq("0 0 * * 5-7", "2024-03-07T00:00:00Z", kUtc, 4),
            (V{"2024-03-08T00:00:00Z", "2024-03-09T00:00:00Z", "2024-03-10T00:00:00Z", "2024-03-15T00:00:00Z"}));
  EXPECT_EQ(seq("0 0 * * */2", "2024-03-10T12:00:00Z", kUtc, 4),  // Sun Tue Thu Sat
            (V{"2024-03-12T00:00:00Z", "2024-03-14T00:00:00Z", "2024-03-16T00:00:00Z", "2024-03-17T00:00:00Z"}));
}

TEST(CronSchedule, VixieDayOfMonthOrDayOfWeek) {
  // Both restricted: the 13th or any Friday. 2024-09-13 is a Friday, 2024-10-13 a Sunday.
  EXPECT_EQ(seq("0 0 13 * 5", "2024-09-01T00:00:00Z", kUtc, 6),
            (V{"2024-09-06T00:00:00Z", "2024-09-13T00:00:00Z", "2024-09-20T00:00:00Z", "2024-09-27T00:00:00Z",
               "2024-10-04T00:00:00Z", "2024-10-11T00:00:00Z"}));
  EXPECT_EQ(next("0 0 13 * 5", "2024-10-11T00:00:00Z"), "2024-10-13T00:00:00Z");
  // One is `*`: only the other restricts.
  EXPECT_EQ(seq("0 0 13 * *", "2024-09-01T00:00:00Z", kUtc, 2), (V{"2024-09-13T00:00:00Z", "2024-10-13T00:00:00Z"}));
  EXPECT_EQ(seq("0 0 * * 5", "2024-09-01T00:00:00Z", kUtc, 2), (V{"2024-09-06T00:00:00Z", "2024-09-13T00:00:00Z"}));
  // A field starting with `*` counts as `*`: days 1, 11, 21, 31 that are also Mondays.
  EXPECT_EQ(seq("0 0 */10 * 1", "2023-12-01T00:00:00Z", kUtc, 4),
            (V{"2023-12-11T00:00:00Z", "2024-01-01T00:00:00Z", "2024-03-11T00:00:00Z", "2024-04-01T00:00:00Z"}));
  // Impossible day-of-month, but the OR with a weekday still fires.
  EXPECT_EQ(next("0 0 30 2 mon", "2024-01-31T00:00:00Z"), "2024-02-05T00:00:00Z");
}

TEST(CronSchedule, LastDayOfMonth) {
  EXPECT_EQ(next("0 0 L * *", "2024-02-10T00:00:00Z"), "2024-02-29T00:00:00Z");
  EXPECT_EQ(next("0 0 L * *", "2023-02-10T00:00:00Z"), "2023-02-28T00:00:00Z");
  EXPECT_EQ(next("0 0 L * *", "2024-04-10T00:00:00Z"), "2024-04-30T00:00:00Z");
  EXPECT_EQ(next("0 0 L * *", "2024-01-10T00:00:00Z"), "2024-01-31T00:00:00Z");
  EXPECT_EQ(seq("30 23 L * *", "2024-01-31T23:30:00Z", kUtc, 4),
            (V{"2024-02-29T23:30:00Z", "2024-03-31T23:30:00Z", "2024-04-30T23:30:00Z", "2024-05-31T23:30:00Z"}));
  EXPECT_EQ(next("0 0 L 2 *", "2100-01-01T00:00:00Z"), "2100-02-28T00:00:00Z");  // not a leap year
  EXPECT_EQ(next("0 0 L 2 *", "2000-01-01T00:00:00Z"), "2000-02-29T00:00:00Z");  // a leap year
  EXPECT_EQ(seq("0 0 1,l * *", "2024-06-01T00:00:00Z", kUtc, 3),
            (V{"2024-06-30T00:00:00Z", "2024-07-01T00:00:00Z", "2024-07-31T00:00:00Z"}));
  // `L` with a weekday is the Vixie OR: the last day or any Sunday.
  EXPECT_EQ(seq("0 0 L * sun", "2024-06-24T00:00:00Z", kUtc, 3),
            (V{"2024-06-30T00:00:00Z", "2024-07-07T00:00:00Z", "2024-07-14T00:00:00Z"}));
}

TEST(CronSchedule, LeapDayAndImpossibleDates) {
  EXPECT_EQ(next("0 0 29 2 *", "2024-03-01T00:00:00Z"), "2028-02-29T00:00:00Z");
  EXPECT_EQ(next("0 0 29 2 *", "2024-02-28T12:00:00Z"), "2024-02-29T00:00:00Z");
  EXPECT_EQ(next("0 0 29 2 *", "2097-01-01T00:00:00Z"), "2104-02-29T00:00:00Z");  // 2100 is no leap year
  EXPECT_EQ(next("0 0 30 2 *", "2024-01-01T00:00:00Z"), "none");
  EXPECT_EQ(next("0 0 31 4,6,9,11 *", "2024-01-01T00:00:00Z"), "none");
  EXPECT_EQ(next("0 0 31 2 *", "2024-01-01T00:00:00Z"), "none");
  EXPECT_EQ(next("0 0 * * *", "9999-12-31T00:00:00Z"), "none");
}

TEST(CronSchedule, SecondsField) {
  CronSchedule s = CronSchedule::parse("*/15 * * * * *");
  EXPECT_TRUE(s.has_seconds());
  EXPECT_FALSE(CronSchedule::parse("* * * * *").has_seconds());
  EXPECT_EQ(seq("*/15 * * * * *", "2024-05-01T12:00:07Z", kUtc, 4),
            (V{"2024-05-01T12:00:15Z", "2024-05-01T12:00:30Z", "2024-05-01T12:00:45Z", "2024-05-01T12:01:00Z"}));
  EXPECT_EQ(seq("30 0 12 * * *", "2024-05-01T12:00:30Z", kUtc, 2),
            (V{"2024-05-02T12:00:30Z", "2024-05-03T12:00:30Z"}));
  EXPECT_EQ(seq("0,59 59 23 L 12 *", "2024-06-01T00:00:00Z", kUtc, 3),
            (V{"2024-12-31T23:59:00Z", "2024-12-31T23:59:59Z", "2025-12-31T23:59:00Z"}));
  EXPECT_EQ(next("* * * * * *", "2024-12-31T23:59:59Z"), "2025-01-01T00:00:00Z");
}

TEST(CronSchedule, Macros) {
  const std::string after = "2024-05-15T10:20:30Z";  // a Wednesday
  EXPECT_EQ(next("@yearly", after), "2025-01-01T00:00:00Z");
  EXPECT_EQ(next("@annually", after), "2025-01-01T00:00:00Z");
  EXPECT_EQ(next("@monthly", after), "2024-06-01T00:00:00Z");
  EXPECT_EQ(next("@weekly", after), "2024-05-19T00:00:00Z");
  EXPECT_EQ(next("@daily", after), "2024-05-16T00:00:00Z");
  EXPECT_EQ(next("@midnight", after), "2024-05-16T00:00:00Z");
  EXPECT_EQ(next("@hourly", after), "2024-05-15T11:00:00Z");
  EXPECT_EQ(next("  @DAILY  ", after), "2024-05-16T00:00:00Z");
  EXPECT_TRUE(CronSchedule::parse("@daily").is_fixed_time());
  EXPECT_FALSE(CronSchedule::parse("@hourly").is_fixed_time());
  EXPECT_FALSE(CronSchedule::parse("@daily").has_seconds());
}

TEST(CronSchedule, Every) {
  EXPECT_EQ(seq("@every 30 seconds", "2024-05-01T00:00:10Z", kUtc, 3),
            (V{"2024-05-01T00:00:30Z", "2024-05-01T00:01:00Z", "2024-05-01T00:01:30Z"}));
  EXPECT_EQ(next("@every 5 minutes", "2024-05-01T00:03:00Z"), "2024-05-01T00:05:00Z");
  EXPECT_EQ(next("@every 5 minutes", "2024-05-01T00:05:00Z"), "2024-05-01T00:10:00Z");
  EXPECT_EQ(next("@every 1h", "2024-05-01T00:03:00Z"), "2024-05-01T01:00:00Z");
  EXPECT_EQ(next("@every 1h30m", "1970-01-01T01:00:00Z"), "1970-01-01T01:30:00Z");
  EXPECT_EQ(next("@every 1 hour 30 min", "1970-01-01T01:30:00Z"), "1970-01-01T03:00:00Z");
  EXPECT_EQ(next("@every 2 days", "1970-01-02T00:00:00Z"), "1970-01-03T00:00:00Z");
  EXPECT_EQ(next("@every 7s", "1969-12-31T23:59:50Z"), "1969-12-31T23:59:53Z");  // multiples of 7 before 0
  EXPECT_EQ(CronSchedule::parse("@every 90s").every_interval(), std::optional<std::int64_t>(90));
  EXPECT_EQ(CronSchedule::parse("0 * * * *").every_interval(), std::nullopt);
  EXPECT_TRUE(CronSchedule::parse("@every 30 seconds").has_seconds());
  EXPECT_TRUE(CronSchedule::parse("@every 90s").has_seconds());
  EXPECT_FALSE(CronSchedule::parse("@every 5 minutes").has_seconds());
  EXPECT_EQ(CronSchedule::parse("@every 1 hr 1 sec").every_interval(), std::optional<std::int64_t>(3601));
  // Independent of the time zone: the same instants in any zone.
  FixedOffsetZone india(5 * 3600 + 1800);
  EXPECT_EQ(next("@every 1h", "2024-05-01T00:03:00Z", india), "2024-05-01T06:30:00+05:30");
}

TEST(CronSchedule, FixedOffsetZone) {
  FixedOffsetZone india(5 * 3600 + 1800), brazil(-3 * 3600);
  EXPECT_EQ(next("0 9 * * *", "2024-05-01T00:00:00Z", india), "2024-05-01T09:00:00+05:30");
  EXPECT_EQ(iso(*CronSchedule::parse("0 9 * * *").next_after(at("2024-05-01T00:00:00Z"), india), 0L),
            "2024-05-01T03:30:00Z");
  EXPECT_EQ(next("0 0 1 * *", "2024-05-31T23:00:00Z", brazil), "2024-06-01T00:00:00-03:00");
  EXPECT_EQ(next("0 0 * * mon", "2024-05-05T23:30:00-03:00", brazil), "2024-05-06T00:00:00-03:00");
  EXPECT_EQ(kUtc.utc_offset_at(1234567890), 0);
}

TEST(CronSchedule, ExpressionAndFixedTime) {
  EXPECT_EQ(CronSchedule::parse("  0 2 * * *\n").expression(), "0 2 * * *");
  EXPECT_TRUE(CronSchedule::parse("30 2 * * *").is_fixed_time());
  EXPECT_TRUE(CronSchedule::parse("0,30 1-3 * * *").is_fixed_time());
  EXPECT_TRUE(CronSchedule::parse("* 30 2 * * *").is_fixed_time());  // seconds do not count
  EXPECT_FALSE(CronSchedule::parse("*/30 2 * * *").is_fixed_time());
  EXPECT_FALSE(CronSchedule::parse("30 * * * *").is_fixed_time());
  EXPECT_FALSE(CronSchedule::parse("30 */2 * * *").is_fixed_time());
}

TEST(CronSchedule, ErrorMessages) {
  EXPECT_EQ(error_of("* * * *"), "expected 5 or 6 fields, got 4");
  EXPECT_EQ(error_of(""), "expected 5 or 6 fields, got 0");
  EXPECT_EQ(error_of("0 0 1 1 * 2024 x"), "expected 5 or 6 fields, got 7");
  EXPECT_EQ(error_of("61 * * * *"), "minute 61 out of range 0-59");
  EXPECT_EQ(error_of("60 * * * * *"), "second 60 out of range 0-59");
  EXPECT_EQ(error_of("0 24 * * *"), "hour 24 out of range 0-23");
  EXPECT_EQ(error_of("0 0 0 * *"), "day-of-month 0 out of range 1-31");
  EXPECT_EQ(error_of("0 0 1-32 * *"), "day-of-month 32 out of range 1-31");
  EXPECT_EQ(error_of("0 0 * 13 *"), "month 13 out of range 1-12");
  EXPECT_EQ(error_of("0 0 * * 8"), "day-of-week 8 out of range 0-7");
  EXPECT_EQ(error_of("99999999999999 * * * *"), "minute 99999999999999 out of range 0-59");
  EXPECT_EQ(error_of("0 2x * * *"), "hour field \"2x\" is not a number, range, list or step");
  EXPECT_EQ(error_of("0 1,2x * * *"), "hour field \"2x\" is not a number, range, list or step");
  EXPECT_EQ(error_of("-5 * * * *"), "minute field \"-5\" is not a number, range, list or step");
  EXPECT_EQ(error_of("*/x * * * *"), "minute field \"*/x\" is not a number, range, list or step");
  EXPECT_EQ(error_of("0 0 * foo *"), "month field \"foo\" is not a number, range, list or step");
  EXPECT_EQ(error_of("0 0 * * mon-"), "day-of-week field \"mon-\" is not a number, range, list or step");
  EXPECT_EQ(error_of("0 mon * * *"), "hour field \"mon\" is not a number, range, list or step");
  EXPECT_EQ(error_of("0 0 ? * *"), "day-of-month field \"?\" is not a number, range, list or step");
  EXPECT_EQ(error_of("1,,2 * * * *"), "minute field \"1,,2\" has an empty list element");
  EXPECT_EQ(error_of("0 22-2 * * *"), "hour range \"22-2\" runs backwards");
  EXPECT_EQ(error_of("0 0 * * fri-mon"), "day-of-week range \"fri-mon\" runs backwards");
  EXPECT_EQ(error_of("*/0 * * * *"), "step must be at least 1 in \"*/0\"");
  EXPECT_EQ(error_of("0 0 1-10/0 * *"), "step must be at least 1 in \"1-10/0\"");
  EXPECT_EQ(error_of("0 0 * L *"), "\"L\" is only allowed in the day-of-month field");
  EXPECT_EQ(error_of("0 0 * * L"), "\"L\" is only allowed in the day-of-month field");
  EXPECT_EQ(error_of("0 0 L/2 * *"), "day-of-month field \"L/2\" is not a number, range, list or step");
  EXPECT_EQ(error_of("@fortnightly"), "unknown macro \"@fortnightly\"");
  EXPECT_EQ(error_of("@reboot"), "unknown macro \"@reboot\"");
  EXPECT_EQ(error_of("@daily 5"), "macro \"@daily\" takes no arguments");
  EXPECT_EQ(error_of("@every 0s"), "@every interval must be at least 1 second");
  EXPECT_EQ(error_of("@every 0 minutes 0 hours"), "@every interval must be at least 1 second");
  EXPECT_EQ(error_of("@every 366 days"), "@every interval must be at most 365 days");
  EXPECT_EQ(error_of("@every"), "@every needs an interval such as \"5 minutes\" or \"1h 30m\"");
  // @every reads durations as task timeouts do (core/interval), in whole seconds.
  EXPECT_EQ(error_of("@every 5 fortnights"), "@every: invalid interval \"5 fortnights\"");
  EXPECT_EQ(error_of("@every minutes"), "@every: invalid interval \"minutes\"");
  EXPECT_EQ(error_of("@every 1.5s"), "@every interval must be a whole number of seconds");
  EXPECT_EQ(CronSchedule::parse("@every 30").every_interval(), std::optional<std::int64_t>(30));
  EXPECT_EQ(CronSchedule::parse("@every 1.5h").every_interval(), std::optional<std::int64_t>(5400));
  EXPECT_EQ(CronSchedule::parse("@every 1w").every_interval(), std::optional<std::int64_t>(604800));
}

// ---------------------------------------------------------------------------
// DST by Vixie/ISC cron's rules, with the system's zoneinfo.

TEST(CronScheduleDst, BerlinSpringForward) {
  REQUIRE_ZONE("Europe/Berlin");
  SystemTimeZone tz("Europe/Berlin");  // 2024-03-31 02:00 CET -> 03:00 CEST
  // Fixed time in the gap: once, at the first instant after it.
  EXPECT_EQ(seq("30 2 * * *", "2024-03-30T12:00:00+01:00", tz, 3),
            (V{"2024-03-31T03:00:00+02:00", "2024-04-01T02:30:00+02:00", "2024-04-02T02:30:00+02:00"}));
  EXPECT_EQ(seq("0,15,30,45 2 * * *", "2024-03-30T12:00:00+01:00", tz, 3),
            (V{"2024-03-31T03:00:00+02:00", "2024-04-01T02:00:00+02:00", "2024-04-01T02:15:00+02:00"}));
  EXPECT_EQ(seq("0 30 2 * * *", "2024-03-30T12:00:00+01:00", tz, 2),
            (V{"2024-03-31T03:00:00+02:00", "2024-04-01T02:30:00+02:00"}));
  // A fixed time that also matches right after the gap fires there once.
  EXPECT_EQ(seq("30 2,3 * * *", "2024-03-31T00:00:00+01:00", tz, 3),
            (V{"2024-03-31T03:00:00+02:00", "2024-03-31T03:30:00+02:00", "2024-04-01T02:30:00+02:00"}));
  // Wildcard jobs have no times to fire at inside the gap.
  EXPECT_EQ(seq("*/30 * * * *", "2024-03-31T01:15:00+01:00", tz, 3),
            (V{"2024-03-31T01:30:00+01:00", "2024-03-31T03:00:00+02:00", "2024-03-31T03:30:00+02:00"}));
  EXPECT_EQ(next("15 * * * *", "2024-03-31T01:20:00+01:00", tz), "2024-03-31T03:15:00+02:00");
  EXPECT_EQ(next("* 2 * * *", "2024-03-31T00:00:00+01:00", tz), "2024-04-01T02:00:00+02:00");
  EXPECT_EQ(next("@daily", "2024-03-30T12:00:00+01:00", tz), "2024-03-31T00:00:00+01:00");
}

TEST(CronScheduleDst, BerlinFallBack) {
  REQUIRE_ZONE("Europe/Berlin");
  SystemTimeZone tz("Europe/Berlin");  // 2024-10-27 03:00 CEST -> 02:00 CET
  // Fixed time in the repeated hour: once, in the first pass.
  EXPECT_EQ(seq("30 2 * * *", "2024-10-26T12:00:00+02:00", tz, 2),
            (V{"2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00"}));
  EXPECT_EQ(next("30 2 * * *", "2024-10-27T02:10:00+01:00", tz), "2024-10-28T02:30:00+01:00");
  // Wildcard jobs fire in both passes.
  EXPECT_EQ(seq("*/30 * * * *", "2024-10-27T01:45:00+02:00", tz, 5),
            (V{"2024-10-27T02:00:00+02:00", "2024-10-27T02:30:00+02:00", "2024-10-27T02:00:00+01:00",
               "2024-10-27T02:30:00+01:00", "2024-10-27T03:00:00+01:00"}));
  EXPECT_EQ(next("30 * * * *", "2024-10-27T02:10:00+01:00", tz), "2024-10-27T02:30:00+01:00");
  EXPECT_EQ(next("0 * * * *", "2024-10-27T02:50:00+02:00", tz), "2024-10-27T02:00:00+01:00");
  EXPECT_EQ(seq("*/20 * * * * *", "2024-10-27T02:59:30+02:00", tz, 3),
            (V{"2024-10-27T02:59:40+02:00", "2024-10-27T02:00:00+01:00", "2024-10-27T02:00:20+01:00"}));
  // @every counts real time from the epoch.
  EXPECT_EQ(seq("@every 1h", "2024-10-27T01:30:00+02:00", tz, 3),
            (V{"2024-10-27T02:00:00+02:00", "2024-10-27T02:00:00+01:00", "2024-10-27T03:00:00+01:00"}));
}

TEST(CronScheduleDst, NewYork) {
  REQUIRE_ZONE("America/New_York");
  SystemTimeZone tz("America/New_York");  // 2024-03-10 02:00 EST -> 03:00 EDT; 2024-11-03 02:00 EDT -> 01:00 EST
  EXPECT_EQ(seq("30 2 * * *", "2024-03-09T12:00:00-05:00", tz, 2),
            (V{"2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00"}));
  EXPECT_EQ(seq("@hourly", "2024-03-10T00:30:00-05:00", tz, 3),
            (V{"2024-03-10T01:00:00-05:00", "2024-03-10T03:00:00-04:00", "2024-03-10T04:00:00-04:00"}));
  EXPECT_EQ(seq("30 1 * * *", "2024-11-02T12:00:00-04:00", tz, 2),
            (V{"2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"}));
  EXPECT_EQ(seq("0,30 * * * *", "2024-11-03T00:15:00-04:00", tz, 6),
            (V{"2024-11-03T00:30:00-04:00", "2024-11-03T01:00:00-04:00", "2024-11-03T01:30:00-04:00",
               "2024-11-03T01:00:00-05:00", "2024-11-03T01:30:00-05:00", "2024-11-03T02:00:00-05:00"}));
}

TEST(CronScheduleDst, SydneySouthernHemisphere) {
  REQUIRE_ZONE("Australia/Sydney");
  SystemTimeZone tz("Australia/Sydney");  // 2024-04-07 03:00 AEDT -> 02:00 AEST; 2024-10-06 02:00 AEST -> 03:00 AEDT
  EXPECT_EQ(seq("30 2 * * *", "2024-10-05T12:00:00+10:00", tz, 2),
            (V{"2024-10-06T03:00:00+11:00", "2024-10-07T02:30:00+11:00"}));
  EXPECT_EQ(seq("*/30 * * * *", "2024-10-06T01:45:00+10:00", tz, 2),
            (V{"2024-10-06T03:00:00+11:00", "2024-10-06T03:30:00+11:00"}));
  EXPECT_EQ(seq("30 2 * * *", "2024-04-06T12:00:00+11:00", tz, 2),
            (V{"2024-04-07T02:30:00+11:00", "2024-04-08T02:30:00+10:00"}));
  EXPECT_EQ(seq("*/30 * * * *", "2024-04-07T01:45:00+11:00", tz, 5),
            (V{"2024-04-07T02:00:00+11:00", "2024-04-07T02:30:00+11:00", "2024-04-07T02:00:00+10:00",
               "2024-04-07T02:30:00+10:00", "2024-04-07T03:00:00+10:00"}));
}

TEST(CronScheduleDst, LordHoweHalfHourShift) {
  REQUIRE_ZONE("Australia/Lord_Howe");
  SystemTimeZone tz("Australia/Lord_Howe");  // 02:00 -> 02:30 in October, 02:00 -> 01:30 in April
  EXPECT_EQ(next("15 2 * * *", "2024-10-05T12:00:00+10:30", tz), "2024-10-06T02:30:00+11:00");
  EXPECT_EQ(seq("*/15 * * * *", "2024-04-07T01:20:00+11:00", tz, 5),
            (V{"2024-04-07T01:30:00+11:00", "2024-04-07T01:45:00+11:00", "2024-04-07T01:30:00+10:30",
               "2024-04-07T01:45:00+10:30", "2024-04-07T02:00:00+10:30"}));
  EXPECT_EQ(seq("45 1 * * *", "2024-04-06T12:00:00+11:00", tz, 2),
            (V{"2024-04-07T01:45:00+11:00", "2024-04-08T01:45:00+10:30"}));
}

TEST(CronScheduleDst, MidnightTransitionsAndSkippedDay) {
  REQUIRE_ZONE("America/Sao_Paulo");
  REQUIRE_ZONE("Pacific/Apia");
  SystemTimeZone sao("America/Sao_Paulo");  // 2018-11-04 00:00 -> 01:00; 2019-02-17 00:00 -> 2019-02-16 23:00
  EXPECT_EQ(seq("@daily", "2018-11-03T12:00:00-03:00", sao, 2),
            (V{"2018-11-04T01:00:00-02:00", "2018-11-05T00:00:00-02:00"}));
  EXPECT_EQ(seq("0 23 * * *", "2019-02-16T12:00:00-02:00", sao, 2),
            (V{"2019-02-16T23:00:00-02:00", "2019-02-17T23:00:00-03:00"}));
  SystemTimeZone apia("Pacific/Apia");  // 2011-12-30 did not exist
  EXPECT_EQ(seq("30 12 * * *", "2011-12-29T13:00:00-10:00", apia, 2),
            (V{"2011-12-31T00:00:00+14:00", "2011-12-31T12:30:00+14:00"}));
  EXPECT_EQ(seq("0 */6 * * *", "2011-12-29T13:00:00-10:00", apia, 3),
            (V{"2011-12-29T18:00:00-10:00", "2011-12-31T00:00:00+14:00", "2011-12-31T06:00:00+14:00"}));
  EXPECT_EQ(next("0 0 30 12 *", "2011-12-01T00:00:00-10:00", apia), "2011-12-31T00:00:00+14:00");
}

TEST(CronScheduleDst, TestZoneCacheMatchesGlibc) {
  REQUIRE_ZONE("Europe/Berlin");
  REQUIRE_ZONE("Australia/Lord_Howe");
  for (const char *name : {"Europe/Berlin", "Australia/Lord_Howe", "America/Sao_Paulo", "Pacific/Apia"}) {
    if (!SystemTimeZone::available(name)) continue;
    SystemTimeZone tz(name);
    int mismatches = 0;
    for (std::int64_t u = at("2010-01-01T00:00:00Z"); u < at("2026-01-01T00:00:00Z"); u += 3607)
      mismatches += tz.utc_offset_at(u) != tz.glibc_offset_at(u);
    EXPECT_EQ(mismatches, 0) << name;
  }
}

// ---------------------------------------------------------------------------
// Sweep: next_after against a brute-force reference that steps through UTC
// minute by minute (second by second for 6 fields), reads the wall clock, and
// applies the rules directly: a wildcard job fires whenever the wall clock
// shows a matching time; a fixed-time job fires when the wall clock reaches a
// time it has never shown before, if that time or any it jumped over matches.
// Fields are matched by a separate naive parser, not by the library.

struct Wall {
  int sec, min, hour, mday, mon, wday;
  bool last_day;
};

Wall wall_of(std::int64_t local) {
  std::time_t t = static_cast<std::time_t>(local), t2 = static_cast<std::time_t>(local + 86400);
  std::tm tm{}, tm2{};
  gmtime_r(&t, &tm);
  gmtime_r(&t2, &tm2);
  return Wall{tm.tm_sec, tm.tm_min, tm.tm_hour, tm.tm_mday, tm.tm_mon + 1, tm.tm_wday, tm2.tm_mon != tm.tm_mon};
}

struct NaiveCron {
  std::set<int> field[6];  // second minute hour day-of-month month day-of-week
  bool last = false, dom_star = false, dow_star = false, fixed = false, six = false;

  explicit NaiveCron(std::string expr) {
    static const std::map<std::string, std::string> macros = {
        {"@yearly", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
        {"@daily", "0 0 * * *"},  {"@hourly", "0 * * * *"}};
    if (macros.count(expr)) expr = macros.at(expr);
    std::istringstream in(expr);
    std::vector<std::string> w;
    for (std::string s; in >> s;) w.push_back(s);
    six = w.size() == 6;
    if (!six) w.insert(w.begin(), "0");
    static const int lo[6] = {0, 0, 0, 1, 1, 0}, hi[6] = {59, 59, 23, 31, 12, 7};
    static const std::vector<std::string> months = {"jan", "feb", "mar", "apr", "may", "jun",
                                                    "jul", "aug", "sep", "oct", "nov", "dec"};
    static const std::vector<std::string> days = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    for (int f = 0; f < 6; ++f) {
      auto value = [&](std::string s) {
        std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
        if (std::isdigit(static_cast<unsigned char>(s[0]))) return std::stoi(s);
        const auto &names = f == 4 ? months : days;
        return static_cast<int>(std::find(names.begin(), names.end(), s) - names.begin()) + (f == 4 ? 1 : 0);
      };
      std::stringstream parts(w[f]);
      for (std::string part; std::getline(parts, part, ',');) {
        if (part == "L") {
          last = true;
          continue;
        }
        int step = 1, a, b;
        std::size_t slash = part.find('/');
        if (slash != std::string::npos) step = std::stoi(part.substr(slash + 1));
        std::string range = part.substr(0, slash);
        std::size_t dash = range.find('-');
        if (range == "*") {
          a = lo[f];
          b = hi[f];
        } else if (dash != std::string::npos) {
          a = value(range.substr(0, dash));
          b = value(range.substr(dash + 1));
        } else {
          a = value(range);
          b = slash != std::string::npos ? hi[f] : a;
        }
        for (int v = a; v <= b; v += step) field[f].insert(f == 5 && v == 7 ? 0 : v);
      }
    }
    dom_star = w[3][0] == '*';
    dow_star = w[5][0] == '*';
    fixed = w[1][0] != '*' && w[2][0] != '*';
  }

  bool matches(const Wall &t) const {
    if (!field[0].count(t.sec) || !field[1].count(t.min) || !field[2].count(t.hour) || !field[4].count(t.mon))
      return false;
    bool dom = field[3].count(t.mday) || (last && t.last_day);
    bool dow = field[5].count(t.wday) > 0;
    return (dom_star || dow_star) ? (dom && dow) : (dom || dow);
  }
};

struct Sample {
  std::int64_t utc;
  std::int64_t local;
  Wall wall;
};

// Wall-clock readings every `step` seconds over [from, to].
std::vector<Sample> sample(const TimeZoneRules &tz, std::int64_t from, std::int64_t to, int step) {
  std::vector<Sample> out;
  for (std::int64_t u = from - ((from % step) + step) % step; u <= to; u += step) {
    std::int64_t local = u + tz.utc_offset_at(u);
    out.push_back(Sample{u, local, wall_of(local)});
  }
  return out;
}

// Firing times in (start, end] by brute force; samples must begin well before start.
std::vector<std::int64_t> brute_force(const NaiveCron &cron, const std::vector<Sample> &samples, int step,
                                      std::int64_t start, std::int64_t end) {
  std::vector<std::int64_t> out;
  std::int64_t newest = samples.front().local;  // the latest wall-clock time shown so far
  for (std::size_t i = 1; i < samples.size(); ++i) {
    const Sample &s = samples[i];
    bool fire = false;
    if (!cron.fixed) {
      fire = cron.matches(s.wall);
    } else if (s.local > newest) {
      for (std::int64_t x = newest + step; x < s.local && !fire; x += step) fire = cron.matches(wall_of(x));
      fire = fire || cron.matches(s.wall);
      newest = s.local;
    }
    if (fire && s.utc > start && s.utc <= end) out.push_back(s.utc);
  }
  return out;
}

// Offset changes in [from, to).
std::vector<std::int64_t> transitions(const TimeZoneRules &tz, std::int64_t from, std::int64_t to) {
  std::vector<std::int64_t> out;
  for (std::int64_t u = from; u < to; u += 6 * 3600) {
    std::int64_t lo = u, hi = u + 6 * 3600;
    if (tz.utc_offset_at(lo) == tz.utc_offset_at(hi)) continue;
    while (hi - lo > 1) {
      std::int64_t mid = lo + (hi - lo) / 2;
      (tz.utc_offset_at(mid) == tz.utc_offset_at(lo) ? lo : hi) = mid;
    }
    out.push_back(hi);
  }
  return out;
}

struct SweepZone {
  std::string name;  // a zoneinfo name, or "UTC" / "+05:30" for built-in rules
  std::string from, to;  // where to look for transitions
};

TEST(CronScheduleSweep, AgainstBruteForce) {
  const std::vector<std::string> minute_exprs = {
      "* * * * *",       "*/7 * * * *",       "15 * * * *",         "30 2 * * *",        "0 2 * * *",
      "59 1 * * *",      "0 3 * * *",         "30 1 * * *",         "0,30 1-3 * * *",    "*/30 1-3 * * *",
      "0 */2 * * *",     "45 23 * * *",       "0 0 * * *",          "0 0 L * *",         "0 12 1,15 * mon-fri",
      "0 9 * * 1-5",     "30 4 1 * 0",        "0 0 29 2 *",         "5 4 * * sun",       "@hourly",
      "@daily",          "@weekly",           "@monthly",           "23 0-20/2 * * *",   "2-10/3 2 * * *",
      "* 2 * * *",       "0 2 * 3,4,10,11 *", "15,45 0-3 * * 6,7",  "0 0 */3 * *",       "30 0 * * *",
      "0 0 29 2 *",      "0 0 1 1 *",         "0-59/13 2 * * *",    "*/5 1,2 * * sun",   "1 1,2,3 L * 0",
      "30 23 * * sat",   "0 1 * * *",         "0 0-5 * * *",        "58,59 1 * * *",     "*/45 */3 * * *"};
  const std::vector<std::string> second_exprs = {"*/20 * * * * *",   "0 30 2 * * *",      "*/15 */10 * * * *",
                                                 "10 0,30 1,2 * * *", "* * 2 * * *",       "* 0-59 1,2 * * *",
                                                 "59 59 1 * * *",     "0 0 */2 * * *",     "30 */7 1-3 * * *"};
  const std::vector<SweepZone> zones = {
      {"UTC", "", ""},
      {"+05:30", "", ""},
      {"Europe/Berlin", "2023-01-01T00:00:00Z", "2025-01-01T00:00:00Z"},
      {"America/New_York", "2023-01-01T00:00:00Z", "2025-01-01T00:00:00Z"},
      {"Australia/Sydney", "2023-01-01T00:00:00Z", "2025-01-01T00:00:00Z"},
      {"Australia/Lord_Howe", "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"},
      {"America/Sao_Paulo", "2017-06-01T00:00:00Z", "2019-06-01T00:00:00Z"},
      {"Pacific/Apia", "2011-06-01T00:00:00Z", "2012-06-01T00:00:00Z"},
      {"Antarctica/Troll", "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"},  // 2-hour shifts
      {"America/St_Johns", "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"},  // -03:30
  };

  std::uint64_t rng = 0x9E3779B97F4A7C15ULL;
  auto random = [&](std::int64_t n) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return static_cast<std::int64_t>(rng % static_cast<std::uint64_t>(n));
  };

  int checked = 0, skipped_zones = 0;
  for (const SweepZone &zone : zones) {
    const orch::UtcTimeZone utc;
    const FixedOffsetZone india(5 * 3600 + 1800);
    std::unique_ptr<SystemTimeZone> system;
    const TimeZoneRules *tz = &utc;
    if (zone.name == "+05:30") {
      tz = &india;
    } else if (zone.name != "UTC") {
      if (!SystemTimeZone::available(zone.name)) {
        ++skipped_zones;
        continue;
      }
      system = std::make_unique<SystemTimeZone>(zone.name);
      tz = system.get();
    }

    // Windows around every transition, plus a few anywhere in 2020-2030.
    std::vector<std::int64_t> centres;
    if (!zone.from.empty()) centres = transitions(*tz, at(zone.from), at(zone.to));
    for (int i = 0; i < 6; ++i) centres.push_back(at("2020-01-01T00:00:00Z") + random(10 * 365 * 86400LL));

    for (std::int64_t centre : centres) {
      for (int six = 0; six < 2; ++six) {
        const int step = six ? 1 : 60;
        const std::int64_t before = six ? 2 * 3600 : 30 * 3600, length = six ? 4 * 3600 : 2 * 86400;
        const std::int64_t start = centre - before + random(3600), end = start + length;
        const std::vector<Sample> samples = sample(*tz, start - (six ? 3 * 3600 : 86400), end, step);
        for (const std::string &expr : six ? second_exprs : minute_exprs) {
          NaiveCron naive(expr);
          CronSchedule cron = CronSchedule::parse(expr);
          std::vector<std::int64_t> expected = brute_force(naive, samples, step, start, end);
          std::int64_t t = start;
          bool ok = true;
          for (std::int64_t e : expected) {
            // From the previous firing, from just before this one, and from
            // anywhere in between (such as the second pass of a repeated hour).
            for (std::int64_t from : {t, e - 1, t + random(e - t)}) {
              std::optional<std::int64_t> got = cron.next_after(from, *tz);
              if (got != std::optional<std::int64_t>(e)) {
                ADD_FAILURE() << "\"" << expr << "\" in " << zone.name << " after " << iso(from, *tz)
                              << ": expected " << iso(e, *tz) << ", got " << (got ? iso(*got, *tz) : "none");
                ok = false;
                break;
              }
              ++checked;
            }
            if (!ok) break;
            t = e;
          }
          if (!ok) continue;
          std::optional<std::int64_t> got = cron.next_after(t, *tz);
          EXPECT_TRUE(!got || *got > end) << "\"" << expr << "\" in " << zone.name << " after " << iso(t, *tz)
                                          << ": nothing expected until " << iso(end, *tz) << ", got "
                                          << iso(*got, *tz);
        }
      }
    }
  }
  EXPECT_GT(checked, 10000);
  if (skipped_zones > 0) std::printf("sweep: %d zones skipped (no zoneinfo)\n", skipped_zones);
  std::printf("sweep: %d firing times checked\n", checked);
}

}  // namespace
