#include "core/command_executor.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>

#include "core/error.hpp"

#include "core/placeholders.hpp"

namespace orch {

std::vector<std::string> command_environment(const TaskLaunch &task, const std::string &marker,
                                             const std::string &output_file) {
  std::vector<std::string> env;
  for (const char *name : {"HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME"})
    if (const char *value = std::getenv(name)) env.push_back(std::string(name) + "=" + value);
  const char *path = std::getenv("PATH");
  env.push_back(std::string("PATH=") + (path ? path : "/usr/local/bin:/usr/bin:/bin"));
  for (const auto &[key, value] : task.env) env.push_back(key + "=" + value);
  if (!task.input_json.empty())
    for (const auto &[key, value] : input_environment(task.input_json)) env.push_back(key + "=" + value);
  env.push_back("ORCH_PROCESS_ID=" + task.process_id);
  env.push_back("ORCH_RUN_ID=" + std::to_string(task.run_id));
  env.push_back("ORCH_TASK_ID=" + std::to_string(task.id));
  env.push_back("ORCH_TASK_NAME=" + task.name);
  env.push_back("ORCH_ATTEMPT=" + std::to_string(task.attempt));
  if (!task.outputs_json.empty()) env.push_back("ORCH_OUTPUTS=" + task.outputs_json);
  if (task.item_index >= 0) {
    env.push_back("ORCH_ITEM=" + task.item_json);
    env.push_back("ORCH_ITEM_INDEX=" + std::to_string(task.item_index));
  }
  env.push_back("ORCH_OUTPUT=" + output_file);
  if (!marker.empty()) env.push_back(marker);
  return env;
}

namespace {

// Removes a command's output file, or the directory a command made in its
// place, with what is in it (symlinks themselves, never what they name).
void remove_output(const std::string &path) {
  if (::unlink(path.c_str()) == 0 || errno != EISDIR) return;
  auto remove_entry = [](const char *entry, const struct stat *, int, FTW *) {
    ::remove(entry);
    return 0;  // on to the next, whatever this one did
  };
  ::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

// Removes what an earlier executor left in `directory` (it crashed before
// reading them), creating the directory (mode 0700) if needed.
void prepare_output_directory(const std::string &directory) {
  if (::mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST)
    throw std::runtime_error("could not create " + quote(directory) + ": " + std::strerror(errno));
  DIR *dir = ::opendir(directory.c_str());
  if (dir == nullptr) throw std::runtime_error("could not open " + quote(directory) + ": " + std::strerror(errno));
  while (dirent *entry = ::readdir(dir))
    if (std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0)
      remove_output(directory + "/" + entry->d_name);
  ::closedir(dir);
}

}  // namespace

CommandExecutor::CommandExecutor(std::string marker, std::string output_directory)
    : marker_(std::move(marker)), output_directory_(std::move(output_directory)) {
  prepare_output_directory(output_directory_);
}

Launch CommandExecutor::launch(const TaskLaunch &task, SteadyTime now) {
  // A name never used before: orch.retry numbers attempts from 1 again, and
  // what an earlier attempt left running could still write to its file.
  std::string output_file = output_directory_ + "/" + std::to_string(task.id) + "-" + std::to_string(task.attempt) +
                            "." + std::to_string(++launches_);
  try {
    SpawnRequest request;
    request.argv = task.kind == "shell" ? std::vector<std::string>{"/bin/sh", "-c", task.shell} : task.command;
    request.env = command_environment(task, marker_, output_file);
    // The command makes the file if it has an output (no file: none). Its
    // name is new for each attempt, in a directory only this user reads.
    output_files_[task.id] = output_file;
    request.working_directory = task.working_directory;
    request.timeout = task.timeout;
    request.kill_grace = kill_grace_;
    request.max_output = max_output_;
    // The exec overlaps the scheduler's next transaction; started() gives
    // the pid.
    children_.spawn_later(task.id, request, now);
    return Launch{LaunchStatus::Submitted, 0, ""};
  } catch (const std::exception &e) {
    // A request the supervisor refuses (say, a NUL byte) fails the task, not the scheduler.
    AttemptEnd refused;
    refused.id = task.id;
    refused.ending = Ending::SpawnFailed;
    refused.error = e.what();
    refused_.push_back(std::move(refused));
    output_files_.erase(task.id);
    ::unlink(output_file.c_str());
    return Launch{LaunchStatus::Failed, 0, ""};
  }
}

std::vector<AttemptEnd> CommandExecutor::poll(SteadyTime now) {
  std::vector<AttemptEnd> ended = std::move(refused_);
  refused_.clear();
  for (FinishedChild &child : children_.poll(now)) {
    AttemptEnd end;
    end.id = child.id;
    end.ending = child.ending;
    if (child.ending == Ending::Exited) end.exit_code = child.exit_code;
    end.output = std::move(child.output);
    end.output_truncated = child.output_truncated;
    end.error = std::move(child.error);
    if (auto found = output_files_.find(end.id); found != output_files_.end()) {
      collect_output_file(found->second, max_output_data_, end);
      output_files_.erase(found);
    }
    ended.push_back(std::move(end));
  }
  return ended;
}

std::vector<Started> CommandExecutor::started() {
  std::vector<Started> started;
  for (const auto &[id, pid] : children_.take_started()) started.push_back({id, pid, ""});
  return started;
}

void collect_output_file(const std::string &path, std::size_t max_output_data, AttemptEnd &end) {
  std::string text;
  // (O_NONBLOCK: a FIFO made there must not hold the scheduler in open().)
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd >= 0) {
    // One byte more than allowed tells "too large" without reading it all.
    char buffer[64 * 1024];
    ssize_t n;
    while (text.size() <= max_output_data &&
           (n = ::read(fd, buffer, std::min(sizeof buffer, max_output_data + 1 - text.size()))) != 0) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      text.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
  }
  remove_output(path);
  if (end.ending != Ending::Exited) return;  // a failed attempt's output is not its output
  if (std::optional<std::string> problem = output_problem(text, max_output_data))
    end.output_error = *problem;
  else if (text.find_first_not_of(" \t\r\n") != std::string::npos)
    end.output_data = std::move(text);
}

std::optional<SteadyTime> CommandExecutor::next_deadline() const {
  // A refused request waits to be reported: now.
  if (!refused_.empty()) return SteadyTime::min();
  return children_.next_deadline();
}

}  // namespace orch
