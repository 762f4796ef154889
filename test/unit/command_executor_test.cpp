#include "core/command_executor.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "core/error.hpp"

namespace orch {
namespace {

using namespace std::chrono_literals;

TaskLaunch task(std::uint64_t id, std::vector<std::string> command) {
  TaskLaunch launch;
  launch.id = id;
  launch.run_id = 9;
  launch.process_id = "nightly";
  launch.name = "extract";
  launch.kind = "command";
  launch.command = std::move(command);
  launch.env = {{"MODE", "full"}};
  launch.input_json = R"({"day": "mon"})";
  launch.attempt = 2;
  return launch;
}

// Polls until `id` ends, failing after a deadline.
AttemptEnd wait_for(CommandExecutor &executor, std::uint64_t id) {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    for (AttemptEnd &end : executor.poll(std::chrono::steady_clock::now()))
      if (end.id == id) return end;
    std::this_thread::sleep_for(5ms);
  }
  ADD_FAILURE() << "attempt " << id << " did not end within 10 s";
  return {};
}

TEST(CommandEnvironment, TaskEnvThenInputThenIdentityThenMarker) {
  std::vector<std::string> env = command_environment(task(7, {"true"}), "ORCH_SCHEDULER=1/2");
  auto has = [&](const std::string &entry) { return std::find(env.begin(), env.end(), entry) != env.end(); };
  EXPECT_TRUE(has("MODE=full"));
  EXPECT_TRUE(has("ORCH_INPUT_DAY=mon"));
  EXPECT_TRUE(has("ORCH_PROCESS_ID=nightly"));
  EXPECT_TRUE(has("ORCH_RUN_ID=9"));
  EXPECT_TRUE(has("ORCH_TASK_ID=7"));
  EXPECT_TRUE(has("ORCH_TASK_NAME=extract"));
  EXPECT_TRUE(has("ORCH_ATTEMPT=2"));
  EXPECT_EQ(env.back(), "ORCH_SCHEDULER=1/2");
  EXPECT_TRUE(std::any_of(env.begin(), env.end(), [](const std::string &e) { return e.rfind("PATH=", 0) == 0; }));
}

TEST(CommandExecutor, ReportsTheExitCodeAndOutput) {
  CommandExecutor executor("ORCH_SCHEDULER=test");
  Launch launch = executor.launch(task(1, {"/bin/sh", "-c", "echo $ORCH_INPUT_DAY; exit 3"}), std::chrono::steady_clock::now());
  ASSERT_EQ(launch.status, LaunchStatus::Running);
  EXPECT_GT(launch.pid, 0);
  EXPECT_EQ(executor.running(), 1u);
  AttemptEnd end = wait_for(executor, 1);
  EXPECT_EQ(end.ending, Ending::Exited);
  EXPECT_EQ(end.exit_code, 3);
  EXPECT_EQ(end.output, "mon\n");
  EXPECT_EQ(end.error, "exited with code 3");
  EXPECT_EQ(executor.running(), 0u);
}

TEST(CommandExecutor, ShellTasksRunTheirScript) {
  CommandExecutor executor("ORCH_SCHEDULER=test");
  TaskLaunch shell = task(2, {});
  shell.kind = "shell";
  shell.shell = "printf %s \"$MODE\"";
  ASSERT_EQ(executor.launch(shell, std::chrono::steady_clock::now()).status, LaunchStatus::Running);
  AttemptEnd end = wait_for(executor, 2);
  EXPECT_EQ(end.exit_code, 0);
  EXPECT_EQ(end.output, "full");
  EXPECT_EQ(end.error, "");
}

TEST(CommandExecutor, ARefusedRequestFailsTheAttemptAtTheNextPoll) {
  CommandExecutor executor("ORCH_SCHEDULER=test");
  TaskLaunch bad = task(3, {"/bin/echo", std::string("a\0b", 3)});
  Launch launch = executor.launch(bad, std::chrono::steady_clock::now());
  EXPECT_EQ(launch.status, LaunchStatus::Failed);
  EXPECT_EQ(executor.running(), 1u);  // until it is reported
  ASSERT_TRUE(executor.next_deadline());
  EXPECT_LE(*executor.next_deadline(), std::chrono::steady_clock::now());  // report it now
  std::vector<AttemptEnd> ended = executor.poll(std::chrono::steady_clock::now());
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].id, 3u);
  EXPECT_EQ(ended[0].ending, Ending::SpawnFailed);
  EXPECT_FALSE(ended[0].exit_code);
  EXPECT_NE(ended[0].error.find("NUL"), std::string::npos) << ended[0].error;
  EXPECT_EQ(executor.running(), 0u);
}

TEST(CommandExecutor, StopEndsItStoppedAndTimeoutEndsItTimedOut) {
  CommandExecutor executor("ORCH_SCHEDULER=test");
  executor.set_limits(200ms, 1 << 20);
  auto now = std::chrono::steady_clock::now();
  ASSERT_EQ(executor.launch(task(4, {"sleep", "30"}), now).status, LaunchStatus::Running);
  TaskLaunch slow = task(5, {"sleep", "30"});
  slow.timeout = 100ms;
  ASSERT_EQ(executor.launch(slow, now).status, LaunchStatus::Running);
  ASSERT_TRUE(executor.next_deadline());
  EXPECT_EQ(*executor.next_deadline(), now + 100ms);
  executor.stop(4, std::chrono::steady_clock::now());
  EXPECT_EQ(wait_for(executor, 4).ending, Ending::Stopped);
  AttemptEnd timed_out = wait_for(executor, 5);
  EXPECT_EQ(timed_out.ending, Ending::TimedOut);
  EXPECT_FALSE(timed_out.exit_code);
}

}  // namespace
}  // namespace orch
