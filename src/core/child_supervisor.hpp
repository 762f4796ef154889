// Runs task commands as child processes of the scheduler: spawn, capture the
// tail of their output, time them out, stop them and reap them, without ever
// blocking. The PostgreSQL glue waits on watched_fds(), next_deadline() and a
// SIGCHLD handler that sets its latch, then calls poll().
//
// Every child gets its own process group, so a timeout or stop reaches the
// grandchildren too, and when the main process ends the whole group is
// killed: nothing a task started outlives the task.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/deadlines.hpp"
#include "core/spawner.hpp"
#include "core/cpp_only.hpp"

namespace orch {

struct SpawnRequest {
  // argv[0] is looked up in PATH (the scheduler's PATH, not env's) if it has
  // no '/', like execvp; a relative path is relative to working_directory.
  std::vector<std::string> argv;
  std::vector<std::string> env;  // the complete environment, "KEY=VALUE" each
  std::string working_directory;  // empty: inherit
  std::chrono::milliseconds timeout{0};  // 0: none
  std::chrono::milliseconds kill_grace{5000};  // SIGTERM -> SIGKILL delay
  std::size_t max_output = 1 << 20;  // bytes of combined stdout+stderr kept: the tail
};

// How an attempt ended. A child: Exited, Signaled, TimedOut, Stopped or
// SpawnFailed. Executors without an exit code (http) also report
// Succeeded, Failed (worth another attempt) and Rejected (not: the answer
// would be the same).
enum class Ending { Exited, Signaled, TimedOut, Stopped, SpawnFailed, Succeeded, Failed, Rejected };

struct FinishedChild {
  std::uint64_t id = 0;  // the caller's id given to spawn (a task id)
  int pid = 0;  // 0 if spawn failed
  Ending ending = Ending::Exited;
  int exit_code = -1;  // Exited: the code; otherwise -1
  int signal = 0;  // Signaled, TimedOut, Stopped: the signal that ended it, else 0
  std::string output;  // tail of stdout+stderr, at most max_output bytes (raw bytes)
  bool output_truncated = false;  // true if earlier bytes were dropped
  // Empty when Exited with 0; else one line: "exited with code 3",
  // "killed by signal 9 (Killed)", "timed out after 2s", "stopped", or why
  // the spawn failed.
  std::string error;
  SteadyTime started, ended;
};

class ChildSupervisor {
 public:
  ChildSupervisor();
  ChildSupervisor(const ChildSupervisor &) = delete;
  ChildSupervisor &operator=(const ChildSupervisor &) = delete;
  ~ChildSupervisor();  // kill_all()

  // Starts the child in its own process group with stdin from /dev/null,
  // stdout+stderr into one pipe, default signal dispositions, an empty signal
  // mask and no inherited descriptor above 2. Returns the pid, or 0 if the
  // spawn failed: the next poll() then reports it as Ending::SpawnFailed.
  // Throws InvalidInput for a malformed request (empty argv, NUL byte, env
  // entry without '=', negative duration) and std::runtime_error if `id` is
  // already in use.
  int spawn(std::uint64_t id, const SpawnRequest &request, SteadyTime now);

  // The same, with posix_spawn on the supervisor's SpawnThread: returns at
  // once. poll() learns the pid once the child runs (take_started() gives
  // it) or reports the failed spawn. Until then the child counts as
  // running, and a stop() is sent when it has its pid.
  void spawn_later(std::uint64_t id, const SpawnRequest &request, SteadyTime now);
  // (id, pid) of each spawn_later() child that poll() saw start since the
  // last call.
  std::vector<std::pair<std::uint64_t, int>> take_started();

  // SIGTERM to the child's group, SIGKILL after its kill_grace; it finishes
  // with Ending::Stopped. A child already timed out stays TimedOut. Unknown
  // id: no-op.
  void stop(std::uint64_t id, SteadyTime now);

  // Non-blocking: reads available output, applies timeouts, reaps the
  // children whose main process exited (waitpid on own pids only: the host
  // process has other children) and returns them. A finished child's group
  // is SIGKILLed and its pipe closed, even if a grandchild still holds it.
  std::vector<FinishedChild> poll(SteadyTime now);

  std::vector<int> watched_fds() const;  // open pipes and spawn results: wake when readable
  // Earliest timeout or grace deadline; a time in the past if a spawn
  // failure waits to be reported.
  std::optional<SteadyTime> next_deadline() const;
  std::size_t running() const;  // spawned children not yet returned by poll()

  // SIGKILLs every group and reaps every child (blocking waitpid on own pids
  // only), dropping their results. For the worker's exit.
  void kill_all() noexcept;

 private:
  class OutputTail;
  struct Child;

  bool prepare(std::uint64_t id, const SpawnRequest &request, SteadyTime now, SpawnJob &job);
  bool spawned(std::uint64_t id, int pid, int error, SteadyTime now);
  void collect_spawns(SteadyTime now);
  void read_output(Child &child);
  void send_term(Child &child, SteadyTime now);
  void apply_deadlines(Child &child, SteadyTime now);
  bool id_in_use(std::uint64_t id) const;

  std::vector<Child> children_;
  std::vector<FinishedChild> failed_;  // spawn failures not yet reported
  std::vector<std::pair<std::uint64_t, int>> started_;  // for take_started()
  std::unique_ptr<SpawnThread> spawn_thread_;  // made at the first spawn_later()
};

// Recovery after a crash: SIGKILL process group `pgid` if it still exists.
// Returns true if a signal was delivered. Refuses (false) the caller's own
// group; throws InvalidInput for pgid <= 1, which kill() would widen to
// every process.
bool kill_process_group(int pgid);

}  // namespace orch
