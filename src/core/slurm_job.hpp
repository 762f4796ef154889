// What the slurm executor writes for Slurm and reads back from it: the job
// script, sbatch's arguments, and the job's state as scontrol and sacct
// print it. Pure text, unit-tested; the executor (slurm_executor.hpp) runs
// the commands.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/cpp_only.hpp"

namespace orch {

// "slurm": {"partition", "cpus", "mem", "time"} of a task, validated.
// Throws InvalidInput naming the bad field. Returns the options as given.
nlohmann::json parse_slurm_options(const nlohmann::json &options);

// A POSIX shell word that is exactly `text`: single-quoted.
std::string shell_quote(const std::string &text);

// The job script: exports `env` ("KEY=VALUE" each), then execs `argv`.
std::string job_script(const std::vector<std::string> &env, const std::vector<std::string> &argv);

// sbatch's arguments (argv[0] "sbatch") for a script, from the options.
std::vector<std::string> sbatch_arguments(const nlohmann::json &options, const std::string &job_name,
                                          const std::string &working_directory, const std::string &output_file,
                                          const std::string &script);

// The job id sbatch --parsable printed ("123" or "123;cluster"), or "".
std::string submitted_job_id(const std::string &output);

struct JobState {
  std::string state;  // PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ...
  int exit_code = 0;  // ExitCode=code:signal
  int signal = 0;
  bool finished() const;  // a state the job never leaves
};

// From `scontrol show job -o ID` ("JobId=.. JobState=.. ExitCode=3:0 ..."),
// or from a line of `sacct -c -P -n --format=JobID,State,ExitCode` for the
// job ("12|FAILED|3:0"; State may read "CANCELLED by 101"). nullopt when
// the text has no state for `job_id`.
std::optional<JobState> scontrol_job_state(const std::string &output);
std::optional<JobState> sacct_job_state(const std::string &output, const std::string &job_id);

}  // namespace orch
