// The executor of sql tasks: each attempt in a background worker of its own
// (sql_task_runner.hpp), which records RUNNING and its outcome itself. The
// executor only watches the workers: it ends one that outlives its timeout
// by orch.kill_grace (its own statement_timeout should have ended it), ends
// them when their run is stopped, and reports an attempt only when its
// worker exited without recording it.
#pragma once

#include <optional>
#include <unordered_map>
#include <vector>

#include "core/executor.hpp"
#include "pg/postgres_headers.hpp"

namespace orch::pg {

class SqlTaskExecutor final : public Executor {
 public:
  SqlTaskExecutor() = default;
  SqlTaskExecutor(const SqlTaskExecutor &) = delete;
  SqlTaskExecutor &operator=(const SqlTaskExecutor &) = delete;
  ~SqlTaskExecutor() override { abandon_all(); }

  Launch launch(const TaskLaunch &task, SteadyTime now) override;
  void stop(std::uint64_t id, SteadyTime now) override;
  std::vector<AttemptEnd> poll(SteadyTime now) override;
  std::optional<SteadyTime> next_deadline() const override;
  std::vector<Watch> descriptors() const override { return {}; }
  std::size_t running() const override { return workers_.size(); }
  // Terminates every worker: the next scheduler recovers their attempts, as
  // it does the commands'.
  void abandon_all() noexcept override;

 private:
  struct Worker {
    BackgroundWorkerHandle *handle;
    std::chrono::milliseconds timeout{0};  // 0: none
    std::optional<SteadyTime> deadline;  // timeout + orch.kill_grace
    // Set when the executor ended it (TimedOut or Stopped); otherwise an
    // exit without a record of the attempt is a failure (Signaled).
    std::optional<Ending> ended_by_executor;
  };
  std::unordered_map<std::uint64_t, Worker> workers_;  // not yet seen to exit
};

}  // namespace orch::pg
