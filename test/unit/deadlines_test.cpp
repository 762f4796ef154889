#include "core/deadlines.hpp"

#include <gtest/gtest.h>

namespace orch {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

// A clock the test moves by hand.
class ManualClock final : public Clock {
 public:
  SteadyTime now() const override { return now_; }
  void advance(std::chrono::nanoseconds by) { now_ += by; }

 private:
  SteadyTime now_ = SteadyTime{} + 1000h;
};

TEST(Deadlines, NoneSetSleepsTheSafetyNet) {
  ManualClock clock;
  Deadlines deadlines;
  EXPECT_FALSE(deadlines.earliest());
  EXPECT_EQ(Deadlines::sleep_ms(deadlines.earliest(), clock.now(), 1000ms), 1000);
  for (Due due : {Due::RecordStarted, Due::AdvanceRuns, Due::NextTick, Due::NextReady, Due::Prune})
    EXPECT_FALSE(deadlines.is_due(due, clock.now()));
}

TEST(Deadlines, TheEarliestWinsWhicheverKindItIs) {
  ManualClock clock;
  Deadlines deadlines;
  deadlines.set(Due::NextTick, clock.now() + 800ms);
  deadlines.set(Due::AdvanceRuns, clock.now() + 100ms);
  deadlines.set(Due::NextReady, clock.now() + 300ms);
  EXPECT_EQ(deadlines.earliest(), clock.now() + 100ms);
  EXPECT_EQ(Deadlines::sleep_ms(deadlines.earliest(), clock.now(), 1000ms), 100);
  // An executor's deadline (a command's timeout) counts too.
  EXPECT_EQ(deadlines.earliest(clock.now() + 40ms), clock.now() + 40ms);
  EXPECT_EQ(deadlines.earliest(clock.now() + 400ms), clock.now() + 100ms);
  deadlines.clear(Due::AdvanceRuns);
  EXPECT_EQ(deadlines.earliest(), clock.now() + 300ms);
}

TEST(Deadlines, DueExactlyAtItsTimeNotBefore) {
  ManualClock clock;
  Deadlines deadlines;
  deadlines.set(Due::NextTick, clock.now() + 250ms);
  clock.advance(249ms);
  EXPECT_FALSE(deadlines.is_due(Due::NextTick, clock.now()));
  EXPECT_EQ(Deadlines::sleep_ms(deadlines.earliest(), clock.now(), 1000ms), 1);
  clock.advance(1ms);
  EXPECT_TRUE(deadlines.is_due(Due::NextTick, clock.now()));
  EXPECT_EQ(Deadlines::sleep_ms(deadlines.earliest(), clock.now(), 1000ms), 0);
  clock.advance(5s);  // long past: still due, sleep nothing
  EXPECT_TRUE(deadlines.is_due(Due::NextTick, clock.now()));
  EXPECT_EQ(Deadlines::sleep_ms(deadlines.earliest(), clock.now(), 1000ms), 0);
}

TEST(Deadlines, SleepRoundsUpSoItNeverWakesEarly) {
  ManualClock clock;
  Deadlines deadlines;
  deadlines.set(Due::NextReady, clock.now() + 1500us);
  EXPECT_EQ(Deadlines::sleep_ms(deadlines.earliest(), clock.now(), 1000ms), 2);
  deadlines.set(Due::NextReady, clock.now() + 1ns);
  EXPECT_EQ(Deadlines::sleep_ms(deadlines.earliest(), clock.now(), 1000ms), 1);
}

TEST(Deadlines, SleepIsCappedBySafetyNet) {
  ManualClock clock;
  Deadlines deadlines;
  deadlines.set(Due::NextTick, clock.now() + 24h);
  EXPECT_EQ(Deadlines::sleep_ms(deadlines.earliest(), clock.now(), 1000ms), 1000);
}

TEST(Deadlines, SetIfUnsetKeepsTheFirstOfABatch) {
  ManualClock clock;
  Deadlines deadlines;
  deadlines.set_if_unset(Due::RecordStarted, clock.now() + 50ms);
  clock.advance(30ms);
  deadlines.set_if_unset(Due::RecordStarted, clock.now() + 50ms);  // a later launch of the same batch
  EXPECT_EQ(deadlines.at(Due::RecordStarted), clock.now() + 20ms);
  clock.advance(20ms);
  EXPECT_TRUE(deadlines.is_due(Due::RecordStarted, clock.now()));
  deadlines.clear(Due::RecordStarted);
  deadlines.set_if_unset(Due::RecordStarted, clock.now() + 50ms);  // a new batch
  EXPECT_EQ(deadlines.at(Due::RecordStarted), clock.now() + 50ms);
}

TEST(Deadlines, SetReplacesTheNextTick) {
  ManualClock clock;
  Deadlines deadlines;
  deadlines.set(Due::NextTick, clock.now() + 10s);
  deadlines.set(Due::NextTick, clock.now() + 2s);  // a schedule changed
  EXPECT_EQ(deadlines.at(Due::NextTick), clock.now() + 2s);
  deadlines.set(Due::NextTick, clock.now() + 5s);
  EXPECT_EQ(deadlines.at(Due::NextTick), clock.now() + 5s);
}

}  // namespace
}  // namespace orch
