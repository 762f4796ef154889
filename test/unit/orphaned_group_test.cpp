#include "core/orphaned_group.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "core/child_supervisor.hpp"

namespace {

using namespace std::chrono_literals;

// A child leading its own group with `marker` in its environment.
pid_t spawn_group_leader(const char *marker) {
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    char *argv[] = {const_cast<char *>("/bin/sleep"), const_cast<char *>("30"), nullptr};
    char *envp[] = {const_cast<char *>(marker), nullptr};
    execve("/bin/sleep", argv, envp);
    _exit(127);
  }
  setpgid(pid, pid);  // also from the parent, so the group exists when we return
  return pid;
}

bool exited_within(pid_t pid, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

// Until execve, the child's /proc/<pid>/environ is still ours: wait until it
// shows the marker, the whole environment of the exec'd program.
void wait_for_exec(pid_t pid, const std::string &marker) {
  for (int i = 0; i < 1000; ++i) {
    char buffer[256] = {};
    std::string path = "/proc/" + std::to_string(pid) + "/environ";
    FILE *f = fopen(path.c_str(), "r");
    size_t n = f ? fread(buffer, 1, sizeof(buffer) - 1, f) : 0;
    if (f) fclose(f);
    if (n == marker.size() + 1 && marker == buffer) return;
    std::this_thread::sleep_for(5ms);
  }
  FAIL() << "child " << pid << " did not exec";
}

}  // namespace

TEST(OrphanedGroup, KillsTheGroupOfItsOwnTask) {
  pid_t pid = spawn_group_leader("ORCH_TASK_ID=7");
  wait_for_exec(pid, "ORCH_TASK_ID=7");
  EXPECT_TRUE(orch::kill_orphaned_group(pid, "ORCH_TASK_ID=7"));
  EXPECT_TRUE(exited_within(pid, 5000ms));
}

TEST(OrphanedGroup, LeavesAGroupThatIsNotOurs) {
  pid_t pid = spawn_group_leader("ORCH_TASK_ID=70");  // a prefix must not match
  wait_for_exec(pid, "ORCH_TASK_ID=70");
  EXPECT_FALSE(orch::kill_orphaned_group(pid, "ORCH_TASK_ID=7"));
  EXPECT_FALSE(exited_within(pid, 100ms));
  kill(pid, SIGKILL);
  EXPECT_TRUE(exited_within(pid, 5000ms));
}

TEST(OrphanedGroup, NothingToKillWhenTheGroupIsGone) {
  pid_t pid = spawn_group_leader("ORCH_TASK_ID=8");
  kill(pid, SIGKILL);
  ASSERT_TRUE(exited_within(pid, 5000ms));
  EXPECT_FALSE(orch::kill_orphaned_group(pid, "ORCH_TASK_ID=8"));
}

TEST(OrphanedGroup, RefusesInitAndNonsense) {
  EXPECT_FALSE(orch::kill_orphaned_group(1, "ORCH_TASK_ID=1"));
  EXPECT_FALSE(orch::kill_orphaned_group(0, "ORCH_TASK_ID=1"));
  EXPECT_FALSE(orch::kill_orphaned_group(-5, "ORCH_TASK_ID=1"));
}

TEST(OrphanedGroup, KillsEveryMarkedProcessAndNothingElse) {
  pid_t ours1 = spawn_group_leader("ORCH_SCHEDULER=1/5");
  pid_t ours2 = spawn_group_leader("ORCH_SCHEDULER=1/5");
  pid_t other = spawn_group_leader("ORCH_SCHEDULER=2/5");  // another cluster's
  wait_for_exec(ours1, "ORCH_SCHEDULER=1/5");
  wait_for_exec(ours2, "ORCH_SCHEDULER=1/5");
  wait_for_exec(other, "ORCH_SCHEDULER=2/5");
  EXPECT_EQ(orch::kill_marked_processes("ORCH_SCHEDULER=1/5"), 2);
  EXPECT_TRUE(exited_within(ours1, 5000ms));
  EXPECT_TRUE(exited_within(ours2, 5000ms));
  EXPECT_FALSE(exited_within(other, 100ms));
  kill(other, SIGKILL);
  EXPECT_TRUE(exited_within(other, 5000ms));
  EXPECT_EQ(orch::kill_marked_processes("ORCH_SCHEDULER=1/5"), 0);
}
