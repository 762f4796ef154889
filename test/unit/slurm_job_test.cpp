#include "core/slurm_job.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"
#include "core/task_spec.hpp"

using nlohmann::json;

TEST(SlurmJob, OptionsAreChecked) {
  EXPECT_EQ(orch::parse_slurm_options(json::parse(R"({"partition": "debug", "cpus": 2, "mem": "512M", "time": "1:00:00"})")),
            json::parse(R"({"partition": "debug", "cpus": 2, "mem": "512M", "time": "1:00:00"})"));
  EXPECT_NO_THROW(orch::parse_slurm_options(json::parse(R"({"time": "2-12:30"})")));
  for (const char *bad : {R"({"partition": "a b"})", R"({"cpus": 0})", R"({"cpus": 1.5})", R"({"mem": "lots"})",
                          R"({"time": "1 hour"})", R"({"nodes": 2})", R"([])", R"({"partition": "--wrap=x"})"})
    EXPECT_THROW(orch::parse_slurm_options(json::parse(bad)), orch::InvalidInput) << bad;
}

TEST(SlurmJob, TheScriptQuotesEverything) {
  EXPECT_EQ(orch::shell_quote("it's $HOME `x`"), R"('it'\''s $HOME `x`')");
  EXPECT_EQ(orch::job_script({"A=1 2", "B=it's"}, {"/bin/echo", "$(id)", "a'b"}),
            "#!/bin/sh\nexport 'A=1 2'\nexport 'B=it'\\''s'\nexec '/bin/echo' '$(id)' 'a'\\''b'\n");
}

TEST(SlurmJob, SbatchArguments) {
  EXPECT_EQ(orch::sbatch_arguments(json::parse(R"({"partition": "debug", "cpus": 2, "mem": "1G", "time": "5"})"),
                                   "orch-7", "/work", "/dir/7-1.out", "/dir/7-1.sh"),
            (std::vector<std::string>{"sbatch", "--parsable", "--export=NONE", "--job-name=orch-7", "--chdir=/work",
                                      "--output=/dir/7-1.out", "--partition=debug", "--cpus-per-task=2", "--mem=1G",
                                      "--time=5", "/dir/7-1.sh"}));
  EXPECT_EQ(orch::sbatch_arguments(json::object(), "orch-7", "/w", "/o", "/s").size(), 7u);
}

TEST(SlurmJob, JobIdsAndStatesAreRead) {
  EXPECT_EQ(orch::submitted_job_id("123\n"), "123");
  EXPECT_EQ(orch::submitted_job_id("123;cluster\n"), "123");
  EXPECT_EQ(orch::submitted_job_id("sbatch: error: invalid partition\n"), "");
  std::optional<orch::JobState> failed = orch::scontrol_job_state(
      "JobId=12 JobName=orch-1 UserId=postgres(101) JobState=FAILED Reason=NonZeroExitCode ExitCode=3:0 RunTime=0");
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->state, "FAILED");
  EXPECT_EQ(failed->exit_code, 3);
  EXPECT_TRUE(failed->finished());
  std::optional<orch::JobState> running = orch::scontrol_job_state("JobId=12 JobState=RUNNING Reason=None ExitCode=0:0");
  ASSERT_TRUE(running);
  EXPECT_FALSE(running->finished());
  EXPECT_FALSE(orch::scontrol_job_state("slurm_load_jobs error: Invalid job id specified"));
  std::optional<orch::JobState> cancelled = orch::sacct_job_state("11|COMPLETED|0:0\n12|CANCELLED by 101|0:15\n", "12");
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->state, "CANCELLED");
  EXPECT_EQ(cancelled->signal, 15);
  EXPECT_FALSE(orch::sacct_job_state("11|COMPLETED|0:0\n", "12"));
}

TEST(SlurmJob, OnlyCommandAndShellTasksGoToSlurm) {
  orch::ProcessTypeSpec spec = orch::parse_process_type(
      R"([{"name": "a", "command": ["/bin/true"], "executor": "slurm", "slurm": {"cpus": 2}},
          {"name": "b", "shell": "true", "executor": "slurm"}, {"name": "c", "shell": "true", "executor": "local"}])");
  EXPECT_EQ(spec.tasks[0].slurm_json, R"({"cpus":2})");
  EXPECT_EQ(spec.tasks[1].slurm_json, "{}");
  EXPECT_EQ(spec.tasks[2].slurm_json, "");
  EXPECT_THROW(orch::parse_process_type(R"([{"name": "s", "sql": "SELECT 1", "executor": "slurm"}])"),
               orch::InvalidInput);
  EXPECT_THROW(orch::parse_process_type(R"([{"name": "s", "shell": "true", "slurm": {"cpus": 2}}])"),
               orch::InvalidInput);
  EXPECT_THROW(orch::parse_process_type(R"([{"name": "s", "shell": "true", "executor": "k8s"}])"), orch::InvalidInput);
}
