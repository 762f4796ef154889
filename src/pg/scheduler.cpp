#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/child_supervisor.hpp"
#include "core/interval.hpp"
#include "core/orphaned_group.hpp"
#include "core/placeholders.hpp"
#include "core/task_outcome.hpp"
#include "core/task_records.hpp"
#include "pg/guards.hpp"
#include "pg/scheduler.hpp"
#include "pg/settings.hpp"
#include "pg/shared_state.hpp"
#include "pg/spi.hpp"
#include "pg/sql_task_runner.hpp"

namespace orch::pg {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

// A child exited: wake up to reap it (its pipe may still be held open by a
// grandchild, so EOF alone is not enough).
void handle_sigchld(SIGNAL_ARGS) {
  int saved_errno = errno;
  SetLatch(MyLatch);
  errno = saved_errno;
}

// An sql task's attempt runs in a background worker of its own (see
// sql_task_runner.hpp); the scheduler only watches it.
struct SqlWorker {
  BackgroundWorkerHandle *handle;
  std::chrono::milliseconds timeout{0};  // 0: none
  // When the scheduler ends it, if its own statement timeout did not: the
  // timeout plus orch.kill_grace, like SIGKILL after SIGTERM for a command.
  std::optional<steady_clock::time_point> deadline;
  // Set when the scheduler terminated it (TimedOut or Stopped); otherwise an
  // exit without a record of the attempt is a failure (Signaled).
  std::optional<Ending> ended_by_scheduler;
};
using SqlWorkers = std::unordered_map<std::uint64_t, SqlWorker>;

// When the scheduler exits, its sql tasks' workers are terminated, as its
// commands are killed: the next scheduler recovers their attempts alike.
void terminate_sql_workers(const SqlWorkers &workers) noexcept {
  for (const auto &[id, worker] : workers) {
    try {
      pg_call([&] { TerminateBackgroundWorker(worker.handle); });
    } catch (...) {
    }
  }
}

ChildSupervisor *exiting_children = nullptr;
SqlWorkers *exiting_sql_workers = nullptr;

// Also on FATAL and postmaster death, which leave without unwinding.
void kill_children_at_exit(int, Datum) {
  if (exiting_children) exiting_children->kill_all();
  if (exiting_sql_workers) terminate_sql_workers(*exiting_sql_workers);
}

// What the scheduler must remember about a launched attempt to decide its outcome.
struct Attempt {
  int attempt;
  TaskSpec retry_policy;  // max_retries, retry_delay, retry_backoff
};

// Longest a launched task shows DISPATCHED before it is recorded RUNNING.
constexpr milliseconds kStartedDelay{50};

// How soon runs whose process rows were held are tried again.
constexpr milliseconds kAdvanceRetryDelay{100};

constexpr const char *kRunsInProgress = "SELECT r.id::pg_catalog.text FROM orch.runs r WHERE r.status = 'IN_PROGRESS'";

// Marks every command this scheduler starts, so that a later scheduler of
// the same cluster and database can find leftovers after a crash.
std::string scheduler_marker() {
  return pg_call([] {
    return std::string("ORCH_SCHEDULER=") + std::to_string(GetSystemIdentifier()) + "/" +
           std::to_string(MyDatabaseId);
  });
}

// The environment of every command: a few variables of the server's own,
// then the task's env, the run's input as ORCH_INPUT_*, then what
// identifies it. (The task's env cannot use the ORCH_ prefix.)
std::vector<std::string> task_environment(const Json &row, const std::string &marker) {
  std::vector<std::string> env;
  for (const char *name : {"HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME"})
    if (const char *value = getenv(name)) env.push_back(std::string(name) + "=" + value);
  const char *path = getenv("PATH");
  env.push_back(std::string("PATH=") + (path ? path : "/usr/local/bin:/usr/bin:/bin"));
  for (const auto &[key, value] : row.at("env").items()) env.push_back(key + "=" + value.get<std::string>());
  for (const auto &[key, value] : input_environment(row.at("input_data").dump())) env.push_back(key + "=" + value);
  env.push_back("ORCH_PROCESS_ID=" + row.at("process_id").get<std::string>());
  env.push_back("ORCH_RUN_ID=" + std::to_string(row.at("run_id").get<long long>()));
  env.push_back("ORCH_TASK_ID=" + std::to_string(row.at("id").get<long long>()));
  env.push_back("ORCH_TASK_NAME=" + row.at("name").get<std::string>());
  env.push_back("ORCH_ATTEMPT=" + std::to_string(row.at("attempt").get<int>()));
  env.push_back(marker);
  return env;
}

SpawnRequest spawn_request(const Json &row, const std::string &marker) {
  SpawnRequest request;
  if (row.at("kind") == "shell") {
    request.argv = {"/bin/sh", "-c", row.at("shell").get<std::string>()};
  } else {
    request.argv = row.at("command").get<std::vector<std::string>>();
  }
  request.env = task_environment(row, marker);
  if (!row.at("working_directory").is_null()) request.working_directory = row.at("working_directory");
  if (!row.at("timeout_ms").is_null()) request.timeout = milliseconds(row.at("timeout_ms").get<long long>());
  request.kill_grace = milliseconds(settings.kill_grace_ms);
  request.max_output = static_cast<std::size_t>(settings.max_output);
  return request;
}

class Scheduler {
 public:
  Scheduler() {
    exiting_children = &children_;
    exiting_sql_workers = &sql_workers_;
  }
  ~Scheduler() {
    exiting_children = nullptr;
    exiting_sql_workers = nullptr;
    terminate_sql_workers(sql_workers_);  // children_ kills its own
  }

  void run() {
    if (!wait_for_extension()) return;
    // Runs stopped before now have no command here: recovery handles them.
    stop_generation_seen_ = stop_generation();
    recover_orphans();
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
    reload_config_if_asked();
    for (FinishedChild &child : children_.poll(steady_clock::now())) record_finished(std::move(child));
    if (!sql_workers_.empty()) poll_sql_workers(steady_clock::now());

    // A session committed new work: look at schedules, not only at ready tasks.
    if (std::uint32_t wakes = wake_generation(); wakes != wake_generation_seen_) {
      wake_generation_seen_ = wakes;
      schedules_wanted_ = true;
    }
    std::uint32_t generation = stop_generation();
    bool check_stops = generation != stop_generation_seen_ && !attempts_.empty();
    bool fire = settings.enabled && (schedules_wanted_ || (schedule_due_ && steady_clock::now() >= *schedule_due_));
    bool claim = settings.enabled && (claim_wanted_ || fire) && running() < capacity();
    bool advance = !runs_to_advance_.empty() && steady_clock::now() >= advance_due_;
    bool other_work = !finished_.empty() || check_stops || fire || claim || advance || !unclaimed_.empty();
    bool started_due = !started_.empty() && steady_clock::now() >= started_due_;
    std::vector<Json> claimed;
    if (other_work || started_due) {
      in_transaction([&] {
        // Launches are recorded without waiting for the WAL flush: the
        // DISPATCHED commit already made each attempt durable, and a crash
        // before this one is flushed loses only pids, which recovery does
        // not need (it finds commands by their marker).
        if (!other_work) query("SET LOCAL synchronous_commit = off");
        if (!started_.empty()) query("SELECT orch._tasks_started($1::pg_catalog.jsonb)", {started_.dump()});
        if (advance) advance_runs();
        if (!unclaimed_.empty()) unclaim(unclaimed_);
        if (!finished_.empty())
          defer_runs(query("SELECT unnest(orch._tasks_finished($1::pg_catalog.jsonb))::pg_catalog.text",
                           {finished_.dump()}));
        if (check_stops) stop_tasks(query("SELECT orch._stopped_tasks($1::bigint[])", {active_ids()}));
        if (fire) fire_due_schedules();
        if (claim) claimed = claim_tasks();
      });
      if (fire) schedules_wanted_ = false;
      started_ = Json::array();
      finished_ = Json::array();
      unclaimed_.clear();
      if (check_stops) stop_generation_seen_ = generation;
    }
    launch(claimed);
    // More may be ready if every free slot was filled: come straight back.
    // (Not if a task found no worker slot: none is likely free yet.)
    claim_wanted_ = !claimed.empty() && running() < capacity() && unclaimed_.empty();
    if (!claim_wanted_ && finished_.empty() && unclaimed_.empty()) wait_for_event();
  }

  std::size_t capacity() const { return static_cast<std::size_t>(settings.max_concurrent_tasks); }
  // orch.max_tasks_per_owner, 0 meaning half of the slots (at least 1).
  int per_owner() const {
    return settings.max_tasks_per_owner > 0 ? settings.max_tasks_per_owner
                                            : std::max(1, settings.max_concurrent_tasks / 2);
  }

  // Runs that could not be moved on because a user's transaction holds their
  // process's row: tried again a little later, never waited for.
  void defer_runs(const std::vector<std::string> &ids) {
    if (ids.empty()) return;
    if (runs_to_advance_.empty()) advance_due_ = steady_clock::now() + kAdvanceRetryDelay;
    for (const std::string &id : ids) runs_to_advance_.insert(std::stoull(id));
  }

  void advance_runs() {
    std::vector<std::string> ids;
    for (std::uint64_t id : runs_to_advance_) ids.push_back(std::to_string(id));
    runs_to_advance_.clear();
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
    next_ready_ms_ = next.empty() || next[0].empty() ? -1 : std::stoll(next[0]);
    next_ready_from_ = steady_clock::now();
  }

  // An SQL array literal of ids.
  static std::string id_array(const std::vector<std::string> &ids) {
    std::string text = "{";
    for (const std::string &id : ids) text += (text.size() > 1 ? "," : "") + id;
    return text + "}";
  }
  // Commands and sql tasks count alike against orch.max_concurrent_tasks.
  std::size_t running() const { return children_.running() + sql_workers_.size(); }

  // Starts the runs whose tick has come and notes when the next tick is.
  void fire_due_schedules() {
    std::vector<std::string> next = query("SELECT orch._fire_due_schedules()::pg_catalog.text");
    schedule_due_.reset();
    if (!next.empty() && !next[0].empty())
      schedule_due_ = steady_clock::now() + milliseconds(std::max(1LL, std::stoll(next[0])));
  }

  std::vector<Json> claim_tasks() {
    std::size_t free_slots = capacity() - running();
    std::vector<Json> rows;
    for (const std::string &text :
         query("SELECT pg_catalog.to_jsonb(c) FROM orch._claim_tasks($1::integer, $2::integer) c",
               {std::to_string(free_slots), std::to_string(per_owner())}))
      rows.push_back(Json::parse(text));
    // Nothing else is ready now: note when the next delayed retry is.
    if (rows.size() < free_slots) note_next_ready();
    return rows;
  }

  // Spawns the claimed tasks. Their RUNNING status and pid are recorded with
  // the next transaction, or after kStartedDelay at the latest, so a burst of
  // short tasks costs one transaction per batch, not two.
  void launch(const std::vector<Json> &claimed) {
    if (claimed.empty()) return;
    auto now = steady_clock::now();
    if (started_.empty()) started_due_ = now + kStartedDelay;
    for (const Json &row : claimed) {
      auto id = row.at("id").get<std::uint64_t>();
      attempts_[id] = Attempt{row.at("attempt").get<int>(), retry_policy_of(row)};
      if (row.at("kind") == "sql") {
        launch_sql(id, row, now);
        continue;
      }
      int pid = 0;
      try {
        pid = children_.spawn(id, spawn_request(row, marker_), now);
      } catch (const std::exception &e) {
        // A request the supervisor refuses (say, a NUL byte) fails the task, not the worker.
        record(id, Ending::SpawnFailed, -1, "", false, e.what());
        continue;
      }
      if (pid > 0) started_.push_back(started_record(id, pid));
    }
  }

  // Starts the worker of an sql task. It records the attempt RUNNING and its
  // outcome itself; the scheduler records it only if the worker ends without.
  void launch_sql(std::uint64_t id, const Json &row, steady_clock::time_point now) {
    BackgroundWorkerHandle *handle = start_sql_task_worker(id, row.at("attempt").get<int>());
    if (handle == nullptr) {
      // Every slot is taken (max_worker_processes): the task waits its turn.
      attempts_.erase(id);
      unclaimed_.push_back(std::to_string(id));
      return;
    }
    SqlWorker worker{handle};
    if (!row.at("timeout_ms").is_null()) {
      worker.timeout = milliseconds(row.at("timeout_ms").get<long long>());
      if (worker.timeout.count() > 0) worker.deadline = now + worker.timeout + milliseconds(settings.kill_grace_ms);
    }
    // An entry left for this id is an earlier attempt whose worker recorded
    // its retry and is exiting: nothing is left to record for it.
    if (auto left = sql_workers_.find(id); left != sql_workers_.end()) {
      free_handle(left->second.handle);
      sql_workers_.erase(left);
    }
    sql_workers_.emplace(id, worker);
  }

  // Applies the sql workers' deadlines and records the attempts of those
  // that exited. A worker that recorded its attempt leaves the task neither
  // DISPATCHED nor RUNNING, so orch._tasks_finished ignores this record.
  void poll_sql_workers(steady_clock::time_point now) {
    for (auto it = sql_workers_.begin(); it != sql_workers_.end();) {
      SqlWorker &worker = it->second;
      if (!worker.ended_by_scheduler && worker.deadline && now >= *worker.deadline) {
        terminate(worker);
        worker.ended_by_scheduler = Ending::TimedOut;
      }
      if (!has_exited(worker)) {
        ++it;
        continue;
      }
      std::uint64_t id = it->first;
      SqlWorker exited = worker;
      it = sql_workers_.erase(it);
      free_handle(exited.handle);
      Ending ending = exited.ended_by_scheduler.value_or(Ending::Signaled);
      std::string error = ending == Ending::Stopped    ? "stopped"
                           : ending == Ending::TimedOut ? "timed out after " + format_interval(exited.timeout)
                                                        : "the sql task's worker exited without recording a result";
      record(id, ending, -1, "", false, error);
    }
  }

  static bool has_exited(const SqlWorker &worker) {
    return pg_call([&] {
      pid_t pid;
      return GetBackgroundWorkerPid(worker.handle, &pid) == BGWH_STOPPED;
    });
  }

  // Its statement ends at the next interrupt check and its transaction is
  // rolled back; has_exited() tells when it is gone.
  static void terminate(const SqlWorker &worker) {
    pg_call([&] { TerminateBackgroundWorker(worker.handle); });
  }

  static void free_handle(BackgroundWorkerHandle *handle) {
    pg_call([&] { pfree(handle); });
  }

  void record_finished(FinishedChild child) {
    record(child.id, child.ending, child.exit_code, child.output, child.output_truncated, child.error);
  }

  void record(std::uint64_t id, Ending ending, int exit_code, const std::string &output, bool truncated,
              const std::string &error) {
    auto found = attempts_.find(id);
    if (found == attempts_.end()) return;
    AttemptOutcome outcome = decide_outcome(ending, exit_code, found->second.attempt, found->second.retry_policy);
    finished_.push_back(finished_record(id, outcome, ending == Ending::Exited ? std::optional<int>(exit_code)
                                                                             : std::nullopt,
                                        output, truncated, error));
    attempts_.erase(found);
    claim_wanted_ = true;  // a slot is free and dependents may be ready
  }

  std::string active_ids() const {
    std::vector<std::string> ids;
    for (const auto &[id, attempt] : attempts_) ids.push_back(std::to_string(id));
    return id_array(ids);
  }

  void stop_tasks(const std::vector<std::string> &ids) {
    auto now = steady_clock::now();
    for (const std::string &text : ids) {
      std::uint64_t id = std::stoull(text);
      if (auto sql = sql_workers_.find(id); sql != sql_workers_.end()) {
        // Recorded STOPPED once its worker is gone (a timed-out one stays TimedOut).
        if (!sql->second.ended_by_scheduler) {
          terminate(sql->second);
          sql->second.ended_by_scheduler = Ending::Stopped;
        }
      } else {
        children_.stop(id, now);
      }
    }
  }

  // Sleeps until the latch is set (start/stop committed, child exited,
  // SIGTERM/SIGHUP), a child writes output, a deadline passes, or the safety
  // net interval ends.
  void wait_for_event() {
    auto now = steady_clock::now();
    long timeout = settings.poll_interval_ms;
    if (auto deadline = children_.next_deadline())
      timeout = std::min<long>(timeout, std::chrono::ceil<milliseconds>(*deadline - now).count());
    for (const auto &[id, worker] : sql_workers_)
      if (worker.deadline && !worker.ended_by_scheduler)
        timeout = std::min<long>(timeout, std::chrono::ceil<milliseconds>(*worker.deadline - now).count());
    if (!started_.empty())
      timeout = std::min<long>(timeout, std::chrono::ceil<milliseconds>(started_due_ - now).count());
    if (schedule_due_)
      timeout = std::min<long>(timeout, std::chrono::ceil<milliseconds>(*schedule_due_ - now).count());
    if (!runs_to_advance_.empty())
      timeout = std::min<long>(timeout, std::chrono::ceil<milliseconds>(advance_due_ - now).count());
    if (next_ready_ms_ >= 0) {
      auto due = next_ready_from_ + milliseconds(next_ready_ms_);
      timeout = std::min<long>(timeout, std::chrono::ceil<milliseconds>(due - now).count());
    }
    timeout = std::max(timeout, 0L);
    std::vector<int> fds = children_.watched_fds();
    int events = pg_call([&] {
      WaitEventSet *set = CreateWaitEventSet(CurrentMemoryContext, static_cast<int>(fds.size()) + 2);
      AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, nullptr);
      AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, nullptr, nullptr);
      for (int fd : fds) AddWaitEventToSet(set, WL_SOCKET_READABLE, fd, nullptr, nullptr);
      WaitEvent fired[1];
      int count = WaitEventSetWait(set, timeout, fired, 1, PG_WAIT_EXTENSION);
      int what = count == 0 ? WL_TIMEOUT : fired[0].events;
      FreeWaitEventSet(set);
      if (what & WL_LATCH_SET) ResetLatch(MyLatch);
      CHECK_FOR_INTERRUPTS();
      return what;
    });
    // Output alone needs no database work; anything else may mean work.
    if (events & WL_TIMEOUT) schedules_wanted_ = true;  // the safety net
    if (events & (WL_LATCH_SET | WL_TIMEOUT)) {
      claim_wanted_ = true;
      next_ready_ms_ = -1;
    }
  }

  void reload_config_if_asked() {
    pg_call([] {
      if (ConfigReloadPending) {
        ConfigReloadPending = false;
        ProcessConfigFile(PGC_SIGHUP);
      }
    });
  }

  bool extension_exists() {
    return pg_call([] {
      StartTransactionCommand();
      bool exists = OidIsValid(get_extension_oid("pg_orch", true));
      CommitTransactionCommand();
      return exists;
    });
  }

  // Waits for CREATE EXTENSION pg_orch in this database; false on SIGTERM.
  bool wait_for_extension() {
    while (!ShutdownRequestPending && !extension_exists()) {
      pg_call([] {
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
      });
    }
    return !ShutdownRequestPending;
  }

  // Tasks a previous scheduler left DISPATCHED or RUNNING: it crashed or the
  // server stopped under it. Their process groups are killed, then each is
  // retried if attempts remain or failed, saying why.
  void recover_orphans() {
    kill_marked_processes(marker_);
    in_transaction([&] {
      Json finished = Json::array();
      for (const std::string &text : query("SELECT pg_catalog.to_jsonb(o) FROM orch._orphaned_tasks() o")) {
        Json row = Json::parse(text);
        if (!row.at("pid").is_null())
          kill_orphaned_group(row.at("pid").get<int>(), "ORCH_TASK_ID=" + std::to_string(row.at("id").get<long long>()));
        AttemptOutcome outcome =
            decide_outcome(Ending::Signaled, -1, row.at("attempt").get<int>(), retry_policy_of(row));
        finished.push_back(finished_record(row.at("id").get<std::uint64_t>(), outcome, std::nullopt, "", false,
                                           "the scheduler stopped while the task was running (server crash or "
                                           "restart); its process group was killed"));
      }
      if (!finished.empty())
        defer_runs(query("SELECT unnest(orch._tasks_finished($1::pg_catalog.jsonb))::pg_catalog.text",
                         {finished.dump()}));
      // Runs a previous scheduler could not move on yet (it remembered them only in memory).
      defer_runs(query(kRunsInProgress));
    });
  }

  // After a failed transaction: log, and go on unless the extension is gone.
  bool recover_from_error(const std::exception &e) {
    std::string message = e.what();
    pg_call([&] { ereport(LOG, (errmsg("pg_orch scheduler: %s", message.c_str()))); });
    if (!extension_exists()) return false;
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

  const std::string marker_ = scheduler_marker();
  ChildSupervisor children_;
  SqlWorkers sql_workers_;  // sql tasks' workers not yet seen to exit
  std::unordered_map<std::uint64_t, Attempt> attempts_;  // launched, not yet recorded
  Json started_ = Json::array();                         // launched; RUNNING not yet recorded
  steady_clock::time_point started_due_;                 // record them by then
  Json finished_ = Json::array();                        // recorded at the next transaction
  std::set<std::uint64_t> runs_to_advance_;              // see defer_runs
  std::vector<std::string> unclaimed_;                   // claimed sql tasks no worker slot was free for
  steady_clock::time_point advance_due_;
  bool claim_wanted_ = true;
  bool schedules_wanted_ = true;                       // look for due ticks at the next turn
  std::optional<steady_clock::time_point> schedule_due_;  // the next tick, if any
  std::uint32_t stop_generation_seen_ = 0;
  std::uint32_t wake_generation_seen_ = 0;
  long long next_ready_ms_ = -1;  // -1: no delayed task known
  steady_clock::time_point next_ready_from_;
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
  // No user's object is ever found by name: a function in a writable public
  // schema or a temporary type named like one of ours is never used.
  SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
  // The scheduler takes user-held rows only with SKIP LOCKED; should any
  // other wait appear, it fails the turn (logged, tried again) instead of
  // stalling every user.
  SetConfigOption("lock_timeout", "5s", PGC_SUSET, PGC_S_OVERRIDE);
  before_shmem_exit(kill_children_at_exit, 0);
  cpp_entry([] {
    pg_call([] { register_scheduler(); });
    Scheduler scheduler;
    scheduler.run();
  });
  proc_exit(0);
}
