// Durations as users write them in task specs ("10 minutes", "1h30m",
// "00:10:00", "2.5s", a bare number of seconds).
#pragma once

#include <chrono>
#include <string>

#include "core/cpp_only.hpp"

namespace orch {

// Longest accepted interval. Far beyond any sane timeout, yet small enough
// that adding it to any clock's now() cannot overflow (even nanosecond
// clocks only span about 292 years).
constexpr std::chrono::milliseconds kMaxInterval = std::chrono::hours(24 * 36525);  // 100 years

// Parses a non-negative duration: one or more "<number> <unit>" terms
// (spaces optional, "1.5 seconds", "1h30m"), optionally an "HH:MM[:SS[.fff]]"
// clock term, or a lone number meaning seconds. Units (case-insensitive):
// ms/msec(s)/millisecond(s), s/sec(s)/second(s), m/min(s)/minute(s),
// h/hr(s)/hour(s), d/day(s), w/week(s). Sub-millisecond parts are rounded.
// Throws InvalidInput("invalid interval \"...\"[: reason]").
std::chrono::milliseconds parse_interval(const std::string &text);

// Compact form for messages, e.g. "250ms", "2s", "1.5s", "1m30s", "1d2h".
// parse_interval(format_interval(x)) == x for 0 <= x <= kMaxInterval.
std::string format_interval(std::chrono::milliseconds interval);

}  // namespace orch
