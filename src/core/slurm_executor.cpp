#include "core/slurm_executor.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/command_executor.hpp"
#include "core/error.hpp"
#include "core/interval.hpp"
#include "core/slurm_job.hpp"

namespace orch {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kCheckInterval{500};  // between two looks at a job
constexpr milliseconds kCommandTimeout{20000};  // a Slurm command that takes longer failed

// What the Slurm commands see of the server's environment: enough to find
// the programs and the cluster's configuration.
std::vector<std::string> slurm_command_environment() {
  std::vector<std::string> env;
  for (const char *name : {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "SLURM_CONF"})
    if (const char *value = std::getenv(name)) env.push_back(std::string(name) + "=" + value);
  return env;
}

void write_file(const std::string &path, const std::string &content, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) throw std::runtime_error("could not create " + quote(path) + ": " + std::strerror(errno));
  bool written = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  ::close(fd);
  if (!written) throw std::runtime_error("could not write " + quote(path));
}

// The last max_bytes of a file, and whether there was more.
std::pair<std::string, bool> file_tail(const std::string &path, std::size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return {"", false};
  struct stat info {};
  ::fstat(fd, &info);
  std::size_t size = static_cast<std::size_t>(info.st_size);
  std::size_t start = size > max_bytes ? size - max_bytes : 0;
  std::string text(size - start, '\0');
  ssize_t got = ::pread(fd, text.data(), text.size(), static_cast<off_t>(start));
  ::close(fd);
  text.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
  return {text, start > 0};
}

// A Slurm command's output, one line, for a message.
std::string first_line(const std::string &text) {
  std::string line = text.substr(0, text.find('\n'));
  return line.empty() ? "no output" : line;
}

// What a Slurm command that failed said, or why it could not run.
std::string complaint(const FinishedChild &child) {
  return first_line(child.output.empty() ? child.error : child.output);
}

}  // namespace

void SlurmExecutor::set_limits(std::size_t max_output, std::size_t max_output_data, milliseconds unreachable_timeout,
                               const std::string &directory) {
  max_output_ = max_output;
  max_output_data_ = max_output_data;
  unreachable_timeout_ = unreachable_timeout;
  directory_ = directory;
}

std::string SlurmExecutor::file(std::uint64_t id, int attempt, const char *suffix) const {
  return directory_ + "/" + std::to_string(id) + "-" + std::to_string(attempt) + suffix;
}

void SlurmExecutor::run(std::uint64_t id, Step step, std::vector<std::string> argv, SteadyTime now) {
  SpawnRequest request;
  request.argv = std::move(argv);
  request.env = slurm_command_environment();
  // No longer than the controller may stay silent: a command that hangs on
  // it fails in time to fail the attempt.
  request.timeout = std::min(kCommandTimeout, std::max(milliseconds(1000), unreachable_timeout_));
  request.kill_grace = milliseconds(1000);
  request.max_output = 64 * 1024;
  std::uint64_t command = next_command_id_++;
  steps_[command] = {id, step};
  if (step != Step::Cancel) jobs_[id].command_running = true;
  commands_.spawn(command, request, now);  // a failed spawn is reported by the next poll()
}

Launch SlurmExecutor::launch(const TaskLaunch &task, SteadyTime now) {
  std::string output_data_file = file(task.id, task.attempt, ".output");
  try {
    nlohmann::json options = nlohmann::json::parse(task.slurm_json);
    if (::mkdir(directory_.c_str(), 0700) != 0 && errno != EEXIST)
      throw std::runtime_error("could not create " + quote(directory_) + ": " + std::strerror(errno));
    std::vector<std::string> argv =
        task.kind == "shell" ? std::vector<std::string>{"/bin/sh", "-c", task.shell} : task.command;
    write_file(output_data_file, "", 0600);
    std::string script = file(task.id, task.attempt, ".sh");
    write_file(script, job_script(command_environment(task, "", output_data_file), argv), 0700);
    Job &job = jobs_[task.id];
    job.attempt = task.attempt;
    if (task.timeout.count() > 0) job.deadline = now + task.timeout;
    job.error = task.timeout.count() > 0 ? "timed out after " + format_interval(task.timeout) : "";
    run(task.id, Step::Submit,
        sbatch_arguments(options, "orch-" + std::to_string(task.id),
                         task.working_directory.empty() ? directory_ : task.working_directory,
                         file(task.id, task.attempt, ".out"), script),
        now);
    return {LaunchStatus::Submitted, 0, ""};
  } catch (const std::exception &e) {
    jobs_.erase(task.id);
    AttemptEnd refused;
    refused.id = task.id;
    refused.ending = Ending::SpawnFailed;
    refused.error = e.what();
    ended_.push_back(refused);
    return {LaunchStatus::Failed, 0, ""};
  }
}

void SlurmExecutor::adopt(std::uint64_t id, int attempt, const std::string &job_id,
                          std::optional<SteadyTime> deadline, SteadyTime now) {
  Job &job = jobs_[id];
  job.attempt = attempt;
  job.job_id = job_id;
  job.deadline = deadline;
  job.error = "timed out";
  job.next_check = now;
  job.last_contact = now;
}

void SlurmExecutor::cancel(std::uint64_t id, Job &job, Ending why, const std::string &error, SteadyTime now) {
  job.ended_by = why;
  job.error = error;
  // Still being submitted: cancelled once sbatch names the job.
  if (!job.job_id.empty()) run(id, Step::Cancel, {"scancel", job.job_id}, now);
}

void SlurmExecutor::stop(std::uint64_t id, SteadyTime now) {
  auto found = jobs_.find(id);
  if (found != jobs_.end() && !found->second.ended_by) cancel(id, found->second, Ending::Stopped, "stopped", now);
}

void SlurmExecutor::finish(std::uint64_t id, Ending ending, std::optional<int> exit_code, std::string error) {
  auto found = jobs_.find(id);
  if (found == jobs_.end()) return;
  int attempt = found->second.attempt;
  jobs_.erase(found);
  AttemptEnd end;
  end.id = id;
  end.ending = ending;
  end.exit_code = exit_code;
  end.error = std::move(error);
  std::tie(end.output, end.output_truncated) = file_tail(file(id, attempt, ".out"), max_output_);
  collect_output_file(file(id, attempt, ".output"), max_output_data_, end);
  ::unlink(file(id, attempt, ".out").c_str());
  ::unlink(file(id, attempt, ".sh").c_str());
  ended_.push_back(std::move(end));
}

void SlurmExecutor::unreachable(std::uint64_t id, Job &job, const std::string &message, SteadyTime now) {
  if (now - job.last_contact < unreachable_timeout_) {
    job.next_check = now + kCheckInterval;
    return;
  }
  std::string job_id = job.job_id;
  finish(id, Ending::Failed, std::nullopt,
         "Slurm could not be reached for " + format_interval(unreachable_timeout_) + ": " + first_line(message));
  if (!job_id.empty()) run(id, Step::Cancel, {"scancel", job_id}, now);  // if it ever comes back
}

void SlurmExecutor::on_command_end(std::uint64_t id, Step step, const FinishedChild &child, SteadyTime now) {
  Job &job = jobs_.at(id);
  bool succeeded = child.ending == Ending::Exited && child.exit_code == 0;
  std::string job_id = job.job_id;
  switch (step) {
    case Step::Cancel:
      return;
    case Step::Submit:
      job.job_id = succeeded ? submitted_job_id(child.output) : "";
      if (job.job_id.empty()) {
        finish(id, Ending::Failed, std::nullopt, "sbatch failed: " + complaint(child));
        return;
      }
      started_.push_back({id, 0, job.job_id});
      job.next_check = now + kCheckInterval;
      job.last_contact = now;
      if (job.ended_by) run(id, Step::Cancel, {"scancel", job.job_id}, now);  // stopped while submitting
      return;
    case Step::Query:
    case Step::History: {
      std::optional<JobState> state;
      if (succeeded)
        state = step == Step::Query ? scontrol_job_state(child.output) : sacct_job_state(child.output, job_id);
      if (step == Step::Query && !succeeded && child.output.find("Invalid job id") != std::string::npos) {
        run(id, Step::History, {"sacct", "-c", "-P", "-n", "--format=JobID,State,ExitCode", "-j", job_id}, now);
        return;
      }
      if (!succeeded) {
        unreachable(id, job, complaint(child), now);
        return;
      }
      job.last_contact = now;
      if (!state) {
        if (step == Step::History)
          finish(id, Ending::Failed, std::nullopt, "Slurm no longer knows job " + job_id);
        else
          job.next_check = now + kCheckInterval;
        return;
      }
      if (!state->finished()) {
        job.next_check = now + kCheckInterval;
        return;
      }
      if (state->state == "CANCELLED" && job.ended_by) {
        finish(id, *job.ended_by, std::nullopt, job.error);
      } else if ((state->state == "COMPLETED" || state->state == "FAILED") && state->signal == 0) {
        finish(id, Ending::Exited, state->exit_code,
               state->exit_code == 0 ? "" : "exited with code " + std::to_string(state->exit_code));
      } else if (state->state == "COMPLETED" || state->state == "FAILED") {
        finish(id, Ending::Signaled, std::nullopt, "killed by signal " + std::to_string(state->signal));
      } else if (state->state == "TIMEOUT") {
        finish(id, Ending::TimedOut, std::nullopt, "Slurm job " + job_id + " reached its time limit");
      } else if (state->state == "CANCELLED") {
        finish(id, Ending::Signaled, std::nullopt, "Slurm job " + job_id + " was cancelled");
      } else {
        finish(id, Ending::Failed, std::nullopt, "Slurm job " + job_id + " ended " + state->state);
      }
      return;
    }
  }
}

std::vector<AttemptEnd> SlurmExecutor::poll(SteadyTime now) {
  for (const FinishedChild &child : commands_.poll(now)) {
    auto step = steps_.find(child.id);
    if (step == steps_.end()) continue;
    auto [id, kind] = step->second;
    steps_.erase(step);
    auto job = jobs_.find(id);
    if (job == jobs_.end()) continue;
    if (kind != Step::Cancel) job->second.command_running = false;
    on_command_end(id, kind, child, now);
  }
  std::vector<std::uint64_t> ids;
  for (const auto &[id, job] : jobs_) ids.push_back(id);
  for (std::uint64_t id : ids) {
    Job &job = jobs_.at(id);
    if (job.deadline && now >= *job.deadline && !job.ended_by) cancel(id, job, Ending::TimedOut, job.error, now);
    if (!job.job_id.empty() && !job.command_running && now >= job.next_check)
      run(id, Step::Query, {"scontrol", "show", "job", "-o", job.job_id}, now);
  }
  std::vector<AttemptEnd> ended;
  ended.swap(ended_);
  return ended;
}

std::vector<Started> SlurmExecutor::started() {
  std::vector<Started> started;
  started.swap(started_);
  return started;
}

std::optional<SteadyTime> SlurmExecutor::next_deadline() const {
  if (!started_.empty() || !ended_.empty()) return SteadyTime{};
  std::optional<SteadyTime> next = commands_.next_deadline();
  auto consider = [&](SteadyTime at) {
    if (!next || at < *next) next = at;
  };
  for (const auto &[id, job] : jobs_) {
    if (job.deadline && !job.ended_by) consider(*job.deadline);
    if (!job.job_id.empty() && !job.command_running) consider(job.next_check);
  }
  return next;
}

std::vector<Watch> SlurmExecutor::descriptors() const {
  std::vector<Watch> watches;
  for (int fd : commands_.watched_fds()) watches.push_back({fd, false});
  return watches;
}

void SlurmExecutor::abandon_all() noexcept {
  commands_.kill_all();
  jobs_.clear();
  steps_.clear();
  started_.clear();
  ended_.clear();
}

}  // namespace orch
