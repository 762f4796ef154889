#include "core/command_executor.hpp"

#include <cstdlib>
#include <exception>

#include "core/placeholders.hpp"

namespace orch {

std::vector<std::string> command_environment(const TaskLaunch &task, const std::string &marker) {
  std::vector<std::string> env;
  for (const char *name : {"HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME"})
    if (const char *value = std::getenv(name)) env.push_back(std::string(name) + "=" + value);
  const char *path = std::getenv("PATH");
  env.push_back(std::string("PATH=") + (path ? path : "/usr/local/bin:/usr/bin:/bin"));
  for (const auto &[key, value] : task.env) env.push_back(key + "=" + value);
  if (!task.input_json.empty())
    for (const auto &[key, value] : input_environment(task.input_json)) env.push_back(key + "=" + value);
  env.push_back("ORCH_PROCESS_ID=" + task.process_id);
  env.push_back("ORCH_RUN_ID=" + std::to_string(task.run_id));
  env.push_back("ORCH_TASK_ID=" + std::to_string(task.id));
  env.push_back("ORCH_TASK_NAME=" + task.name);
  env.push_back("ORCH_ATTEMPT=" + std::to_string(task.attempt));
  env.push_back(marker);
  return env;
}

Launch CommandExecutor::launch(const TaskLaunch &task, SteadyTime now) {
  try {
    SpawnRequest request;
    request.argv = task.kind == "shell" ? std::vector<std::string>{"/bin/sh", "-c", task.shell} : task.command;
    request.env = command_environment(task, marker_);
    request.working_directory = task.working_directory;
    request.timeout = task.timeout;
    request.kill_grace = kill_grace_;
    request.max_output = max_output_;
    int pid = children_.spawn(task.id, request, now);
    return pid > 0 ? Launch{LaunchStatus::Running, pid} : Launch{LaunchStatus::Failed, 0};
  } catch (const std::exception &e) {
    // A request the supervisor refuses (say, a NUL byte) fails the task, not the scheduler.
    AttemptEnd refused;
    refused.id = task.id;
    refused.ending = Ending::SpawnFailed;
    refused.error = e.what();
    refused_.push_back(std::move(refused));
    return Launch{LaunchStatus::Failed, 0};
  }
}

std::vector<AttemptEnd> CommandExecutor::poll(SteadyTime now) {
  std::vector<AttemptEnd> ended = std::move(refused_);
  refused_.clear();
  for (FinishedChild &child : children_.poll(now)) {
    AttemptEnd end;
    end.id = child.id;
    end.ending = child.ending;
    if (child.ending == Ending::Exited) end.exit_code = child.exit_code;
    end.output = std::move(child.output);
    end.output_truncated = child.output_truncated;
    end.error = std::move(child.error);
    ended.push_back(std::move(end));
  }
  return ended;
}

std::optional<SteadyTime> CommandExecutor::next_deadline() const {
  // A refused request waits to be reported: now.
  if (!refused_.empty()) return SteadyTime::min();
  return children_.next_deadline();
}

}  // namespace orch
