#include "core/scheduler_roster.hpp"

#include <gtest/gtest.h>

namespace orch {
namespace {

using namespace std::chrono_literals;
using Ids = std::vector<DatabaseId>;

const SchedulerRoster::Time t0 = SchedulerRoster::Time{} + 1000h;

TEST(SchedulerRoster, EveryConnectableDatabaseIsProbedOnce) {
  SchedulerRoster roster;
  roster.databases_found({5, 16384, 16390}, t0);
  EXPECT_EQ(roster.due(t0), (Ids{5, 16384, 16390}));
  for (DatabaseId db : {5u, 16384u, 16390u}) roster.started(db, t0);
  EXPECT_EQ(roster.due(t0), Ids{});
  EXPECT_EQ(roster.running(), (Ids{5, 16384, 16390}));
  // Two have no extension: their schedulers say so and exit; not started again.
  roster.not_installed(5);
  roster.not_installed(16390);
  roster.exited(5, t0 + 10ms);
  roster.exited(16390, t0 + 10ms);
  roster.databases_found({5, 16384, 16390}, t0 + 1h);
  EXPECT_EQ(roster.due(t0 + 1h), Ids{});
  EXPECT_FALSE(roster.next_due());
  EXPECT_EQ(roster.running(), Ids{16384});
}

TEST(SchedulerRoster, CreateExtensionStartsItAtOnce) {
  SchedulerRoster roster;
  roster.databases_found({5}, t0);
  roster.started(5, t0);
  roster.not_installed(5);
  roster.exited(5, t0 + 5ms);
  roster.extension_changed(5, t0 + 1s);
  EXPECT_EQ(roster.due(t0 + 1s), Ids{5});
  // A database created after the last catalog read is started too.
  roster.extension_changed(16400, t0 + 1s);
  EXPECT_EQ(roster.due(t0 + 1s), (Ids{5, 16400}));
}

TEST(SchedulerRoster, AnExtensionCreatedWhileTheProbeSaidAbsentIsNotLost) {
  SchedulerRoster roster;
  roster.databases_found({5}, t0);
  roster.started(5, t0);
  // The probe read the catalog before CREATE EXTENSION committed.
  roster.extension_changed(5, t0 + 1ms);
  roster.not_installed(5);
  roster.exited(5, t0 + 2ms);
  EXPECT_EQ(roster.due(t0 + 2ms), Ids{5});
}

TEST(SchedulerRoster, AFailingSchedulerBacksOffAloneDoublingToAMinute) {
  SchedulerRoster roster;
  roster.databases_found({5, 6}, t0);
  roster.started(5, t0);
  roster.started(6, t0);
  auto now = t0;
  std::vector<long> delays;
  for (int i = 0; i < 9; ++i) {
    roster.exited(5, now);
    auto next = roster.next_due();
    ASSERT_TRUE(next);
    delays.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(*next - now).count());
    EXPECT_EQ(roster.due(*next - 1ms), Ids{});
    EXPECT_EQ(roster.due(*next), Ids{5});
    now = *next;
    roster.started(5, now);
  }
  EXPECT_EQ(delays, (std::vector<long>{1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000}));
  EXPECT_EQ(roster.running(), (Ids{5, 6}));  // the other database's scheduler was never touched
  // After a minute of running, a failure starts the count again.
  roster.exited(5, now + 61s);
  EXPECT_EQ(roster.next_due(), now + 61s + 1s);
}

TEST(SchedulerRoster, AHeldDatabaseGetsNoSchedulerUntilReleased) {
  SchedulerRoster roster;
  roster.databases_found({5}, t0);
  roster.started(5, t0);
  roster.hold(5);        // DROP DATABASE began: its scheduler is asked to exit
  roster.exited(5, t0 + 1ms);
  roster.extension_changed(5, t0 + 2ms);
  roster.databases_found({5}, t0 + 3ms);
  EXPECT_EQ(roster.due(t0 + 1h), Ids{});
  // The drop failed (another session was connected): the database is probed again.
  roster.release(5, t0 + 4ms);
  EXPECT_EQ(roster.due(t0 + 4ms), Ids{5});
}

TEST(SchedulerRoster, ADroppedDatabaseIsForgotten) {
  SchedulerRoster roster;
  roster.databases_found({5, 6}, t0);
  roster.started(5, t0);
  roster.hold(6);
  roster.release(6, t0 + 1ms);
  roster.databases_found({5}, t0 + 2ms);  // 6 is gone
  EXPECT_EQ(roster.due(t0 + 2ms), Ids{});
  EXPECT_EQ(roster.running(), Ids{5});
}

TEST(SchedulerRoster, NoWorkerSlotIsRetriedLater) {
  SchedulerRoster roster;
  roster.databases_found({5}, t0);
  roster.start_failed(5, t0);
  EXPECT_EQ(roster.due(t0), Ids{});
  EXPECT_EQ(roster.next_due(), t0 + 1s);
}

}  // namespace
}  // namespace orch
