#include "pg/sql_task_executor.hpp"

#include "core/interval.hpp"
#include "pg/background_worker.hpp"
#include "pg/guards.hpp"
#include "pg/settings.hpp"
#include "pg/sql_task_runner.hpp"

namespace orch::pg {
namespace {

// Its statement ends at the next interrupt check and its transaction is
// rolled back; worker_stopped() tells when it is gone.
void terminate(BackgroundWorkerHandle *handle) {
  pg_call([&] { TerminateBackgroundWorker(handle); });
}

void free_handle(BackgroundWorkerHandle *handle) {
  pg_call([&] { pfree(handle); });
}

}  // namespace

Launch SqlTaskExecutor::launch(const TaskLaunch &task, SteadyTime now) {
  BackgroundWorkerHandle *handle = start_sql_task_worker(task.id, task.attempt);
  if (handle == nullptr) return Launch{LaunchStatus::NoSlot, 0};  // max_worker_processes are all busy
  Worker worker{handle, task.timeout};
  if (task.timeout.count() > 0)
    worker.deadline = now + task.timeout + std::chrono::milliseconds(settings.kill_grace_ms);
  // An entry left for this id is an earlier attempt whose worker recorded
  // its retry and is exiting: nothing is left to report for it.
  if (auto left = workers_.find(task.id); left != workers_.end()) {
    free_handle(left->second.handle);
    workers_.erase(left);
  }
  workers_.emplace(task.id, worker);
  return Launch{LaunchStatus::RecordsItself, 0};
}

// Reported Stopped once its worker is gone (a timed-out one stays TimedOut).
void SqlTaskExecutor::stop(std::uint64_t id, SteadyTime) {
  auto found = workers_.find(id);
  if (found == workers_.end() || found->second.ended_by_executor) return;
  terminate(found->second.handle);
  found->second.ended_by_executor = Ending::Stopped;
}

// A worker that recorded its attempt leaves the task neither DISPATCHED nor
// RUNNING, so orch._tasks_finished ignores what is reported for it.
std::vector<AttemptEnd> SqlTaskExecutor::poll(SteadyTime now) {
  std::vector<AttemptEnd> ended;
  for (auto it = workers_.begin(); it != workers_.end();) {
    Worker &worker = it->second;
    if (!worker.ended_by_executor && worker.deadline && now >= *worker.deadline) {
      terminate(worker.handle);
      worker.ended_by_executor = Ending::TimedOut;
    }
    if (!worker_stopped(worker.handle)) {
      ++it;
      continue;
    }
    AttemptEnd end;
    end.id = it->first;
    end.ending = worker.ended_by_executor.value_or(Ending::Signaled);
    end.error = end.ending == Ending::Stopped    ? "stopped"
                : end.ending == Ending::TimedOut ? "timed out after " + format_interval(worker.timeout)
                                                 : "the sql task's worker exited without recording a result";
    free_handle(worker.handle);
    it = workers_.erase(it);
    ended.push_back(std::move(end));
  }
  return ended;
}

std::optional<SteadyTime> SqlTaskExecutor::next_deadline() const {
  std::optional<SteadyTime> earliest;
  for (const auto &[id, worker] : workers_)
    if (worker.deadline && !worker.ended_by_executor && (!earliest || *worker.deadline < *earliest))
      earliest = worker.deadline;
  return earliest;
}

void SqlTaskExecutor::abandon_all() noexcept {
  for (const auto &[id, worker] : workers_) {
    try {
      terminate(worker.handle);
    } catch (...) {
    }
  }
}

}  // namespace orch::pg
