#include "core/task_records.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

using namespace std::chrono_literals;
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
  nlohmann::json retry = orch::finished_record(7, {orch::Outcome::Retry, 1500ms}, 3, "out\0put"s, true, "");
  EXPECT_EQ(retry.dump(),
            "{\"error\":null,\"exit_code\":3,\"id\":7,\"outcome\":\"RETRY\",\"output\":\"out\xEF\xBF\xBDput\",\"retry_ms\":1500,"
            "\"truncated\":true}");
  nlohmann::json failed = orch::finished_record(8, {orch::Outcome::Failed}, std::nullopt, "", false, "timed out");
  EXPECT_TRUE(failed.at("exit_code").is_null());
  EXPECT_EQ(failed.at("error"), "timed out");
  EXPECT_EQ(failed.at("outcome"), "FAILED");
}

TEST(TaskRecords, RetryPolicyFromARow) {
  orch::TaskSpec spec = orch::retry_policy_of({{"max_retries", 3}, {"retry_delay_ms", 250}, {"retry_backoff", 2.0}});
  EXPECT_EQ(spec.max_retries, 3);
  EXPECT_EQ(spec.retry_delay, 250ms);
  EXPECT_EQ(spec.retry_backoff, 2.0);
  EXPECT_THROW(orch::retry_policy_of({{"max_retries", 3}}), nlohmann::json::exception);
}
