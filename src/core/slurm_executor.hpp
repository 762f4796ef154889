// The executor of command and shell tasks with "executor": "slurm": each
// attempt is a Slurm batch job. The Slurm commands (sbatch, scontrol, sacct,
// scancel) run as child processes of their own ChildSupervisor, so a slow
// or unreachable controller never blocks the scheduler's loop.
//
// An attempt's life: sbatch (the job script exports the task's environment
// and execs its command; its output and $ORCH_OUTPUT are files in the
// executor's directory, which the compute nodes must share) -> started()
// names it by its job id -> `scontrol show job -o` every half second, and
// `sacct -c` once the controller has forgotten the job -> the job's state
// and ExitCode, the tail of its output file and its $ORCH_OUTPUT. Stop and
// timeout (counted from the submission) are `scancel`. A controller that
// stays unreachable for the unreachable timeout fails the attempt with
// Slurm's message. After a restart, adopt() watches a job again.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/child_supervisor.hpp"
#include "core/cpp_only.hpp"
#include "core/executor.hpp"

namespace orch {

class SlurmExecutor final : public Executor {
 public:
  SlurmExecutor() = default;
  SlurmExecutor(const SlurmExecutor &) = delete;
  SlurmExecutor &operator=(const SlurmExecutor &) = delete;

  // Apply to later launches and checks (settings may change on reload).
  // `directory` is created (mode 0700) by the first launch that needs it.
  void set_limits(std::size_t max_output, std::size_t max_output_data, std::chrono::milliseconds unreachable_timeout,
                  const std::string &directory);

  Launch launch(const TaskLaunch &task, SteadyTime now) override;
  // Watches job `job_id`, which attempt `attempt` of task `id` submitted
  // before a restart; `deadline`: when its timeout ends, if it has one.
  void adopt(std::uint64_t id, int attempt, const std::string &job_id, std::optional<SteadyTime> deadline,
             SteadyTime now);
  void stop(std::uint64_t id, SteadyTime now) override;
  std::vector<AttemptEnd> poll(SteadyTime now) override;
  std::vector<Started> started() override;
  std::optional<SteadyTime> next_deadline() const override;
  std::vector<Watch> descriptors() const override;
  std::size_t running() const override { return jobs_.size() + ended_.size(); }
  // Forgets the jobs (they run on; the next scheduler adopts them) and ends
  // the Slurm commands in flight.
  void abandon_all() noexcept override;

 private:
  enum class Step { Submit, Query, History, Cancel };
  struct Job {
    int attempt = 1;
    std::string job_id;  // "" until sbatch answered
    std::optional<SteadyTime> deadline;  // the timeout; from the submission
    std::optional<Ending> ended_by;  // Stopped or TimedOut once scancel was sent
    std::string error;  // ... and why
    bool command_running = false;  // a Slurm command about it runs now
    SteadyTime next_check{};
    SteadyTime last_contact{};  // when Slurm last answered about it (or it was submitted)
  };

  std::string file(std::uint64_t id, int attempt, const char *suffix) const;
  void run(std::uint64_t id, Step step, std::vector<std::string> argv, SteadyTime now);
  void on_command_end(std::uint64_t id, Step step, const FinishedChild &child, SteadyTime now);
  void cancel(std::uint64_t id, Job &job, Ending why, const std::string &error, SteadyTime now);
  void finish(std::uint64_t id, Ending ending, std::optional<int> exit_code, std::string error);
  void unreachable(std::uint64_t id, Job &job, const std::string &message, SteadyTime now);

  std::size_t max_output_ = 1 << 20;
  std::size_t max_output_data_ = 1 << 20;
  std::chrono::milliseconds unreachable_timeout_{60000};
  std::string directory_;
  std::map<std::uint64_t, Job> jobs_;  // by task id
  ChildSupervisor commands_;
  std::map<std::uint64_t, std::pair<std::uint64_t, Step>> steps_;  // command id -> task id and step
  std::uint64_t next_command_id_ = 1;
  std::vector<Started> started_;
  std::vector<AttemptEnd> ended_;
};

}  // namespace orch
