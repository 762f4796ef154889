#include "core/run_plan.hpp"

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/placeholders.hpp"

namespace orch {

namespace {

nlohmann::json task_row(const TaskSpec &task, std::size_t index) {
  nlohmann::json row = {
      {"task_index", index},
      {"name", task.name},
      {"kind", task_kind_name(task.kind)},
      {"command", nullptr},
      {"shell", nullptr},
      {"sql", nullptr},
      {"working_directory", nullptr},
      {"env", task.env},
      {"timeout_ms", nullptr},
      {"max_retries", task.max_retries},
      {"retry_delay_ms", task.retry_delay.count()},
      {"retry_backoff", task.retry_backoff},
      {"depends_on", task.depends_on},
      {"uses_outputs", false},
      {"fan_out", nullptr},
      {"max_parallel", nullptr},
      {"slurm", task.slurm_json.empty() ? nlohmann::json(nullptr) : nlohmann::json::parse(task.slurm_json)},
  };
  if (task.fan_out) {
    if (task.fan_out->count >= 0)
      row["fan_out"] = {{"count", task.fan_out->count}};
    else if (!task.fan_out->items_key.empty())
      row["fan_out"] = {{"for_each", task.fan_out->items_key}};
    else
      row["fan_out"] = {{"for_each", nlohmann::json::parse(task.fan_out->items_json)}};
    if (task.max_parallel > 0) row["max_parallel"] = task.max_parallel;
  }
  switch (task.kind) {
    case TaskKind::Command:
    case TaskKind::Http:
      row["command"] = task.command;
      row["uses_outputs"] = has_placeholder(task.command, is_output_key);
      break;
    case TaskKind::Shell: row["shell"] = task.shell; break;
    case TaskKind::Sql: row["sql"] = task.sql; break;
  }
  if (!task.working_directory.empty()) row["working_directory"] = task.working_directory;
  if (task.timeout.count() > 0) row["timeout_ms"] = task.timeout.count();
  return row;
}

}  // namespace

std::string normalized_tasks_json(const ProcessTypeSpec &spec) {
  nlohmann::json rows = nlohmann::json::array();
  for (std::size_t i = 0; i < spec.tasks.size(); ++i) rows.push_back(task_row(spec.tasks[i], i));
  return rows.dump();
}

}  // namespace orch
