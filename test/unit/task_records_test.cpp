#include "core/task_records.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

using namespace std::string_literals;

TEST(TaskRecords, StartedCarriesIdPidAndTheTimeNow) {
  double before = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  nlohmann::json record = orch::started_record(42, 1234);
  EXPECT_EQ(record.at("id"), 42);
  EXPECT_EQ(record.at("pid"), 1234);
  EXPECT_GE(record.at("started_at").get<double>(), before);
  EXPECT_LT(record.at("started_at").get<double>(), before + 5);
}

TEST(TaskRecords, FinishedIsTheFormatOfTasksFinished) {
  nlohmann::json exited = orch::finished_record(7, orch::Ending::Exited, 3, "out\0put"s, true, "");
  EXPECT_EQ(exited.dump(),
            "{\"ending\":\"exited\",\"error\":null,\"exit_code\":3,\"id\":7,\"output\":\"out\xEF\xBF\xBDput\","
            "\"truncated\":true}");
  nlohmann::json timed_out = orch::finished_record(8, orch::Ending::TimedOut, std::nullopt, "", false, "timed out");
  EXPECT_TRUE(timed_out.at("exit_code").is_null());
  EXPECT_EQ(timed_out.at("error"), "timed out");
  EXPECT_EQ(timed_out.at("ending"), "timed_out");
}

TEST(TaskRecords, EveryEndingHasTheLabelOrchTasksFinishedReads) {
  EXPECT_EQ(orch::ending_label(orch::Ending::Exited), "exited");
  EXPECT_EQ(orch::ending_label(orch::Ending::Signaled), "signaled");
  EXPECT_EQ(orch::ending_label(orch::Ending::TimedOut), "timed_out");
  EXPECT_EQ(orch::ending_label(orch::Ending::Stopped), "stopped");
  EXPECT_EQ(orch::ending_label(orch::Ending::SpawnFailed), "spawn_failed");
}

TEST(TaskRecords, AStartThatAlsoEndedMovesIntoTheEnd) {
  nlohmann::json started = nlohmann::json::array(
      {orch::started_record(1, 101), orch::started_record(2, 102), orch::started_record(3, 0, "job 7")});
  nlohmann::json finished = nlohmann::json::array(
      {orch::finished_record(2, orch::Ending::Exited, 0, "", false, ""),
       orch::finished_record(3, orch::Ending::Exited, 1, "", false, ""),
       orch::finished_record(9, orch::Ending::Signaled, std::nullopt, "", false, "")});
  double started_at = started[1].at("started_at").get<double>();
  orch::fold_started_into_finished(started, finished);
  ASSERT_EQ(started.size(), 1u);  // task 1 is still running
  EXPECT_EQ(started[0].at("id"), 1);
  EXPECT_EQ(finished[0].at("pid"), 102);
  EXPECT_EQ(finished[0].at("execution_name"), "102");
  EXPECT_EQ(finished[0].at("started_at").get<double>(), started_at);
  EXPECT_TRUE(finished[1].at("pid").is_null());
  EXPECT_EQ(finished[1].at("execution_name"), "job 7");
  EXPECT_FALSE(finished[2].contains("started_at"));  // started in an earlier transaction
}
