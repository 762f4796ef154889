#include "core/child_supervisor.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "core/error.hpp"

namespace orch {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

SpawnRequest command(std::vector<std::string> argv) {
  SpawnRequest request;
  request.argv = std::move(argv);
  request.env = {"PATH=/usr/bin:/bin"};
  return request;
}

SpawnRequest shell(const std::string &script) { return command({"sh", "-c", script}); }

// Drives the supervisor the way the worker does: wait for a pipe or the next
// deadline (10 ms at most, standing in for SIGCHLD), then poll.
std::vector<FinishedChild> wait_for(ChildSupervisor &supervisor, std::size_t count, milliseconds limit = 5s) {
  std::vector<FinishedChild> finished;
  const auto give_up = Clock::now() + limit;
  for (;;) {
    const auto now = Clock::now();
    for (auto &child : supervisor.poll(now)) finished.push_back(std::move(child));
    if (finished.size() >= count || now >= give_up) return finished;
    milliseconds wait = 10ms;
    if (auto deadline = supervisor.next_deadline())
      wait = std::clamp(std::chrono::ceil<milliseconds>(*deadline - now), 0ms, 10ms);
    std::vector<pollfd> fds;
    for (int fd : supervisor.watched_fds()) fds.push_back(pollfd{fd, POLLIN, 0});
    ::poll(fds.data(), fds.size(), static_cast<int>(wait.count()));
  }
}

// Spawns one child as id 1 and waits for it.
std::vector<FinishedChild> run(const SpawnRequest &request, milliseconds limit = 5s) {
  ChildSupervisor supervisor;
  supervisor.spawn(1, request, Clock::now());
  return wait_for(supervisor, 1, limit);
}

bool eventually(const std::function<bool()> &condition, milliseconds limit = 3s) {
  const auto give_up = Clock::now() + limit;
  while (!condition()) {
    if (Clock::now() >= give_up) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

struct ProcState {
  char state;
  int pgrp;
};

// State and group of a process from /proc/<pid>/stat, if it exists.
std::optional<ProcState> proc_state(int pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(file, line)) return std::nullopt;
  auto paren = line.rfind(')');  // the command name may contain anything
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(paren + 1));
  ProcState result{};
  int ppid;
  rest >> result.state >> ppid >> result.pgrp;
  return result;
}

// Gone or a zombie: a zombie left to a non-reaping init runs nothing.
bool process_dead(int pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  auto state = proc_state(pid);
  return !state || state->state == 'Z' || state->state == 'X';
}

int live_in_group(int pgid) {
  int count = 0;
  DIR *proc = ::opendir("/proc");
  while (dirent *entry = ::readdir(proc)) {
    int pid = std::atoi(entry->d_name);
    if (pid <= 0) continue;
    auto state = proc_state(pid);
    if (state && state->pgrp == pgid && state->state != 'Z' && state->state != 'X') ++count;
  }
  ::closedir(proc);
  return count;
}

milliseconds elapsed(const FinishedChild &child) {
  return std::chrono::duration_cast<milliseconds>(child.ended - child.started);
}

TEST(ChildSupervisor, ExitCodeZero) {
  auto finished = run(command({"true"}));
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].id, 1u);
  EXPECT_GT(finished[0].pid, 0);
  EXPECT_EQ(finished[0].ending, Ending::Exited);
  EXPECT_EQ(finished[0].exit_code, 0);
  EXPECT_EQ(finished[0].signal, 0);
  EXPECT_EQ(finished[0].output, "");
  EXPECT_FALSE(finished[0].output_truncated);
  EXPECT_EQ(finished[0].error, "");
}

TEST(ChildSupervisor, ExitCodeThree) {
  auto finished = run(shell("exit 3"));
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].ending, Ending::Exited);
  EXPECT_EQ(finished[0].exit_code, 3);
  EXPECT_EQ(finished[0].error, "exited with code 3");
}

TEST(ChildSupervisor, KilledBySignal) {
  auto finished = run(shell("kill -9 $$"));
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].ending, Ending::Signaled);
  EXPECT_EQ(finished[0].exit_code, -1);
  EXPECT_EQ(finished[0].signal, 9);
  EXPECT_EQ(finished[0].error, "killed by signal 9 (Killed)");
}

TEST(ChildSupervisor, CapturesStdoutAndStderr) {
  auto finished = run(shell("echo out; echo err >&2; echo out2"));
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].output, "out\nerr\nout2\n");
  EXPECT_FALSE(finished[0].output_truncated);
}

TEST(ChildSupervisor, KeepsTailOfLargeOutput) {
  const std::size_t total = 1 << 20;
  SpawnRequest request = shell("yes abcdefghi | head -c " + std::to_string(total));
  request.max_output = 1000;
  auto finished = run(request);
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].ending, Ending::Exited);
  EXPECT_EQ(finished[0].exit_code, 0);
  std::string expected;
  while (expected.size() < total) expected += "abcdefghi\n";
  expected.resize(total);
  EXPECT_EQ(finished[0].output, expected.substr(total - 1000));
  EXPECT_TRUE(finished[0].output_truncated);

  request = shell("printf 0123456789");
  request.max_output = 10;  // exactly full is not truncated
  finished = run(request);
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].output, "0123456789");
  EXPECT_FALSE(finished[0].output_truncated);

  request.max_output = 0;
  finished = run(request);
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].output, "");
  EXPECT_TRUE(finished[0].output_truncated);
}

TEST(ChildSupervisor, PassesExactlyTheGivenEnvironment) {
  ::setenv("ORCH_TEST_MUST_NOT_LEAK", "1", 1);
  SpawnRequest request = command({"env"});
  request.env = {"A=1", "B=two words", "EMPTY="};
  auto finished = run(request);
  ::unsetenv("ORCH_TEST_MUST_NOT_LEAK");
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].output, "A=1\nB=two words\nEMPTY=\n");
}

TEST(ChildSupervisor, HonoursWorkingDirectory) {
  char pattern[] = "/tmp/orch_child_test_XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  char real[PATH_MAX];
  ASSERT_NE(::realpath(pattern, real), nullptr);
  SpawnRequest request = command({"pwd", "-P"});
  request.working_directory = pattern;
  auto finished = run(request);
  ::rmdir(pattern);
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].ending, Ending::Exited);
  EXPECT_EQ(finished[0].output, std::string(real) + "\n");
}

TEST(ChildSupervisor, MissingWorkingDirectoryIsSpawnFailure) {
  ChildSupervisor supervisor;
  SpawnRequest request = command({"true"});
  request.working_directory = "/nope/orch_missing_dir";
  const auto now = Clock::now();
  EXPECT_EQ(supervisor.spawn(7, request, now), 0);
  ASSERT_TRUE(supervisor.next_deadline().has_value());  // reported by the very next poll
  EXPECT_LE(*supervisor.next_deadline(), Clock::now());
  auto finished = supervisor.poll(Clock::now());
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].id, 7u);
  EXPECT_EQ(finished[0].pid, 0);
  EXPECT_EQ(finished[0].ending, Ending::SpawnFailed);
  EXPECT_EQ(finished[0].exit_code, -1);
  EXPECT_EQ(finished[0].error, "working directory \"/nope/orch_missing_dir\" does not exist");
  EXPECT_TRUE(supervisor.poll(Clock::now()).empty());
  EXPECT_FALSE(supervisor.next_deadline().has_value());
}

TEST(ChildSupervisor, MissingProgramIsSpawnFailure) {
  ChildSupervisor supervisor;
  const auto now = Clock::now();
  EXPECT_EQ(supervisor.spawn(1, command({"/nope/prog"}), now), 0);
  EXPECT_EQ(supervisor.spawn(2, command({"orch-no-such-program"}), now), 0);
  EXPECT_EQ(supervisor.running(), 0u);
  auto finished = supervisor.poll(now);
  ASSERT_EQ(finished.size(), 2u);
  std::sort(finished.begin(), finished.end(), [](auto &a, auto &b) { return a.id < b.id; });
  EXPECT_EQ(finished[0].ending, Ending::SpawnFailed);
  EXPECT_EQ(finished[0].error, "could not execute \"/nope/prog\": No such file or directory");
  EXPECT_EQ(finished[1].ending, Ending::SpawnFailed);
  EXPECT_EQ(finished[1].error, "could not execute \"orch-no-such-program\": No such file or directory");
  EXPECT_TRUE(supervisor.watched_fds().empty());  // no pipe leaked
}

TEST(ChildSupervisor, ArgumentReachesChildUnchanged) {
  const std::string tricky = "a b; $(id) `id` 'q' \"d\" | > *";
  auto finished = run(command({"printf", "[%s]", tricky, "", "z"}));
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].output, "[" + tricky + "][][z]");
}

TEST(ChildSupervisor, TimeoutKillsChildAndGrandchild) {
  ChildSupervisor supervisor;
  SpawnRequest request = shell("sleep 100 & echo $!; sleep 100");
  request.timeout = 200ms;
  const auto start = Clock::now();
  int pid = supervisor.spawn(1, request, start);
  ASSERT_GT(pid, 0);
  EXPECT_EQ(supervisor.watched_fds().size(), 1u);
  ASSERT_TRUE(supervisor.next_deadline().has_value());
  EXPECT_EQ(*supervisor.next_deadline(), start + 200ms);

  auto finished = wait_for(supervisor, 1);
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].pid, pid);
  EXPECT_EQ(finished[0].ending, Ending::TimedOut);
  EXPECT_EQ(finished[0].signal, SIGTERM);
  EXPECT_EQ(finished[0].exit_code, -1);
  EXPECT_EQ(finished[0].error, "timed out after 200ms");
  EXPECT_GE(elapsed(finished[0]), 200ms);
  EXPECT_LT(elapsed(finished[0]), 2000ms);
  int grandchild = std::atoi(finished[0].output.c_str());
  ASSERT_GT(grandchild, 1) << finished[0].output;
  EXPECT_TRUE(eventually([&] { return process_dead(grandchild); }));
  EXPECT_EQ(supervisor.running(), 0u);
  EXPECT_TRUE(supervisor.watched_fds().empty());
}

TEST(ChildSupervisor, ChildIgnoringTermIsKilledAfterGrace) {
  SpawnRequest request = shell("trap '' TERM; sleep 100");
  request.timeout = 100ms;
  request.kill_grace = 300ms;
  auto finished = run(request);
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].ending, Ending::TimedOut);
  EXPECT_EQ(finished[0].signal, SIGKILL);
  EXPECT_EQ(finished[0].error, "timed out after 100ms");
  EXPECT_GE(elapsed(finished[0]), 400ms);
  EXPECT_LT(elapsed(finished[0]), 1500ms);
}

TEST(ChildSupervisor, StopEndsChildAsStopped) {
  ChildSupervisor supervisor;
  int pid = supervisor.spawn(5, command({"sleep", "100"}), Clock::now());
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(supervisor.poll(Clock::now()).empty());
  supervisor.stop(99, Clock::now());  // unknown id: nothing happens
  supervisor.stop(5, Clock::now());
  auto finished = wait_for(supervisor, 1);
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].id, 5u);
  EXPECT_EQ(finished[0].ending, Ending::Stopped);
  EXPECT_EQ(finished[0].signal, SIGTERM);
  EXPECT_EQ(finished[0].exit_code, -1);
  EXPECT_EQ(finished[0].error, "stopped");
  EXPECT_LT(elapsed(finished[0]), 2000ms);
}

TEST(ChildSupervisor, GrandchildHoldingPipeDoesNotDelayFinish) {
  auto finished = run(shell("sleep 100 & echo $!"));
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].ending, Ending::Exited);
  EXPECT_EQ(finished[0].exit_code, 0);
  EXPECT_LT(elapsed(finished[0]), 2000ms);
  int grandchild = std::atoi(finished[0].output.c_str());
  ASSERT_GT(grandchild, 1) << finished[0].output;
  EXPECT_TRUE(eventually([&] { return process_dead(grandchild); }));
}

TEST(ChildSupervisor, ChildStartsWithDefaultSignals) {
  // The worker ignores SIGPIPE and may block signals; the child must not.
  auto old_pipe = ::signal(SIGPIPE, SIG_IGN);
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  ::sigprocmask(SIG_BLOCK, &block, &old_mask);

  auto status = run(shell("grep -E '^Sig(Blk|Ign)' /proc/self/status"));
  auto pipeline = run(shell("yes | head -1"));

  ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  ::signal(SIGPIPE, old_pipe);
  ASSERT_EQ(status.size(), 1u);
  EXPECT_EQ(status[0].output, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
  ASSERT_EQ(pipeline.size(), 1u);
  EXPECT_EQ(pipeline[0].exit_code, 0);
  EXPECT_EQ(pipeline[0].output, "y\n");  // an ignored SIGPIPE would add "yes: ... Broken pipe"
}

TEST(ChildSupervisor, ChildInheritsNoDescriptorAboveStderr) {
  // PostgreSQL holds descriptors without close-on-exec; the command must not.
  int fd = ::open("/dev/null", O_RDONLY);
  ASSERT_GT(fd, 2);
  auto finished = run(shell("ls /proc/$$/fd"));
  ::close(fd);
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].output, "0\n1\n2\n");
}

TEST(ChildSupervisor, ManyConcurrentChildrenAllFinish) {
  ChildSupervisor supervisor;
  const int count = 50;
  for (int i = 0; i < count; ++i)
    ASSERT_GT(supervisor.spawn(i, command({"sh", "-c", "echo child $1", "sh", std::to_string(i)}), Clock::now()), 0);
  EXPECT_EQ(supervisor.running(), static_cast<std::size_t>(count));
  auto finished = wait_for(supervisor, count);
  ASSERT_EQ(finished.size(), static_cast<std::size_t>(count));
  std::map<std::uint64_t, std::string> outputs;
  for (const auto &child : finished) {
    EXPECT_EQ(child.ending, Ending::Exited);
    EXPECT_EQ(child.exit_code, 0);
    outputs[child.id] = child.output;
  }
  ASSERT_EQ(outputs.size(), static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) EXPECT_EQ(outputs[i], "child " + std::to_string(i) + "\n");
  EXPECT_EQ(supervisor.running(), 0u);
}

TEST(ChildSupervisor, KillAllLeavesNothingRunning) {
  ChildSupervisor supervisor;
  std::vector<int> pids;
  for (int i = 0; i < 3; ++i) pids.push_back(supervisor.spawn(i, shell("sleep 100 & sleep 100; wait"), Clock::now()));
  for (int pid : pids) {
    ASSERT_GT(pid, 0);
    ASSERT_TRUE(eventually([&] { return live_in_group(pid) == 3; })) << "group " << pid;
  }
  supervisor.kill_all();
  EXPECT_EQ(supervisor.running(), 0u);
  EXPECT_TRUE(supervisor.watched_fds().empty());
  EXPECT_TRUE(supervisor.poll(Clock::now()).empty());
  for (int pid : pids) {
    EXPECT_TRUE(::kill(pid, 0) != 0 && errno == ESRCH) << "pid " << pid << " was not reaped";
    EXPECT_TRUE(eventually([&] { return live_in_group(pid) == 0; })) << "group " << pid;
  }
}

TEST(ChildSupervisor, KillProcessGroup) {
  ChildSupervisor supervisor;
  int pid = supervisor.spawn(1, command({"sleep", "100"}), Clock::now());
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(kill_process_group(pid));
  auto finished = wait_for(supervisor, 1);
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].ending, Ending::Signaled);
  EXPECT_EQ(finished[0].signal, SIGKILL);
  EXPECT_FALSE(kill_process_group(pid));  // reaped: no such group any more

  EXPECT_THROW(kill_process_group(0), InvalidInput);
  EXPECT_THROW(kill_process_group(1), InvalidInput);
  EXPECT_THROW(kill_process_group(-5), InvalidInput);

  // Its own group is refused; tried in a forked process so a bug kills only that.
  pid_t forked = ::fork();
  ASSERT_GE(forked, 0);
  if (forked == 0) {
    ::setpgid(0, 0);
    ::_exit(kill_process_group(::getpgrp()) ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(forked, &status, 0), forked);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
}

TEST(ChildSupervisor, RejectsProgrammerErrors) {
  ChildSupervisor supervisor;
  EXPECT_THROW(supervisor.spawn(1, command({}), Clock::now()), InvalidInput);
  SpawnRequest bad_env = command({"true"});
  bad_env.env = {"NOEQUALS"};
  EXPECT_THROW(supervisor.spawn(1, bad_env, Clock::now()), InvalidInput);
  SpawnRequest negative = command({"true"});
  negative.timeout = -1ms;
  EXPECT_THROW(supervisor.spawn(1, negative, Clock::now()), InvalidInput);
  EXPECT_THROW(supervisor.spawn(1, command({std::string("a\0b", 3)}), Clock::now()), InvalidInput);

  ASSERT_GT(supervisor.spawn(1, command({"sleep", "100"}), Clock::now()), 0);
  EXPECT_THROW(supervisor.spawn(1, command({"true"}), Clock::now()), std::runtime_error);
  EXPECT_EQ(supervisor.running(), 1u);
}

}  // namespace
}  // namespace orch

namespace orch {
namespace {

// spawn_later: posix_spawn on the supervisor's thread.

TEST(ChildSupervisorLater, RunsAndGivesThePidOncePollSeesItStart) {
  ChildSupervisor supervisor;
  supervisor.spawn_later(1, shell("echo later; exit 4"), Clock::now());
  EXPECT_EQ(supervisor.running(), 1u);  // counts from the start
  auto finished = wait_for(supervisor, 1);
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].ending, Ending::Exited);
  EXPECT_EQ(finished[0].exit_code, 4);
  EXPECT_EQ(finished[0].output, "later\n");
  auto started = supervisor.take_started();
  ASSERT_EQ(started.size(), 1u);
  EXPECT_EQ(started[0].first, 1u);
  EXPECT_EQ(started[0].second, finished[0].pid);
  EXPECT_GT(finished[0].pid, 0);
  EXPECT_TRUE(supervisor.take_started().empty());
  EXPECT_EQ(supervisor.running(), 0u);
}

TEST(ChildSupervisorLater, AFailedSpawnIsReportedByPoll) {
  ChildSupervisor supervisor;
  supervisor.spawn_later(2, command({"orch-no-such-program"}), Clock::now());
  auto finished = wait_for(supervisor, 1);
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].ending, Ending::SpawnFailed);
  EXPECT_EQ(finished[0].error, "could not execute \"orch-no-such-program\": No such file or directory");
  EXPECT_TRUE(supervisor.take_started().empty());
  EXPECT_EQ(supervisor.running(), 0u);
}

TEST(ChildSupervisorLater, AStopBeforeItsPidIsKnownIsSentOnceItRuns) {
  ChildSupervisor supervisor;
  auto now = Clock::now();
  for (std::uint64_t id = 1; id <= 8; ++id) supervisor.spawn_later(id, command({"sleep", "100"}), now);
  for (std::uint64_t id = 1; id <= 8; ++id) supervisor.stop(id, now);  // most are still being spawned
  auto finished = wait_for(supervisor, 8);
  ASSERT_EQ(finished.size(), 8u);
  for (const auto &child : finished) {
    EXPECT_EQ(child.ending, Ending::Stopped) << child.id;
    EXPECT_EQ(child.signal, SIGTERM) << child.id;
    EXPECT_TRUE(process_dead(child.pid)) << child.id;
  }
}

TEST(ChildSupervisorLater, ItsTimeoutCountsFromTheSpawnNotFromTheQueue) {
  ChildSupervisor supervisor;
  SpawnRequest request = command({"sleep", "5"});
  request.timeout = 300ms;
  auto began = Clock::now();
  supervisor.spawn_later(1, request, began - 1s);  // as if it had waited a second in the queue
  auto finished = wait_for(supervisor, 1);
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].ending, Ending::TimedOut);
  EXPECT_GE(Clock::now() - began, 300ms);
  EXPECT_LT(Clock::now() - began, 3s);
}

TEST(ChildSupervisorLater, AStopBeforeAFailedSpawnIsStillAStop) {
  ChildSupervisor supervisor;
  supervisor.spawn_later(3, command({"orch-no-such-program"}), Clock::now());
  supervisor.stop(3, Clock::now());  // before poll() learns how the spawn went
  auto finished = wait_for(supervisor, 1);
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].ending, Ending::Stopped);
  EXPECT_EQ(finished[0].error, "stopped");
}

TEST(ChildSupervisorLater, KillAllWaitsForSpawnsUnderWay) {
  std::vector<std::pair<std::uint64_t, int>> started;
  {
    ChildSupervisor supervisor;
    for (std::uint64_t id = 1; id <= 8; ++id) supervisor.spawn_later(id, command({"sleep", "100"}), Clock::now());
    supervisor.kill_all();  // before any pid is known
    EXPECT_EQ(supervisor.running(), 0u);
    EXPECT_TRUE(supervisor.take_started().empty());
  }
  // No sleep is left: every child of this process was reaped.
  int status;
  EXPECT_EQ(::waitpid(-1, &status, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

}  // namespace
}  // namespace orch
