// The executor of commands and shell scripts on this host: a
// ChildSupervisor, and the environment every command gets.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "core/child_supervisor.hpp"
#include "core/cpp_only.hpp"
#include "core/executor.hpp"

namespace orch {

// The environment of a command: a few variables of the server's own (HOME,
// LANG, LC_ALL, TZ, USER, LOGNAME, PATH), the task's env, the run's input as
// ORCH_INPUT_*, then what identifies it (ORCH_PROCESS_ID, ORCH_RUN_ID,
// ORCH_TASK_ID, ORCH_TASK_NAME, ORCH_ATTEMPT) and `marker`. Throws
// InvalidInput for input that cannot be variables.
std::vector<std::string> command_environment(const TaskLaunch &task, const std::string &marker);

class CommandExecutor final : public Executor {
 public:
  // `marker` ("NAME=VALUE") goes into every command's environment, so that a
  // later scheduler finds leftovers after a crash.
  explicit CommandExecutor(std::string marker) : marker_(std::move(marker)) {}

  // Applies to later launches (settings may change on reload).
  void set_limits(std::chrono::milliseconds kill_grace, std::size_t max_output) {
    kill_grace_ = kill_grace;
    max_output_ = max_output;
  }

  Launch launch(const TaskLaunch &task, SteadyTime now) override;
  void stop(std::uint64_t id, SteadyTime now) override { children_.stop(id, now); }
  std::vector<AttemptEnd> poll(SteadyTime now) override;
  std::optional<SteadyTime> next_deadline() const override;
  std::vector<int> descriptors() const override { return children_.watched_fds(); }
  std::size_t running() const override { return children_.running() + refused_.size(); }
  void abandon_all() noexcept override { children_.kill_all(); }

 private:
  const std::string marker_;
  std::chrono::milliseconds kill_grace_{5000};
  std::size_t max_output_ = 1 << 20;
  ChildSupervisor children_;
  std::vector<AttemptEnd> refused_;  // requests the supervisor refused, reported by the next poll()
};

}  // namespace orch
