#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/command_executor.hpp"
#include "core/deadlines.hpp"
#include "core/http_executor.hpp"
#include "core/orphaned_group.hpp"
#include "core/slurm_executor.hpp"
#include "core/task_records.hpp"
#include "pg/background_worker.hpp"
#include "pg/guards.hpp"
#include "pg/pruner.hpp"
#include "pg/scheduler.hpp"
#include "pg/settings.hpp"
#include "pg/shared_state.hpp"
#include "pg/spi.hpp"
#include "pg/sql_task_executor.hpp"

extern "C" {
#include "commands/dbcommands.h"
}

namespace orch::pg {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

// A child exited: wake up to reap it (its pipe may still be held open by a
// grandchild, so EOF alone is not enough).
void handle_sigchld(SIGNAL_ARGS) {
  int saved_errno = errno;
  SetLatch(MyLatch);
  errno = saved_errno;
}

// The executors of the running scheduler, for its exit.
std::vector<Executor *> exiting_executors;

// The pruner this scheduler started, if any.
BackgroundWorkerHandle *running_pruner = nullptr;

// Also on FATAL and postmaster death, which leave without unwinding: the
// next scheduler recovers the attempts. The pruner goes too (DROP DATABASE
// waits for no pg_orch worker).
void abandon_attempts_at_exit(int, Datum) {
  for (Executor *executor : exiting_executors) executor->abandon_all();
  if (running_pruner != nullptr) TerminateBackgroundWorker(running_pruner);
}

// Longest a launched task shows DISPATCHED before it is recorded RUNNING.
constexpr milliseconds kStartedDelay{50};

// How soon runs whose process rows were held are tried again.
constexpr milliseconds kAdvanceRetryDelay{100};

// How often an idle scheduler looks for expired history, at most (and at
// once after a reload, which may have changed the retention).
constexpr milliseconds kPruneInterval{60000};

// Where commands write their output ($ORCH_OUTPUT): in the data directory,
// which only the server's OS user may enter, one directory per database.
std::string output_directory() {
  return pg_call([] { return std::string(DataDir) + "/pg_orch_outputs_" + std::to_string(MyDatabaseId); });
}

// Where Slurm jobs' scripts and output files go: orch.slurm_directory (which
// the compute nodes must share) or the data directory, one directory per
// database.
std::string slurm_directory() {
  return pg_call([] {
    std::string base = settings.slurm_directory[0] != '\0' ? settings.slurm_directory : DataDir;
    return base + "/pg_orch_slurm_" + std::to_string(MyDatabaseId);
  });
}

// A row of orch._claim_tasks.
TaskLaunch task_launch_of(const Row &row) {
  TaskLaunch task;
  task.id = static_cast<std::uint64_t>(row.int8("id"));
  task.run_id = static_cast<std::uint64_t>(row.int8("run_id"));
  task.process_id = row.text("process_id");
  task.name = row.text("name");
  task.kind = row.text("kind");
  task.command = row.text_array("command");
  task.shell = row.text("shell");
  task.working_directory = row.text("working_directory");
  Json env = Json::parse(row.jsonb_text("env"));
  for (const auto &[key, value] : env.items()) task.env.emplace_back(key, value.get<std::string>());
  task.input_json = row.jsonb_text("input_data");
  task.timeout = milliseconds(row.int8_or_null("timeout_ms").value_or(0));
  task.attempt = row.int4("attempt").value_or(1);
  task.outputs_json = row.jsonb_text("outputs");
  task.item_json = row.jsonb_text("item");
  task.item_index = row.int4("item_index").value_or(-1);
  task.slurm_json = row.jsonb_text("slurm");
  return task;
}

constexpr const char *kRunsInProgress = "SELECT r.id::pg_catalog.text FROM orch.runs r WHERE r.status = 'IN_PROGRESS'";

// Marks every command this scheduler starts, so that a later scheduler of
// the same cluster and database can find leftovers after a crash.
std::string scheduler_marker() {
  return pg_call([] {
    return std::string("ORCH_SCHEDULER=") + std::to_string(GetSystemIdentifier()) + "/" +
           std::to_string(MyDatabaseId);
  });
}

class Scheduler {
 public:
  explicit Scheduler(const Clock &clock) : clock_(clock) { exiting_executors = executors_; }
  ~Scheduler() { exiting_executors.clear(); }  // each executor ends its own

  void run() {
    if (!extension_installed()) {
      tell_launcher_not_installed();
      return;
    }
    // Runs stopped before now have no command here: recovery handles them.
    stop_generation_seen_ = stop_generation();
    apply_settings();
    recover_orphans();
    deadlines_.set(Due::Prune, clock_.now());  // (this also adds the months' partitions of orch.events)
    while (!ShutdownRequestPending) {
      try {
        iterate();
      } catch (const std::exception &e) {
        if (!recover_from_error(e)) return;
      }
    }
  }

 private:
  // One turn: record what finished, kill what was stopped, claim and launch
  // what is ready, then sleep until the next event.
  void iterate() {
    reload_config();
    apply_settings();
    for (Executor *executor : executors_) {
      for (const AttemptEnd &end : executor->poll(clock_.now())) record(end);
      for (const Started &started : executor->started()) {
        started_.push_back(started_record(started.id, started.pid, started.execution_name));
        deadlines_.set_if_unset(Due::RecordStarted, clock_.now() + kStartedDelay);
      }
    }

    // A session committed new work: look at schedules, not only at ready tasks.
    if (std::uint32_t wakes = wake_generation(); wakes != wake_generation_seen_) {
      wake_generation_seen_ = wakes;
      schedules_wanted_ = true;
    }
    auto now = clock_.now();
    std::uint32_t generation = stop_generation();
    bool check_stops = generation != stop_generation_seen_ && !launched_.empty();
    bool fire = settings.enabled && (schedules_wanted_ || deadlines_.is_due(Due::NextTick, now));
    bool claim = settings.enabled && (claim_wanted_ || fire) && running() < capacity();
    bool advance = !runs_to_advance_.empty() && deadlines_.is_due(Due::AdvanceRuns, now);
    bool other_work = !finished_.empty() || check_stops || fire || claim || advance || !unclaimed_.empty();
    // Starts are written once due (kStartedDelay), so that those of
    // attempts that end first are written with their ends.
    fold_started_into_finished(started_, finished_);
    if (started_.empty()) deadlines_.clear(Due::RecordStarted);
    bool started_due = !started_.empty() && deadlines_.is_due(Due::RecordStarted, now);
    std::vector<TaskLaunch> claimed;
    if (other_work || started_due) {
      in_transaction([&] {
        // Launches are recorded without waiting for the WAL flush: the
        // DISPATCHED commit already made each attempt durable, and a crash
        // before this one is flushed loses only pids, which recovery does
        // not need (it finds commands by their marker).
        if (!other_work) query("SET LOCAL synchronous_commit = off");
        if (started_due) query("SELECT orch._tasks_started($1::pg_catalog.jsonb)", {started_.dump()});
        if (advance) advance_runs();
        if (!unclaimed_.empty()) unclaim(unclaimed_);
        if (!finished_.empty()) record_finished(finished_);
        if (check_stops) stop_tasks(query("SELECT orch._stopped_tasks($1::pg_catalog.int8[])", {launched_ids()}));
        if (fire) fire_due_schedules();
        if (claim) claimed = claim_tasks();
      });
      if (fire) schedules_wanted_ = false;
      if (started_due) {
        started_ = Json::array();
        deadlines_.clear(Due::RecordStarted);
      }
      finished_ = Json::array();
      unclaimed_.clear();
      if (check_stops) stop_generation_seen_ = generation;
    }
    launch(claimed);
    // More may be ready if every free slot was filled: come straight back.
    // (Not if a task found no worker slot: none is likely free yet.)
    claim_wanted_ = !claimed.empty() && running() < capacity() && unclaimed_.empty();
    if (!claim_wanted_ && finished_.empty() && unclaimed_.empty()) {
      start_pruner_when_due();
      wait_for_event();
    }
  }

  // The executors take the settings at each turn: a reload may change them.
  void apply_settings() {
    auto max_output = static_cast<std::size_t>(settings.max_output);
    auto max_output_data = static_cast<std::size_t>(settings.max_output_data);
    commands_.set_limits(milliseconds(settings.kill_grace_ms), max_output, max_output_data);
    http_.set_limits(max_output, max_output_data);
    slurm_.set_limits(max_output, max_output_data, milliseconds(settings.slurm_unreachable_timeout_ms),
                      slurm_directory());
  }

  // kPruneInterval, or the shortest retention if that is shorter (a
  // 1-second retention is kept to within about a second).
  static milliseconds prune_interval() {
    milliseconds interval = kPruneInterval;
    for (int seconds : {settings.history_retention_s, settings.events_retention_s})
      if (seconds > 0) interval = std::min(interval, milliseconds(std::int64_t{seconds} * 1000));
    return interval;
  }

  // Idle time: starts the pruner (pruner.hpp) unless it runs already. No
  // batch runs in this process, where it would delay a start.
  void start_pruner_when_due() {
    auto now = clock_.now();
    if (!deadlines_.is_due(Due::Prune, now)) return;
    deadlines_.set(Due::Prune, now + prune_interval());
    if (running_pruner != nullptr) {
      if (!worker_stopped(running_pruner)) return;
      pg_call([] { pfree(running_pruner); });
    }
    running_pruner = start_pruner();  // nullptr (no slot): tried again at the next interval
  }

  std::size_t capacity() const { return static_cast<std::size_t>(settings.max_concurrent_tasks); }
  // orch.max_tasks_per_owner, 0 meaning half of the slots (at least 1).
  int per_owner() const {
    return settings.max_tasks_per_owner > 0 ? settings.max_tasks_per_owner
                                            : std::max(1, settings.max_concurrent_tasks / 2);
  }
  // Every executor's attempts count alike against orch.max_concurrent_tasks.
  std::size_t running() const {
    std::size_t count = 0;
    for (const Executor *executor : executors_) count += executor->running();
    return count;
  }
  Executor &executor_for(const TaskLaunch &task) {
    if (!task.slurm_json.empty()) return slurm_;
    if (task.kind == "sql") return sql_tasks_;
    if (task.kind == "http") return http_;
    return commands_;
  }

  // Records attempts' ends (SQL decides what they mean) and defers the runs
  // whose process row a user holds.
  void record_finished(const Json &finished) {
    defer_runs(query("SELECT unnest(orch._tasks_finished($1::pg_catalog.jsonb))::pg_catalog.text", {finished.dump()}));
  }

  // Runs that could not be moved on because a user's transaction holds their
  // process's row: tried again a little later, never waited for.
  void defer_runs(const std::vector<std::string> &ids) {
    if (ids.empty()) return;
    deadlines_.set_if_unset(Due::AdvanceRuns, clock_.now() + kAdvanceRetryDelay);
    for (const std::string &id : ids) runs_to_advance_.insert(std::stoull(id));
  }

  void advance_runs() {
    std::vector<std::string> ids;
    for (std::uint64_t id : runs_to_advance_) ids.push_back(std::to_string(id));
    runs_to_advance_.clear();
    deadlines_.clear(Due::AdvanceRuns);
    defer_runs(query("SELECT unnest(orch._advance_runs($1::pg_catalog.int8[], true, false))::pg_catalog.text",
                     {id_array(ids)}));
  }

  // Back to PENDING for a while; wake up when they are ready again.
  void unclaim(const std::vector<std::string> &ids) {
    query("SELECT orch._tasks_unclaimed($1::pg_catalog.int8[])", {id_array(ids)});
    note_next_ready();
  }

  void note_next_ready() {
    std::vector<std::string> next = query("SELECT orch._ms_until_next_ready()::pg_catalog.text");
    if (next.empty() || next[0].empty())
      deadlines_.clear(Due::NextReady);
    else
      deadlines_.set(Due::NextReady, clock_.now() + milliseconds(std::stoll(next[0])));
  }

  // An SQL array literal of ids.
  static std::string id_array(const std::vector<std::string> &ids) {
    std::string text = "{";
    for (const std::string &id : ids) text += (text.size() > 1 ? "," : "") + id;
    return text + "}";
  }

  // Starts the runs whose tick has come and notes when the next tick is.
  void fire_due_schedules() {
    std::vector<std::string> next = query("SELECT orch._fire_due_schedules()::pg_catalog.text");
    if (next.empty() || next[0].empty())
      deadlines_.clear(Due::NextTick);
    else
      deadlines_.set(Due::NextTick, clock_.now() + milliseconds(std::max(1LL, std::stoll(next[0]))));
  }

  std::vector<TaskLaunch> claim_tasks() {
    std::size_t free_slots = capacity() - running();
    std::vector<TaskLaunch> tasks;
    for_each_row("SELECT * FROM orch._claim_tasks($1::pg_catalog.int4, $2::pg_catalog.int4)",
                 {std::to_string(free_slots), std::to_string(per_owner())},
                 [&](const Row &row) { tasks.push_back(task_launch_of(row)); });
    // Nothing else is ready now: note when the next delayed retry is.
    if (tasks.size() < free_slots) note_next_ready();
    return tasks;
  }

  // Hands the claimed tasks to their executors. Commands' RUNNING status and
  // pid are recorded with the next transaction, or after kStartedDelay at
  // the latest, so a burst of short tasks costs one transaction per batch,
  // not two.
  void launch(const std::vector<TaskLaunch> &claimed) {
    for (const TaskLaunch &task : claimed) {
      Launch launch = executor_for(task).launch(task, clock_.now());
      switch (launch.status) {
        case LaunchStatus::Running:
          started_.push_back(started_record(task.id, launch.pid, launch.execution_name));
          deadlines_.set_if_unset(Due::RecordStarted, clock_.now() + kStartedDelay);
          launched_.insert(task.id);
          break;
        case LaunchStatus::RecordsItself:
        case LaunchStatus::Submitted:  // the executor's started() names it
        case LaunchStatus::Failed:  // the executor's next poll() reports it
          launched_.insert(task.id);
          break;
        case LaunchStatus::NoSlot:  // the task waits its turn
          unclaimed_.push_back(std::to_string(task.id));
          break;
      }
    }
  }

  void record(const AttemptEnd &end) {
    if (launched_.erase(end.id) == 0) return;
    finished_.push_back(finished_record(end));
    claim_wanted_ = true;  // a slot is free and dependents may be ready
  }

  std::string launched_ids() const {
    std::vector<std::string> ids;
    for (std::uint64_t id : launched_) ids.push_back(std::to_string(id));
    return id_array(ids);
  }

  void stop_tasks(const std::vector<std::string> &ids) {
    for (const std::string &text : ids)
      for (Executor *executor : executors_) executor->stop(std::stoull(text), clock_.now());
  }

  // Sleeps until the latch is set (start/stop committed, child exited,
  // worker started or exited, SIGTERM/SIGHUP), an executor's descriptor is
  // ready, the earliest deadline passes, or the safety net interval ends.
  void wait_for_event() {
    std::optional<SteadyTime> own_deadline = deadlines_.earliest();
    std::optional<SteadyTime> deadline = own_deadline;
    std::vector<Watch> watches;
    for (const Executor *executor : executors_) {
      if (auto at = executor->next_deadline(); at && (!deadline || *at < *deadline)) deadline = at;
      for (const Watch &watch : executor->descriptors()) watches.push_back(watch);
    }
    long timeout = Deadlines::sleep_ms(deadline, clock_.now(), milliseconds(settings.poll_interval_ms));
    // An executor's deadline (a timeout, curl's timer) is the executor's
    // business: its poll() reports what ended.
    bool executor_deadline = deadline != own_deadline && timeout < settings.poll_interval_ms;
    int events = pg_call([&] {
      WaitEventSet *set = create_wait_event_set(static_cast<int>(watches.size()) + 2);
      AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, nullptr);
      AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, nullptr, nullptr);
      for (const Watch &watch : watches)
        AddWaitEventToSet(set, WL_SOCKET_READABLE | (watch.writable ? WL_SOCKET_WRITEABLE : 0), watch.fd, nullptr,
                          nullptr);
      WaitEvent fired[1];
      int count = WaitEventSetWait(set, timeout, fired, 1, PG_WAIT_EXTENSION);
      int what = count == 0 ? WL_TIMEOUT : fired[0].events;
      FreeWaitEventSet(set);
      if (what & WL_LATCH_SET) ResetLatch(MyLatch);
      CHECK_FOR_INTERRUPTS();
      return what;
    });
    // Output alone needs no database work; anything else may mean work.
    if (events == WL_TIMEOUT && executor_deadline) return;
    if (events & WL_TIMEOUT) schedules_wanted_ = true;  // the safety net
    if (events & (WL_LATCH_SET | WL_TIMEOUT)) {
      claim_wanted_ = true;
      deadlines_.clear(Due::NextReady);
    }
  }

  // A reload may have changed the retention: look for expired history now.
  void reload_config() {
    if (reload_config_if_asked()) deadlines_.set(Due::Prune, clock_.now());
  }

  // Whether this database has pg_orch at the library's version. Another
  // version has other functions: its scheduler waits for ALTER EXTENSION
  // pg_orch UPDATE, which asks the launcher for it again.
  bool extension_installed() {
    bool installed = false;
    in_transaction([&] {
      std::vector<std::string> version =
          query("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pg_orch'");
      installed = !version.empty() && version[0] == ORCH_VERSION;
      if (version.empty() || installed) return;
      pg_call([&] {
        ereport(LOG, (errmsg("pg_orch: the extension in database \"%s\" is version %s, the library %s: no scheduler",
                             get_database_name(MyDatabaseId), version[0].c_str(), ORCH_VERSION),
                      errhint("Run ALTER EXTENSION pg_orch UPDATE in that database.")));
      });
    });
    return installed;
  }

  // Tasks a previous scheduler left DISPATCHED or RUNNING: it crashed or the
  // server stopped under it. Their process groups are killed, then each is
  // retried if attempts remain or failed, saying why. A running Slurm job is
  // watched again instead.
  void recover_orphans() {
    kill_marked_processes(marker_);
    in_transaction([&] {
      Json finished = Json::array();
      for_each_row("SELECT * FROM orch._orphaned_tasks()", {}, [&](const Row &row) {
        std::int64_t id = row.int8("id");
        std::string slurm_job = row.text("slurm_job");
        if (!slurm_job.empty()) {
          std::optional<std::int64_t> left = row.int8_or_null("timeout_left_ms");
          std::optional<SteadyTime> deadline;
          if (left) deadline = clock_.now() + milliseconds(std::max<std::int64_t>(0, *left));
          slurm_.adopt(static_cast<std::uint64_t>(id), row.int4("attempt").value_or(1), slurm_job, deadline,
                       clock_.now());
          launched_.insert(static_cast<std::uint64_t>(id));
          return;
        }
        if (std::optional<std::int32_t> pid = row.int4("pid"))
          kill_orphaned_group(*pid, "ORCH_TASK_ID=" + std::to_string(id));
        finished.push_back(finished_record(static_cast<std::uint64_t>(id), Ending::Signaled, std::nullopt, "", false,
                                           "the scheduler stopped while the task was running (server crash or "
                                           "restart); its process group was killed"));
      });
      if (!finished.empty()) record_finished(finished);
      // Runs a previous scheduler could not move on yet (it remembered them only in memory).
      defer_runs(query(kRunsInProgress));
    });
  }

  // After a failed transaction: log, and go on unless the extension is gone.
  // (DROP EXTENSION fails the turn too: then the scheduler leaves quietly.)
  bool recover_from_error(const std::exception &e) {
    if (!extension_installed()) {
      tell_launcher_not_installed();
      return false;
    }
    std::string message = e.what();
    pg_call([&] { ereport(LOG, (errmsg("pg_orch scheduler: %s", message.c_str()))); });
    pg_call([] {
      (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000, PG_WAIT_EXTENSION);
      ResetLatch(MyLatch);
    });
    claim_wanted_ = true;
    // The failed turn may have taken runs out of runs_to_advance_: every run
    // in progress is looked at again.
    in_transaction([&] { defer_runs(query(kRunsInProgress)); });
    return true;
  }

  const Clock &clock_;
  const std::string marker_ = scheduler_marker();
  CommandExecutor commands_{marker_, output_directory()};
  SqlTaskExecutor sql_tasks_;
  HttpExecutor http_;
  SlurmExecutor slurm_;
  const std::vector<Executor *> executors_{&commands_, &sql_tasks_, &http_, &slurm_};
  Deadlines deadlines_;
  std::set<std::uint64_t> launched_;  // handed to an executor, end not yet recorded
  Json started_ = Json::array();      // launched commands; RUNNING not yet recorded
  Json finished_ = Json::array();     // recorded at the next transaction
  std::set<std::uint64_t> runs_to_advance_;  // see defer_runs
  std::vector<std::string> unclaimed_;       // claimed tasks no worker slot was free for
  bool claim_wanted_ = true;
  bool schedules_wanted_ = true;  // look for due ticks at the next turn
  std::uint32_t stop_generation_seen_ = 0;
  std::uint32_t wake_generation_seen_ = 0;
};

}  // namespace
}  // namespace orch::pg

extern "C" void orch_scheduler_main(Datum database_oid) {
  using namespace orch::pg;
  pqsignal(SIGTERM, SignalHandlerForShutdownRequest);  // sets ShutdownRequestPending and the latch
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  pqsignal(SIGCHLD, handle_sigchld);
  BackgroundWorkerUnblockSignals();
  BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(database_oid), InvalidOid, 0);
  // The scheduler takes user-held rows only with SKIP LOCKED; should any
  // other wait appear, it fails the turn (logged, tried again) instead of
  // stalling every user.
  SetConfigOption("lock_timeout", "5s", PGC_SUSET, PGC_S_OVERRIDE);
  // Each statement finds its rows by key or by a partial index (only
  // recovery's look for runs in progress reads all of orch.runs, either
  // way). Plans are made once per session, often while orch.runs and
  // orch.tasks are nearly empty; the planner then chose sequential scans and
  // kept them while a burst filled the tables (thousands of rows read per
  // turn, half the turn's SQL in a burst of 2,000 tasks).
  SetConfigOption("enable_seqscan", "off", PGC_SUSET, PGC_S_OVERRIDE);
  before_shmem_exit(abandon_attempts_at_exit, 0);
  cpp_entry([] {
    pin_worker_settings();
    // None while DROP DATABASE or ALTER DATABASE ... RENAME holds the database.
    if (!pg_call([] { return register_scheduler(); })) return;
    orch::SteadyClock clock;
    Scheduler scheduler(clock);
    scheduler.run();
  });
  proc_exit(0);
}
