// One interface for whatever runs task attempts: commands and shell scripts
// on this host (CommandExecutor), sql tasks in background workers
// (src/pg/sql_task_executor.hpp), http requests (HttpExecutor) and Slurm
// jobs (SlurmExecutor).
// The scheduler claims a task, hands it to the executor of its kind, and
// from then on only polls: nothing here blocks. It sleeps until one of the
// executors' descriptors is readable, their next deadline passes, or its
// latch is set (a child exited, a worker started or ended), then polls.
//
// An executor reports facts (how an attempt ended); what they mean for the
// task (done, retried, failed) is decided in SQL (orch._tasks_finished).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/child_supervisor.hpp"
#include "core/cpp_only.hpp"
#include "core/deadlines.hpp"

namespace orch {

// A claimed attempt, as orch._claim_tasks returns it.
struct TaskLaunch {
  std::uint64_t id = 0;
  std::uint64_t run_id = 0;
  std::string process_id, name;
  std::string kind;  // command, shell, sql or http
  std::vector<std::string> command;  // kind command; kind http: core/http_request.hpp's layout
  std::string shell;  // kind shell
  std::string working_directory;  // empty: the executor's default
  std::vector<std::pair<std::string, std::string>> env;  // the task's own variables
  std::string input_json;  // the run's input (commands get it as ORCH_INPUT_*)
  std::string outputs_json;  // a shell task's ancestors' outputs (ORCH_OUTPUTS); "" for none
  std::string item_json;     // a fan-out instance's item (ORCH_ITEM); "" for other tasks
  std::string slurm_json;    // a Slurm job's options ({"partition", ...}); "" to run on this host
  int item_index = -1;       // ... and its index (ORCH_ITEM_INDEX); -1 for other tasks
  std::chrono::milliseconds timeout{0};  // 0: none
  int attempt = 1;
};

// How an attempt ended: the facts orch._tasks_finished records.
struct AttemptEnd {
  std::uint64_t id = 0;
  Ending ending = Ending::Exited;
  std::optional<int> exit_code;  // when it exited with a code
  std::string output;  // the tail, raw bytes
  bool output_truncated = false;
  std::string error;  // empty when it exited with 0
  std::string output_data;  // its output, one JSON value as text; "" for none
  std::string output_error;  // why its output cannot be stored (then the attempt fails); "" if it can
};

enum class LaunchStatus {
  Running,         // started; the scheduler records it RUNNING with `pid`
  RecordsItself,   // started; it records RUNNING itself (an sql task's worker)
  Submitted,       // on its way; the executor's started() says when it runs, and under which name
  NoSlot,          // nothing was started: claim the task again later
  Failed,          // nothing was started; poll() reports why
};

struct Launch {
  LaunchStatus status = LaunchStatus::Failed;
  int pid = 0;  // 0: none (an http request)
  std::string execution_name;  // the executor's name for the attempt (a pid, "POST http://...")
};

// An attempt that began running since the last started(), with its pid (a
// command's) or the executor's name for it (a Slurm job id).
struct Started {
  std::uint64_t id = 0;
  int pid = 0;
  std::string execution_name;  // "": the pid
};

// A descriptor to wait on: until it is readable, or writable too.
struct Watch {
  int fd = -1;
  bool writable = false;
};

class Executor {
 public:
  virtual ~Executor() = default;
  virtual Launch launch(const TaskLaunch &task, SteadyTime now) = 0;
  // Ends the attempt (a user stopped its run); poll() reports it Stopped,
  // unless it already timed out. Unknown id: nothing.
  virtual void stop(std::uint64_t id, SteadyTime now) = 0;
  // Applies deadlines, collects output, returns the attempts that ended.
  virtual std::vector<AttemptEnd> poll(SteadyTime now) = 0;
  // Attempts launched as Submitted that have begun (found by poll()).
  virtual std::vector<Started> started() { return {}; }
  virtual std::optional<SteadyTime> next_deadline() const = 0;
  virtual std::vector<Watch> descriptors() const = 0;
  virtual std::size_t running() const = 0;  // launched, not yet returned by poll()
  // Ends everything at once, reporting nothing: the scheduler is exiting,
  // and the next one recovers these attempts.
  virtual void abandon_all() noexcept = 0;
};

}  // namespace orch
