#include "core/command_executor.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <thread>

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.hpp"

namespace orch {
namespace {

using namespace std::chrono_literals;

// A fresh directory per test, for the output files.
std::string output_directory() {
  char path[] = "/tmp/orch_outputs_XXXXXX";
  if (::mkdtemp(path) == nullptr) ADD_FAILURE() << "mkdtemp failed";
  return path;
}

// The names in `directory`, "." and ".." aside.
std::vector<std::string> entries_in(const std::string &directory) {
  std::vector<std::string> names;
  DIR *dir = ::opendir(directory.c_str());
  if (dir == nullptr) {
    ADD_FAILURE() << "cannot open " << directory;
    return names;
  }
  while (dirent *entry = ::readdir(dir))
    if (std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0) names.push_back(entry->d_name);
  ::closedir(dir);
  return names;
}

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

// A shell task running `script`.
TaskLaunch shell_task(std::uint64_t id, std::string script) {
  TaskLaunch launch = task(id, {});
  launch.kind = "shell";
  launch.shell = std::move(script);
  return launch;
}

// Polls until `id` ends, failing after a deadline. Ends of other attempts
// are kept for their own call.
AttemptEnd wait_for(CommandExecutor &executor, std::uint64_t id) {
  static std::map<std::uint64_t, AttemptEnd> seen;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    for (AttemptEnd &end : executor.poll(std::chrono::steady_clock::now())) seen[end.id] = std::move(end);
    if (auto found = seen.find(id); found != seen.end()) {
      AttemptEnd end = std::move(found->second);
      seen.erase(found);
      return end;
    }
    std::this_thread::sleep_for(5ms);
  }
  ADD_FAILURE() << "attempt " << id << " did not end within 10 s";
  return {};
}

TEST(CommandEnvironment, TaskEnvThenInputThenIdentityThenMarker) {
  TaskLaunch shell = task(7, {"true"});
  shell.outputs_json = R"({"extract": [1, 2]})";
  std::vector<std::string> env = command_environment(shell, "ORCH_SCHEDULER=1/2", "/data/out/7-2");
  auto has = [&](const std::string &entry) { return std::find(env.begin(), env.end(), entry) != env.end(); };
  EXPECT_TRUE(has("MODE=full"));
  EXPECT_TRUE(has("ORCH_INPUT_DAY=mon"));
  EXPECT_TRUE(has("ORCH_PROCESS_ID=nightly"));
  EXPECT_TRUE(has("ORCH_RUN_ID=9"));
  EXPECT_TRUE(has("ORCH_TASK_ID=7"));
  EXPECT_TRUE(has("ORCH_TASK_NAME=extract"));
  EXPECT_TRUE(has("ORCH_ATTEMPT=2"));
  EXPECT_TRUE(has("ORCH_OUTPUTS={\"extract\": [1, 2]}"));
  EXPECT_TRUE(has("ORCH_OUTPUT=/data/out/7-2"));
  EXPECT_EQ(env.back(), "ORCH_SCHEDULER=1/2");
  EXPECT_TRUE(std::any_of(env.begin(), env.end(), [](const std::string &e) { return e.rfind("PATH=", 0) == 0; }));
}

TEST(CommandExecutor, ReportsTheExitCodeAndOutput) {
  CommandExecutor executor("ORCH_SCHEDULER=test", output_directory());
  Launch launch = executor.launch(task(1, {"/bin/sh", "-c", "echo $ORCH_INPUT_DAY; exit 3"}), std::chrono::steady_clock::now());
  ASSERT_EQ(launch.status, LaunchStatus::Submitted);  // spawned on the supervisor's thread
  EXPECT_EQ(executor.running(), 1u);
  AttemptEnd end = wait_for(executor, 1);
  std::vector<Started> started = executor.started();  // what poll() saw start
  ASSERT_EQ(started.size(), 1u);
  EXPECT_EQ(started[0].id, 1u);
  EXPECT_GT(started[0].pid, 0);
  EXPECT_TRUE(executor.started().empty());
  EXPECT_EQ(end.ending, Ending::Exited);
  EXPECT_EQ(end.exit_code, 3);
  EXPECT_EQ(end.output, "mon\n");
  EXPECT_EQ(end.error, "exited with code 3");
  EXPECT_EQ(executor.running(), 0u);
}

TEST(CommandExecutor, ShellTasksRunTheirScript) {
  CommandExecutor executor("ORCH_SCHEDULER=test", output_directory());
  TaskLaunch shell = shell_task(2, "printf %s \"$MODE\"");
  ASSERT_EQ(executor.launch(shell, std::chrono::steady_clock::now()).status, LaunchStatus::Submitted);
  AttemptEnd end = wait_for(executor, 2);
  EXPECT_EQ(end.exit_code, 0);
  EXPECT_EQ(end.output, "full");
  EXPECT_EQ(end.error, "");
}

TEST(CommandExecutor, ARefusedRequestFailsTheAttemptAtTheNextPoll) {
  CommandExecutor executor("ORCH_SCHEDULER=test", output_directory());
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
  CommandExecutor executor("ORCH_SCHEDULER=test", output_directory());
  executor.set_limits(200ms, 1 << 20, 1 << 20);
  auto now = std::chrono::steady_clock::now();
  ASSERT_EQ(executor.launch(task(4, {"sleep", "30"}), now).status, LaunchStatus::Submitted);
  TaskLaunch slow = task(5, {"sleep", "30"});
  slow.timeout = 100ms;
  ASSERT_EQ(executor.launch(slow, now).status, LaunchStatus::Submitted);
  // A timeout counts from the spawn, not from the wait in the spawn queue.
  std::size_t started = 0;
  for (auto give_up = now + 5s; started < 2 && std::chrono::steady_clock::now() < give_up;) {
    EXPECT_TRUE(executor.poll(std::chrono::steady_clock::now()).empty());
    started += executor.started().size();
    if (started < 2) std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(started, 2u);
  ASSERT_TRUE(executor.next_deadline());
  EXPECT_GT(*executor.next_deadline(), now + 100ms);
  EXPECT_LE(*executor.next_deadline(), std::chrono::steady_clock::now() + 100ms);
  executor.stop(4, std::chrono::steady_clock::now());
  EXPECT_EQ(wait_for(executor, 4).ending, Ending::Stopped);
  AttemptEnd timed_out = wait_for(executor, 5);
  EXPECT_EQ(timed_out.ending, Ending::TimedOut);
  EXPECT_FALSE(timed_out.exit_code);
}

TEST(CommandExecutor, WhatTheCommandWritesToOrchOutputIsItsOutput) {
  std::string directory = output_directory();
  CommandExecutor executor("ORCH_SCHEDULER=test", directory);
  TaskLaunch writer = shell_task(6, "printf '{\"rows\": %s}' 3 > \"$ORCH_OUTPUT\"; echo done");
  ASSERT_EQ(executor.launch(writer, std::chrono::steady_clock::now()).status, LaunchStatus::Submitted);
  AttemptEnd end = wait_for(executor, 6);
  EXPECT_EQ(end.exit_code, 0);
  EXPECT_EQ(end.output, "done\n");
  EXPECT_EQ(end.output_data, "{\"rows\": 3}");
  EXPECT_EQ(end.output_error, "");
  EXPECT_EQ(entries_in(directory), std::vector<std::string>{}) << "the output file is removed";
}

TEST(CommandExecutor, AnInvalidOrOversizedOutputIsAnErrorAndNoOutput) {
  CommandExecutor executor("ORCH_SCHEDULER=test", output_directory());
  executor.set_limits(std::chrono::milliseconds(5000), 1 << 20, 16);
  TaskLaunch invalid = shell_task(7, "echo 'not json' > \"$ORCH_OUTPUT\"");
  TaskLaunch large = shell_task(8, "echo '[1,2,3,4,5,6,7,8,9,10]' > \"$ORCH_OUTPUT\"");
  TaskLaunch none = task(9, {"true"});
  auto now = std::chrono::steady_clock::now();
  ASSERT_EQ(executor.launch(invalid, now).status, LaunchStatus::Submitted);
  ASSERT_EQ(executor.launch(large, now).status, LaunchStatus::Submitted);
  ASSERT_EQ(executor.launch(none, now).status, LaunchStatus::Submitted);
  AttemptEnd bad = wait_for(executor, 7), big = wait_for(executor, 8), quiet = wait_for(executor, 9);
  EXPECT_EQ(bad.output_error, "the output in $ORCH_OUTPUT is not one valid JSON value");
  EXPECT_EQ(bad.output_data, "");
  EXPECT_EQ(big.output_error, "the output in $ORCH_OUTPUT is more than orch.max_output_data (16 bytes)");
  EXPECT_EQ(quiet.output_error, "");
  EXPECT_EQ(quiet.output_data, "");
}

TEST(CommandExecutor, AFifoOrSymlinkAsOrchOutputIsNoOutputAndNeverWaitedFor) {
  std::string directory = output_directory();
  CommandExecutor executor("ORCH_SCHEDULER=test", directory);
  TaskLaunch fifo = shell_task(10, "mkfifo \"$ORCH_OUTPUT\"");
  TaskLaunch link =
      shell_task(11, "echo '{\"secret\": 1}' > secret.json; ln -s \"$PWD/secret.json\" \"$ORCH_OUTPUT\"");
  link.working_directory = directory;
  auto now = std::chrono::steady_clock::now();
  ASSERT_EQ(executor.launch(fifo, now).status, LaunchStatus::Submitted);
  ASSERT_EQ(executor.launch(link, now).status, LaunchStatus::Submitted);
  AttemptEnd from_fifo = wait_for(executor, 10), from_link = wait_for(executor, 11);
  EXPECT_EQ(from_fifo.exit_code, 0);
  EXPECT_EQ(from_fifo.output_data, "");
  EXPECT_EQ(from_fifo.output_error, "");
  EXPECT_EQ(from_link.exit_code, 0);
  EXPECT_EQ(from_link.output_data, "");  // not followed
}

TEST(CommandExecutor, EachLaunchHasAnOutputFileOfItsOwnAndLeavesNothing) {
  std::string directory = output_directory();
  CommandExecutor executor("ORCH_SCHEDULER=test", directory);
  // The same attempt twice (orch.retry numbers attempts from 1 again); the
  // first leaves a directory where its output file would be.
  TaskLaunch first = shell_task(12, "echo \"$ORCH_OUTPUT\"; mkdir \"$ORCH_OUTPUT\"; touch \"$ORCH_OUTPUT/inside\"");
  TaskLaunch again = first;
  again.shell = "echo \"$ORCH_OUTPUT\"";
  ASSERT_EQ(executor.launch(first, std::chrono::steady_clock::now()).status, LaunchStatus::Submitted);
  AttemptEnd one = wait_for(executor, 12);
  ASSERT_EQ(executor.launch(again, std::chrono::steady_clock::now()).status, LaunchStatus::Submitted);
  AttemptEnd two = wait_for(executor, 12);
  EXPECT_EQ(one.exit_code, 0);
  EXPECT_EQ(one.output_data, "");
  EXPECT_NE(one.output, two.output);
  EXPECT_EQ(entries_in(directory), std::vector<std::string>{});
}

TEST(CommandExecutor, LeftoverOutputFilesAreRemovedAtStart) {
  std::string directory = output_directory();
  std::string leftover = directory + "/41-1.1";
  FILE *file = std::fopen(leftover.c_str(), "w");
  ASSERT_NE(file, nullptr);
  std::fclose(file);
  std::string left_directory = directory + "/42-1.2";
  ASSERT_EQ(::mkdir(left_directory.c_str(), 0700), 0);
  std::string elsewhere = output_directory();  // not the executor's
  std::string kept = elsewhere + "/kept";
  std::fclose(std::fopen(kept.c_str(), "w"));
  ASSERT_EQ(::symlink(elsewhere.c_str(), (left_directory + "/link").c_str()), 0);
  CommandExecutor executor("ORCH_SCHEDULER=test", directory);
  struct stat info;
  EXPECT_NE(::stat(leftover.c_str(), &info), 0);
  EXPECT_NE(::stat(left_directory.c_str(), &info), 0);
  EXPECT_EQ(::stat(kept.c_str(), &info), 0);  // a symlink in it is removed, not followed
}

}  // namespace
}  // namespace orch
