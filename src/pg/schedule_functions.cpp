// SQL functions for cron schedules: the core's CronSchedule computed in
// PostgreSQL's own time zone database (no second tz database to keep in
// sync with the server's).
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "core/cron_schedule.hpp"
#include "core/error.hpp"
#include "core/time_zone_rules.hpp"
#include "pg/guards.hpp"
#include "pg/schedule_functions.hpp"

extern "C" {
#include "pgtime.h"
#include "utils/array.h"
#include "utils/datetime.h"

PG_FUNCTION_INFO_V1(orch_next_run_times);
PG_FUNCTION_INFO_V1(orch_check_time_zone);
}

namespace orch::pg {
namespace {

// A zone from PostgreSQL's tz database.
class PgTimeZone : public TimeZoneRules {
 public:
  explicit PgTimeZone(pg_tz *zone) : zone_(zone) {}
  long utc_offset_at(std::int64_t utc_seconds) const override {
    // pg_localtime only reads the loaded zone data: it never raises an ERROR.
    pg_time_t time = static_cast<pg_time_t>(utc_seconds);
    struct pg_tm *local = pg_localtime(&time, zone_);
    return local ? local->tm_gmtoff : 0;
  }

 private:
  pg_tz *zone_;
};

pg_tz *find_zone(const std::string &name) {
  pg_tz *zone = pg_call([&] { return pg_tzset(name.c_str()); });
  if (zone == nullptr) throw InvalidInput("unknown time zone " + quote(name));
  return zone;
}

// Real zones are within 15 hours of UTC; POSIX-style names such as "UTC+99"
// or "AAA-14BBB-16" parse with offsets of up to a week, in standard or
// daylight time.
constexpr long kMaxUtcOffset = 15 * 3600;
constexpr std::int64_t kCheckedYears = 3;  // transitions repeat every year

// The first offset of `zone` beyond kMaxUtcOffset from now on, if any.
std::optional<long> offset_out_of_range(pg_tz *zone) {
  auto out_of_range = [](long offset) { return offset > kMaxUtcOffset || offset < -kMaxUtcOffset; };
  pg_time_t cursor = pg_call([] { return timestamptz_to_time_t(GetCurrentTimestamp()); });
  const pg_time_t end = cursor + kCheckedYears * 366 * 24 * 3600;
  if (long now = PgTimeZone(zone).utc_offset_at(cursor); out_of_range(now)) return now;
  // pg_next_dst_boundary only reads the loaded zone data, like pg_localtime.
  while (cursor < end) {
    long before = 0, after = 0;
    int before_dst = 0, after_dst = 0;
    pg_time_t boundary = 0;
    if (pg_next_dst_boundary(&cursor, &before, &before_dst, &boundary, &after, &after_dst, zone) != 1) break;
    if (out_of_range(before)) return before;
    if (out_of_range(after)) return after;
    if (boundary <= cursor) break;
    cursor = boundary;
  }
  return std::nullopt;
}

CronSchedule parse_schedule(const std::string &expression) {
  try {
    return CronSchedule::parse(expression);
  } catch (const InvalidInput &e) {
    throw InvalidInput("invalid schedule " + quote(expression) + ": " + e.what());
  }
}

}  // namespace

std::string time_zone_problem(const std::string &name) {
  pg_tz *zone = pg_call([&] { return pg_tzset(name.c_str()); });
  if (zone == nullptr) return "unknown time zone " + quote(name);
  if (std::optional<long> offset = offset_out_of_range(zone))
    return "time zone " + quote(name) + " is " + std::to_string(std::labs(*offset) / 3600) +
           " hours from UTC at times; real time zones are at most 15 hours from it";
  return "";
}

}  // namespace orch::pg

using namespace orch::pg;

// orch._next_run_times(schedule, time_zone, after, count): the next `count`
// firing times strictly after `after`, fewer if the schedule ends. Raises
// invalid_parameter_value for a bad expression or zone, saying which.
extern "C" Datum orch_next_run_times(PG_FUNCTION_ARGS) {
  return cpp_entry([&] {
    std::string expression, zone_name;
    TimestampTz after = 0;
    int count = 0;
    pg_call([&] {
      expression = text_to_cstring(PG_GETARG_TEXT_PP(0));
      zone_name = text_to_cstring(PG_GETARG_TEXT_PP(1));
      after = PG_GETARG_TIMESTAMPTZ(2);
      count = PG_GETARG_INT32(3);
    });
    if (count < 0 || count > 10000) throw orch::InvalidInput("count must be between 0 and 10000");
    orch::CronSchedule schedule = parse_schedule(expression);
    PgTimeZone zone(find_zone(zone_name));
    // Whole seconds: the schedule's resolution; a fraction past a second
    // still means "after that second".
    std::int64_t cursor = pg_call([&] { return static_cast<std::int64_t>(timestamptz_to_time_t(after)); });
    if (after < 0 && after % USECS_PER_SEC != 0) --cursor;  // timestamptz_to_time_t truncates toward zero
    std::vector<std::int64_t> times;
    for (int i = 0; i < count; ++i) {
      std::optional<std::int64_t> next = schedule.next_after(cursor, zone);
      if (!next) break;
      times.push_back(*next);
      cursor = *next;
    }
    return pg_call([&] {
      Datum *values = static_cast<Datum *>(palloc(sizeof(Datum) * (times.size() + 1)));
      for (std::size_t i = 0; i < times.size(); ++i)
        values[i] = TimestampTzGetDatum(time_t_to_timestamptz(static_cast<pg_time_t>(times[i])));
      return PointerGetDatum(construct_array(values, static_cast<int>(times.size()), TIMESTAMPTZOID,
                                             sizeof(TimestampTz), true, TYPALIGN_DOUBLE));
    });
  });
}

// orch._check_time_zone(zone): raises invalid_parameter_value, saying why,
// unless the zone can be a schedule's. Checked when a schedule is set, not
// each time one is computed.
extern "C" Datum orch_check_time_zone(PG_FUNCTION_ARGS) {
  return cpp_entry([&] {
    std::string name = pg_call([&] { return std::string(text_to_cstring(PG_GETARG_TEXT_PP(0))); });
    if (std::string problem = time_zone_problem(name); !problem.empty()) throw orch::InvalidInput(problem);
    return Datum(0);
  });
}
