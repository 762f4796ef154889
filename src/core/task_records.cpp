#include "core/task_records.hpp"

#include <chrono>

#include "core/output_text.hpp"

namespace orch {

nlohmann::json started_record(std::uint64_t task_id, int pid) {
  double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  return {{"id", task_id}, {"pid", pid}, {"started_at", now}};
}

nlohmann::json finished_record(std::uint64_t task_id, const AttemptOutcome &outcome, std::optional<int> exit_code,
                               const std::string &output, bool truncated, const std::string &error) {
  return {{"id", task_id},
          {"outcome", outcome_label(outcome.outcome)},
          {"retry_ms", outcome.retry_after.count()},
          {"exit_code", exit_code ? nlohmann::json(*exit_code) : nlohmann::json(nullptr)},
          {"output", to_database_text(output)},
          {"truncated", truncated},
          {"error", error.empty() ? nlohmann::json(nullptr) : nlohmann::json(to_database_text(error))}};
}

TaskSpec retry_policy_of(const nlohmann::json &row) {
  TaskSpec spec;
  spec.max_retries = row.at("max_retries").get<int>();
  spec.retry_delay = std::chrono::milliseconds(row.at("retry_delay_ms").get<long long>());
  spec.retry_backoff = row.at("retry_backoff").get<double>();
  return spec;
}

}  // namespace orch
