#include "core/cron_schedule.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <vector>

#include "core/error.hpp"
#include "core/interval.hpp"

namespace orch {

namespace {

constexpr std::int64_t kDay = 86400;
// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
constexpr std::int64_t kMinInstant = -62135596800;
constexpr std::int64_t kMaxInstant = 253402300799;
constexpr std::int64_t kMaxEvery = 365 * kDay;

// ---------------------------------------------------------------------------
// Calendar arithmetic on the proleptic Gregorian calendar. A "local" time is
// a wall-clock time counted like a Unix time: seconds since 1970-01-01 00:00
// on the local clock.

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) --q;
  return q;
}

bool is_leap_year(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int days_in_month(std::int64_t y, int m) {
  static const int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap_year(y) ? 29 : kDays[m - 1];
}

// floor(y/4) - floor(y/100) + floor(y/400): differences of it count leap years.
std::int64_t leap_count(std::int64_t y) { return floor_div(y, 4) - floor_div(y, 100) + floor_div(y, 400); }

std::int64_t days_before_year(std::int64_t y) {
  return 365 * (y - 1970) + leap_count(y - 1) - leap_count(1969);
}

std::int64_t days_from_date(std::int64_t y, int m, int d) {
  static const int kBefore[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
  return days_before_year(y) + kBefore[m - 1] + (m > 2 && is_leap_year(y) ? 1 : 0) + d - 1;
}

struct Date {
  std::int64_t year;
  int month;
  int day;
};

Date date_from_days(std::int64_t days) {
  std::int64_t y = 1970 + floor_div(days * 400, 146097);
  while (days_before_year(y) > days) --y;
  while (days_before_year(y + 1) <= days) ++y;
  int left = static_cast<int>(days - days_before_year(y));
  int m = 1;
  while (left >= days_in_month(y, m)) left -= days_in_month(y, m++);
  return Date{y, m, left + 1};
}

int weekday_of(std::int64_t days) { return static_cast<int>(days - 7 * floor_div(days + 4, 7) + 4); }

// Smallest n >= from with bit n set and n <= max, or -1.
int next_bit(std::uint64_t mask, int from, int max) {
  if (from > max) return -1;
  std::uint64_t rest = (mask >> from) << from;
  rest &= (max >= 63) ? ~0ULL : ((1ULL << (max + 1)) - 1);
  if (rest == 0) return -1;
  int n = 0;
  while (!(rest & 1)) {
    rest >>= 1;
    ++n;
  }
  return n;
}

// ---------------------------------------------------------------------------
// Wall-clock time <-> UTC. The zone is known only through utc_offset_at(), so
// these probe it, assuming its offset changes at most once within any day
// (true of every real zone).

// Bisection: the first instant in (lo, hi] whose offset differs from
// `offset`, given that lo has it and hi does not.
std::int64_t first_change(std::int64_t lo, std::int64_t hi, long offset, const TimeZoneRules &tz) {
  while (hi - lo > 1) {
    std::int64_t mid = lo + (hi - lo) / 2;
    (tz.utc_offset_at(mid) == offset ? lo : hi) = mid;
  }
  return hi;
}

// The first instant in (from, from + 1 day] with an offset other than the
// one in force at `from` (which is `offset`), if any.
std::optional<std::int64_t> change_within_day(std::int64_t from, long offset, const TimeZoneRules &tz) {
  if (tz.utc_offset_at(from + kDay) == offset) return std::nullopt;
  return first_change(from, from + kDay, offset, tz);
}

// The latest wall-clock time shown at or before `at`: its own, unless the
// clocks fell back within the day before and showed later times then.
std::int64_t latest_wall_time(std::int64_t at, const TimeZoneRules &tz) {
  long offset = tz.utc_offset_at(at);
  long day_before = tz.utc_offset_at(at - kDay);
  std::int64_t latest = at + offset;
  if (day_before > offset) {
    std::int64_t change = first_change(at - kDay, at, day_before, tz);
    latest = std::max(latest, change - 1 + day_before);
  }
  return latest;
}

// The first instant whose wall-clock time is `wall` or later: the first of
// the (one or two) instants that show it, or, if the clocks jumped over it,
// the instant they jumped. nullopt only if the rules are too odd to tell.
std::optional<std::int64_t> first_instant_showing(std::int64_t wall, const TimeZoneRules &tz) {
  // The offsets that can be in force around `wall`; verify each candidate.
  std::array<long, 6> offsets{};
  int n = 0;
  auto add = [&](long o) {
    for (int i = 0; i < n; ++i)
      if (offsets[i] == o) return;
    if (n < static_cast<int>(offsets.size())) offsets[n++] = o;
  };
  add(tz.utc_offset_at(wall - kDay));
  add(tz.utc_offset_at(wall + kDay));
  std::optional<std::int64_t> first;
  for (int i = 0; i < n; ++i) {  // n may grow as new offsets turn up
    std::int64_t u = wall - offsets[i];
    long actual = tz.utc_offset_at(u);
    if (actual == offsets[i]) {
      if (!first || u < *first) first = u;
    } else {
      add(actual);
    }
  }
  if (first) return first;

  // In a gap: find the instant the clocks jumped from before `wall` to after it.
  long most = *std::max_element(offsets.begin(), offsets.begin() + n);
  long least = *std::min_element(offsets.begin(), offsets.begin() + n);
  std::int64_t lo = wall - most, hi = wall - least;
  auto past = [&](std::int64_t u) { return u + tz.utc_offset_at(u) > wall; };
  if (past(lo) || !past(hi)) return std::nullopt;
  while (hi - lo > 1) {
    std::int64_t mid = lo + (hi - lo) / 2;
    (past(mid) ? hi : lo) = mid;
  }
  return hi;
}

// ---------------------------------------------------------------------------
// Parsing.

struct FieldSpec {
  const char *name;
  int lo;
  int hi;
  const char *const *names;  // 3-letter names for lo, lo+1, ..., or null
  int name_count;
};

const char *const kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                   "jul", "aug", "sep", "oct", "nov", "dec"};
const char *const kWeekdayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

const FieldSpec kSecond{"second", 0, 59, nullptr, 0};
const FieldSpec kMinute{"minute", 0, 59, nullptr, 0};
const FieldSpec kHour{"hour", 0, 23, nullptr, 0};
const FieldSpec kDayOfMonth{"day-of-month", 1, 31, nullptr, 0};
const FieldSpec kMonth{"month", 1, 12, kMonthNames, 12};
const FieldSpec kDayOfWeek{"day-of-week", 0, 7, kWeekdayNames, 7};

std::string lower(std::string s) {
  for (char &c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool all_digits(const std::string &s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Decimal digits to a number, saturating well below overflow.
std::int64_t to_number(const std::string &digits) {
  std::int64_t v = 0;
  for (char c : digits) v = std::min<std::int64_t>(v * 10 + (c - '0'), 1000000000000LL);
  return v;
}

struct ParsedField {
  std::uint64_t mask = 0;
  bool star = false;
  bool last = false;
};

[[noreturn]] void not_a_field(const FieldSpec &f, const std::string &element) {
  throw InvalidInput(std::string(f.name) + " field \"" + element + "\" is not a number, range, list or step");
}

int parse_value(const FieldSpec &f, const std::string &text, const std::string &element) {
  if (all_digits(text)) {
    std::int64_t v = to_number(text);
    if (v < f.lo || v > f.hi)
      throw InvalidInput(std::string(f.name) + " " + text + " out of range " + std::to_string(f.lo) + "-" +
                         std::to_string(f.hi));
    return static_cast<int>(v);
  }
  std::string l = lower(text);
  for (int i = 0; i < f.name_count; ++i)
    if (l == f.names[i]) return f.lo == 0 ? i : i + 1;
  not_a_field(f, element);
}

ParsedField parse_field(const FieldSpec &f, const std::string &text, bool allow_last) {
  ParsedField r;
  r.star = !text.empty() && text[0] == '*';
  std::size_t start = 0;
  for (;;) {
    std::size_t comma = text.find(',', start);
    std::string element = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (element.empty())
      throw InvalidInput(std::string(f.name) + " field \"" + text + "\" has an empty list element");

    if (lower(element) == "l") {
      if (!allow_last) throw InvalidInput("\"L\" is only allowed in the day-of-month field");
      r.last = true;
    } else {
      std::string base = element;
      int step = 1;
      bool has_step = false;
      std::size_t slash = element.find('/');
      if (slash != std::string::npos) {
        base = element.substr(0, slash);
        std::string step_text = element.substr(slash + 1);
        if (!all_digits(step_text)) not_a_field(f, element);
        std::int64_t s = to_number(step_text);
        if (s < 1) throw InvalidInput("step must be at least 1 in \"" + element + "\"");
        step = static_cast<int>(std::min<std::int64_t>(s, 1000));
        has_step = true;
      }
      int lo, hi;
      if (base == "*") {
        lo = f.lo;
        hi = f.hi;
      } else {
        std::size_t dash = base.find('-');
        if (dash == std::string::npos) {
          if (base.empty()) not_a_field(f, element);
          lo = parse_value(f, base, element);
          hi = has_step ? f.hi : lo;
        } else {
          std::string a = base.substr(0, dash), b = base.substr(dash + 1);
          if (a.empty() || b.empty()) not_a_field(f, element);
          lo = parse_value(f, a, element);
          hi = parse_value(f, b, element);
          if (hi < lo) throw InvalidInput(std::string(f.name) + " range \"" + base + "\" runs backwards");
        }
      }
      for (int v = lo; v <= hi; v += step) r.mask |= 1ULL << v;
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return r;
}

std::vector<std::string> split_words(const std::string &s) {
  std::vector<std::string> words;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    std::size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
    if (j > i) words.push_back(s.substr(i, j - i));
    i = j;
  }
  return words;
}

// An @every interval: any duration parse_interval accepts, in whole
// seconds, from 1 second to 365 days.
std::int64_t parse_every(const std::string &text) {
  if (text.empty()) throw InvalidInput("@every needs an interval such as \"5 minutes\" or \"1h 30m\"");
  std::chrono::milliseconds interval;
  try {
    interval = parse_interval(text);
  } catch (const InvalidInput &e) {
    throw InvalidInput(std::string("@every: ") + e.what());
  }
  if (interval.count() % 1000 != 0) throw InvalidInput("@every interval must be a whole number of seconds");
  std::int64_t seconds = interval.count() / 1000;
  if (seconds < 1) throw InvalidInput("@every interval must be at least 1 second");
  if (seconds > kMaxEvery) throw InvalidInput("@every interval must be at most 365 days");
  return seconds;
}

}  // namespace

// ---------------------------------------------------------------------------

CronSchedule CronSchedule::parse(const std::string &expression) {
  CronSchedule s;
  std::size_t b = 0, e = expression.size();
  while (b < e && std::isspace(static_cast<unsigned char>(expression[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(expression[e - 1]))) --e;
  s.expression_ = expression.substr(b, e - b);

  std::vector<std::string> words = split_words(s.expression_);
  if (!words.empty() && words[0][0] == '@') {
    std::string macro = lower(words[0]);
    if (macro == "@every") {
      std::string rest = s.expression_.substr(words[0].size());
      std::size_t k = 0;
      while (k < rest.size() && std::isspace(static_cast<unsigned char>(rest[k]))) ++k;
      s.every_ = parse_every(rest.substr(k));
      s.has_seconds_ = s.every_ % 60 != 0;
      return s;
    }
    const char *expansion = nullptr;
    if (macro == "@yearly" || macro == "@annually")
      expansion = "0 0 1 1 *";
    else if (macro == "@monthly")
      expansion = "0 0 1 * *";
    else if (macro == "@weekly")
      expansion = "0 0 * * 0";
    else if (macro == "@daily" || macro == "@midnight")
      expansion = "0 0 * * *";
    else if (macro == "@hourly")
      expansion = "0 * * * *";
    else
      throw InvalidInput("unknown macro \"" + words[0] + "\"");
    if (words.size() > 1) throw InvalidInput("macro \"" + words[0] + "\" takes no arguments");
    words = split_words(expansion);
  }

  if (words.size() != 5 && words.size() != 6)
    throw InvalidInput("expected 5 or 6 fields, got " + std::to_string(words.size()));
  std::size_t i = 0;
  if (words.size() == 6) {
    s.seconds_ = parse_field(kSecond, words[i++], false).mask;
    s.has_seconds_ = true;
  } else {
    s.seconds_ = 1;
  }
  ParsedField minute = parse_field(kMinute, words[i++], false);
  ParsedField hour = parse_field(kHour, words[i++], false);
  ParsedField dom = parse_field(kDayOfMonth, words[i++], true);
  ParsedField month = parse_field(kMonth, words[i++], false);
  ParsedField dow = parse_field(kDayOfWeek, words[i++], false);
  s.minutes_ = minute.mask;
  s.hours_ = static_cast<std::uint32_t>(hour.mask);
  s.days_ = static_cast<std::uint32_t>(dom.mask);
  s.last_day_ = dom.last;
  s.months_ = static_cast<std::uint32_t>(month.mask);
  s.weekdays_ = static_cast<std::uint32_t>(dow.mask & 0x7F);
  if (dow.mask & (1ULL << 7)) s.weekdays_ |= 1;  // 7 is Sunday too
  s.dom_star_ = dom.star;
  s.dow_star_ = dow.star;
  s.fixed_time_ = !minute.star && !hour.star;
  return s;
}

std::optional<std::int64_t> CronSchedule::every_interval() const {
  if (every_ == 0) return std::nullopt;
  return every_;
}

bool CronSchedule::day_matches(std::int64_t year, int month, int day, int month_days) const {
  bool dom = ((days_ >> day) & 1) != 0 || (last_day_ && day == month_days);
  bool dow = ((weekdays_ >> weekday_of(days_from_date(year, month, day))) & 1) != 0;
  return (dom_star_ || dow_star_) ? (dom && dow) : (dom || dow);
}

// The first local wall-clock time at or after `local` that matches all fields,
// skipping whole months, days, hours and minutes that cannot.
std::optional<std::int64_t> CronSchedule::next_local_match(std::int64_t local, std::int64_t last_year) const {
  std::int64_t days = floor_div(local, kDay);
  int sod = static_cast<int>(local - days * kDay);
  Date date = date_from_days(days);
  std::int64_t y = date.year;
  int mo = date.month, d = date.day, h = sod / 3600, mi = sod / 60 % 60, s = sod % 60;
  for (;;) {
    if (y > last_year) return std::nullopt;
    int next_month = next_bit(months_, mo, 12);
    if (next_month < 0) {
      ++y;
      mo = d = 1;
      h = mi = s = 0;
      continue;
    }
    if (next_month != mo) {
      mo = next_month;
      d = 1;
      h = mi = s = 0;
    }
    int month_days = days_in_month(y, mo);
    int next_day = d;
    while (next_day <= month_days && !day_matches(y, mo, next_day, month_days)) ++next_day;
    if (next_day > month_days) {
      if (++mo > 12) {
        ++y;
        mo = 1;
      }
      d = 1;
      h = mi = s = 0;
      continue;
    }
    if (next_day != d) {
      d = next_day;
      h = mi = s = 0;
    }
    int next_hour = next_bit(hours_, h, 23);
    if (next_hour < 0) {
      ++d;  // past the month's end is handled by the day step
      h = mi = s = 0;
      continue;
    }
    if (next_hour != h) {
      h = next_hour;
      mi = s = 0;
    }
    int next_minute = next_bit(minutes_, mi, 59);
    if (next_minute < 0) {
      ++h;  // 24 is handled by the hour step
      mi = s = 0;
      continue;
    }
    if (next_minute != mi) {
      mi = next_minute;
      s = 0;
    }
    int next_second = next_bit(seconds_, s, 59);
    if (next_second < 0) {
      ++mi;  // 60 is handled by the minute step
      s = 0;
      continue;
    }
    return days_from_date(y, mo, d) * kDay + h * 3600 + mi * 60 + next_second;
  }
}

std::optional<std::int64_t> CronSchedule::next_after(std::int64_t after, const TimeZoneRules &tz) const {
  if (after > kMaxInstant) return std::nullopt;
  after = std::max(after, kMinInstant);
  if (every_ > 0) return (floor_div(after, every_) + 1) * every_;
  const std::int64_t last_year = std::min<std::int64_t>(
      date_from_days(floor_div(after + tz.utc_offset_at(after), kDay)).year + kSearchYears, 9999);

  if (fixed_time_) {
    // A fixed-time job fires when the wall clock first reaches or passes a
    // matching time. Those instants grow with the wall-clock time, so the
    // answer is where the clock first reaches the first matching time after
    // the latest one it has already shown.
    std::int64_t shown = latest_wall_time(after, tz);
    for (int tries = 0; tries < 1000; ++tries) {
      std::optional<std::int64_t> wall = next_local_match(shown + 1, last_year);
      if (!wall) return std::nullopt;
      std::optional<std::int64_t> at = first_instant_showing(*wall, tz);
      if (at && *at > after) return at;
      shown = *wall;  // only with rules too odd to place it
    }
    return std::nullopt;
  }

  // Any other job fires at every instant whose wall-clock time matches. Walk
  // forward through stretches of constant offset, where the wall clock runs
  // evenly, and look for the first matching time within each.
  std::int64_t from = after + 1;
  for (int stretches = 0; stretches < 100000; ++stretches) {
    long offset = tz.utc_offset_at(from);
    std::optional<std::int64_t> change = change_within_day(from, offset, tz);
    std::int64_t end = change ? *change : from + kDay;  // `offset` holds on [from, end)
    std::optional<std::int64_t> wall = next_local_match(from + offset, last_year);
    if (!wall) return std::nullopt;
    if (*wall < end + offset) return *wall - offset;
    // Nothing in this stretch. Without a change of offset in sight, jump to
    // where the clock first shows that time: nothing before can match.
    std::int64_t next = end;
    if (!change) {
      std::optional<std::int64_t> at = first_instant_showing(*wall, tz);
      if (at && *at > next) next = *at;
    }
    from = next;
  }
  return std::nullopt;
}

}  // namespace orch
