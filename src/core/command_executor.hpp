// The executor of commands and shell scripts on this host: a
// ChildSupervisor, the environment every command gets, and its output file
// ($ORCH_OUTPUT: fresh and empty for each attempt, read and removed when it
// ends).
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "core/child_supervisor.hpp"
#include "core/cpp_only.hpp"
#include "core/executor.hpp"
#include "core/outputs.hpp"

namespace orch {

// The environment of a command: a few variables of the server's own (HOME,
// LANG, LC_ALL, TZ, USER, LOGNAME, PATH), the task's env, the run's input as
// ORCH_INPUT_*, then what identifies it (ORCH_PROCESS_ID, ORCH_RUN_ID,
// ORCH_TASK_ID, ORCH_TASK_NAME, ORCH_ATTEMPT), ORCH_OUTPUTS for a shell task
// with ancestors, ORCH_ITEM and ORCH_ITEM_INDEX for a fan-out instance,
// ORCH_OUTPUT=output_file and `marker` (unless empty). Throws InvalidInput
// for input that cannot be variables.
std::vector<std::string> command_environment(const TaskLaunch &task, const std::string &marker,
                                             const std::string &output_file);

// Reads and removes an attempt's $ORCH_OUTPUT file: when the attempt exited,
// its content becomes end.output_data (or end.output_error says why it
// cannot). A missing file is no output.
void collect_output_file(const std::string &path, std::size_t max_output_data, AttemptEnd &end);

class CommandExecutor final : public Executor {
 public:
  // `marker` ("NAME=VALUE") goes into every command's environment, so that a
  // later scheduler finds leftovers after a crash. Output files are made in
  // `output_directory`, which only this executor uses (it removes what an
  // earlier one left there).
  CommandExecutor(std::string marker, std::string output_directory);

  // Applies to later launches (settings may change on reload).
  void set_limits(std::chrono::milliseconds kill_grace, std::size_t max_output, std::size_t max_output_data) {
    kill_grace_ = kill_grace;
    max_output_ = max_output;
    max_output_data_ = max_output_data;
  }

  Launch launch(const TaskLaunch &task, SteadyTime now) override;
  void stop(std::uint64_t id, SteadyTime now) override { children_.stop(id, now); }
  std::vector<AttemptEnd> poll(SteadyTime now) override;
  std::vector<Started> started() override;
  std::optional<SteadyTime> next_deadline() const override;
  std::vector<Watch> descriptors() const override {
    std::vector<Watch> watches;
    for (int fd : children_.watched_fds()) watches.push_back({fd, false});
    return watches;
  }
  std::size_t running() const override { return children_.running() + refused_.size(); }
  void abandon_all() noexcept override { children_.kill_all(); }

 private:
  const std::string marker_;
  const std::string output_directory_;
  std::chrono::milliseconds kill_grace_{5000};
  std::size_t max_output_ = 1 << 20;
  std::size_t max_output_data_ = kDefaultMaxOutputData;
  ChildSupervisor children_;
  std::map<std::uint64_t, std::string> output_files_;  // by attempt id
  std::uint64_t launches_ = 0;  // makes each output file's name new
  std::vector<AttemptEnd> refused_;  // requests the supervisor refused, reported by the next poll()
};

}  // namespace orch
