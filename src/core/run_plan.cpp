#include "core/run_plan.hpp"

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/placeholders.hpp"

namespace orch {

namespace {

bool uses_outputs(const std::vector<std::string> &command) {
  bool found = false;
  for (const std::string &arg : command)
    (void)replace_placeholders(arg, [&](const std::string &key) -> std::optional<std::string> {
      found = found || is_output_key(key);
      return std::nullopt;
    });
  return found;
}

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
  };
  switch (task.kind) {
    case TaskKind::Command:
      row["command"] = task.command;
      row["uses_outputs"] = uses_outputs(task.command);
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
