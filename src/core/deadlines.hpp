// The scheduler's deadlines, one type for all of them, and the clock it
// reads them against. The loop sleeps until the earliest deadline (or a
// latch); each deadline says why it wakes. The clock is injected so the
// model is unit-tested without sleeping (TimescaleDB's Timer idea).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <optional>

#include "core/cpp_only.hpp"

namespace orch {

using SteadyTime = std::chrono::steady_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual SteadyTime now() const = 0;
};

// The process's monotonic clock.
class SteadyClock final : public Clock {
 public:
  SteadyTime now() const override { return std::chrono::steady_clock::now(); }
};

// Why the scheduler wakes, besides its latch and its executors' own
// deadlines (timeouts, kill grace).
enum class Due : std::size_t {
  RecordStarted,  // launched commands to record as RUNNING (batched)
  AdvanceRuns,    // runs whose process row a user held, to try again
  NextTick,       // the earliest schedule tick
  NextReady,      // the earliest delayed task (a retry delay)
  Prune,          // the next look for expired history (done when idle)
  Count
};

class Deadlines {
 public:
  void set(Due due, SteadyTime at) { at_[index(due)] = at; }
  // Keeps the earlier of the two: a batch is recorded by its first member's deadline.
  void set_if_unset(Due due, SteadyTime at) {
    if (!at_[index(due)]) at_[index(due)] = at;
  }
  void clear(Due due) { at_[index(due)].reset(); }
  std::optional<SteadyTime> at(Due due) const { return at_[index(due)]; }
  bool is_due(Due due, SteadyTime now) const { return at_[index(due)] && *at_[index(due)] <= now; }

  // The earliest of these and `other` (an executor's deadline), if any.
  std::optional<SteadyTime> earliest(std::optional<SteadyTime> other = std::nullopt) const;

  // Milliseconds to sleep from `now` until `deadline`: rounded up (waking a
  // millisecond early would find nothing due and spin), 0 if it has passed,
  // and at most `cap` (the safety net), which is also the answer for none.
  static long sleep_ms(std::optional<SteadyTime> deadline, SteadyTime now, std::chrono::milliseconds cap);

 private:
  static std::size_t index(Due due) { return static_cast<std::size_t>(due); }
  std::array<std::optional<SteadyTime>, static_cast<std::size_t>(Due::Count)> at_{};
};

}  // namespace orch
