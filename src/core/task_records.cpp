#include "core/task_records.hpp"

#include <chrono>
#include <unordered_map>

#include "core/output_text.hpp"

namespace orch {

nlohmann::json started_record(std::uint64_t task_id, int pid, const std::string &execution_name) {
  double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  return {{"id", task_id},
          {"pid", pid > 0 ? nlohmann::json(pid) : nlohmann::json(nullptr)},
          {"execution_name", execution_name.empty() && pid > 0 ? std::to_string(pid) : to_database_text(execution_name)},
          {"started_at", now}};
}

nlohmann::json finished_record(std::uint64_t task_id, Ending ending, std::optional<int> exit_code,
                               const std::string &output, bool truncated, const std::string &error) {
  return {{"id", task_id},
          {"ending", ending_label(ending)},
          {"exit_code", exit_code ? nlohmann::json(*exit_code) : nlohmann::json(nullptr)},
          {"output", to_database_text(output)},
          {"truncated", truncated},
          {"error", error.empty() ? nlohmann::json(nullptr) : nlohmann::json(to_database_text(error))}};
}

nlohmann::json finished_record(const AttemptEnd &end) {
  nlohmann::json record = finished_record(end.id, end.ending, end.exit_code, end.output, end.output_truncated,
                                          end.error);
  if (!end.output_data.empty()) record["output_data"] = end.output_data;
  if (!end.output_error.empty()) record["output_error"] = end.output_error;
  return record;
}

void fold_started_into_finished(nlohmann::json &started, nlohmann::json &finished) {
  if (started.empty() || finished.empty()) return;
  std::unordered_map<std::uint64_t, nlohmann::json *> ended;
  for (nlohmann::json &record : finished) ended[record["id"].get<std::uint64_t>()] = &record;
  nlohmann::json still_running = nlohmann::json::array();
  for (nlohmann::json &record : started) {
    auto found = ended.find(record["id"].get<std::uint64_t>());
    if (found == ended.end()) {
      still_running.push_back(std::move(record));
      continue;
    }
    for (const char *key : {"pid", "execution_name", "started_at"}) (*found->second)[key] = std::move(record[key]);
  }
  started = std::move(still_running);
}

std::string ending_label(Ending ending) {
  switch (ending) {
    case Ending::Exited: return "exited";
    case Ending::Signaled: return "signaled";
    case Ending::TimedOut: return "timed_out";
    case Ending::Stopped: return "stopped";
    case Ending::SpawnFailed: return "spawn_failed";
    case Ending::Succeeded: return "succeeded";
    case Ending::Failed: return "failed";
    case Ending::Rejected: return "rejected";
  }
  return "signaled";
}

}  // namespace orch
