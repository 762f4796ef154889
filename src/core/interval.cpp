#include "core/interval.hpp"

#include <cctype>
#include <cstdint>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace orch {
namespace {

// JSON-style quoting keeps control characters and stray bytes readable in
// messages; long inputs are cut so one bad value cannot flood the log.
[[noreturn]] void fail(const std::string &text, const std::string &reason = "") {
  std::string message = "invalid interval " + quote(text);
  if (!reason.empty()) message += ": " + reason;
  throw InvalidInput(message);
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::optional<std::int64_t> unit_ms(std::string unit) {
  for (char &c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  struct Unit {
    std::string_view name;
    std::int64_t ms;
  };
  static constexpr Unit kUnits[] = {
      {"ms", 1},          {"msec", 1},        {"msecs", 1},      {"millisecond", 1}, {"milliseconds", 1},
      {"s", 1000},        {"sec", 1000},      {"secs", 1000},    {"second", 1000},   {"seconds", 1000},
      {"m", 60000},       {"min", 60000},     {"mins", 60000},   {"minute", 60000},  {"minutes", 60000},
      {"h", 3600000},     {"hr", 3600000},    {"hrs", 3600000},  {"hour", 3600000},  {"hours", 3600000},
      {"d", 86400000},    {"day", 86400000},  {"days", 86400000},
      {"w", 604800000},   {"week", 604800000}, {"weeks", 604800000},
  };
  for (const Unit &u : kUnits)
    if (u.name == unit) return u.ms;
  return std::nullopt;
}

// A decimal number split into its integer digits and fraction digits.
struct Number {
  std::string whole;
  std::string fraction;
};

// Reads [digits][.digits] at pos; at least one digit overall.
std::optional<Number> read_number(const std::string &s, std::size_t &pos) {
  Number n;
  while (pos < s.size() && is_digit(s[pos])) n.whole += s[pos++];
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    while (pos < s.size() && is_digit(s[pos])) n.fraction += s[pos++];
    if (n.fraction.empty()) return std::nullopt;  // "5." is a typo more often than not
  }
  if (n.whole.empty() && n.fraction.empty()) return std::nullopt;
  return n;
}

// n * unit in milliseconds, rounded to the nearest millisecond; nullopt when
// beyond kMaxInterval.
std::optional<std::int64_t> scale(const Number &n, std::int64_t unit) {
  const std::int64_t max = kMaxInterval.count();
  std::int64_t whole = 0;
  for (char c : n.whole) {
    whole = whole * 10 + (c - '0');
    if (whole > max) return std::nullopt;  // also keeps the multiply below in range
  }
  std::int64_t ms = 0;
  if (__builtin_mul_overflow(whole, unit, &ms) || ms > max) return std::nullopt;
  // Nine fraction digits are plenty: unit <= 6.048e8 ms keeps num * unit
  // below 2^63.
  std::int64_t num = 0, den = 1;
  for (std::size_t i = 0; i < n.fraction.size() && i < 9; ++i) {
    num = num * 10 + (n.fraction[i] - '0');
    den *= 10;
  }
  ms += (num * unit + den / 2) / den;
  if (ms > max) return std::nullopt;
  return ms;
}

}  // namespace

std::chrono::milliseconds parse_interval(const std::string &text) {
  const std::string &s = text;
  const std::int64_t max = kMaxInterval.count();
  std::size_t pos = 0;
  std::int64_t total = 0;
  int terms = 0;

  auto add = [&](std::optional<std::int64_t> ms) {
    if (!ms || *ms > max - total) fail(text, "out of range (at most 100 years)");
    total += *ms;
  };

  for (;;) {
    while (pos < s.size() && is_space(s[pos])) ++pos;
    if (pos == s.size()) break;
    if (s[pos] == '-') fail(text, "must not be negative");
    std::optional<Number> n = read_number(s, pos);
    if (!n) fail(text);

    if (pos < s.size() && s[pos] == ':') {
      // HH:MM[:SS[.fff]], PostgreSQL's reading of a clock-like term
      if (!n->fraction.empty() || n->whole.empty()) fail(text);
      auto two_digits = [&]() -> std::int64_t {
        ++pos;  // the ':'
        std::size_t start = pos;
        while (pos < s.size() && is_digit(s[pos]) && pos - start < 2) ++pos;
        if (pos - start != 2) fail(text);
        std::int64_t v = (s[start] - '0') * 10 + (s[start + 1] - '0');
        if (v >= 60) fail(text);
        return v;
      };
      add(scale(*n, 3600000));
      add(two_digits() * 60000);
      if (pos < s.size() && s[pos] == ':') {
        std::int64_t seconds = two_digits();
        Number sec{std::to_string(seconds), ""};
        if (pos < s.size() && s[pos] == '.') {
          std::optional<Number> f = read_number(s, pos);
          if (!f) fail(text);
          sec.fraction = f->fraction;
        }
        add(scale(sec, 1000));
      }
      if (pos < s.size() && !is_space(s[pos])) fail(text);
      ++terms;
      continue;
    }

    while (pos < s.size() && is_space(s[pos])) ++pos;
    std::size_t unit_start = pos;
    while (pos < s.size() && is_alpha(s[pos])) ++pos;
    if (unit_start == pos) {
      // A unitless number is seconds, but only on its own: "1 hour 30" is
      // ambiguous, so it is refused.
      if (terms == 0 && pos == s.size()) {
        add(scale(*n, 1000));
        ++terms;
        break;
      }
      fail(text);
    }
    std::optional<std::int64_t> unit = unit_ms(s.substr(unit_start, pos - unit_start));
    if (!unit) fail(text);
    add(scale(*n, *unit));
    ++terms;
  }
  if (terms == 0) fail(text);
  return std::chrono::milliseconds(total);
}

std::string format_interval(std::chrono::milliseconds interval) {
  std::int64_t v = interval.count();
  std::string out;
  std::uint64_t ms = v < 0 ? 0 - static_cast<std::uint64_t>(v) : static_cast<std::uint64_t>(v);
  if (v < 0) out = "-";
  if (ms == 0) return "0s";
  if (ms < 1000) return out + std::to_string(ms) + "ms";
  struct Part {
    std::uint64_t ms;
    const char *suffix;
  };
  static constexpr Part kParts[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}};
  for (const Part &p : kParts) {
    if (ms >= p.ms) {
      out += std::to_string(ms / p.ms) + p.suffix;
      ms %= p.ms;
    }
  }
  if (ms > 0) {
    out += std::to_string(ms / 1000);
    if (std::uint64_t frac = ms % 1000) {
      std::string digits = std::to_string(frac + 1000).substr(1);  // zero-padded to 3
      while (digits.back() == '0') digits.pop_back();
      out += "." + digits;
    }
    out += "s";
  }
  return out;
}

}  // namespace orch
