#include "core/child_supervisor.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "core/error.hpp"
#include "core/interval.hpp"
#include "core/spawner.hpp"

namespace orch {

// The last max_output bytes of a stream. It grows with the output, so a quiet
// child costs little, and becomes a ring once full: appending is O(n) in the
// new bytes whatever the limit.
class ChildSupervisor::OutputTail {
 public:
  explicit OutputTail(std::size_t limit) : limit_(limit) {}

  void append(const char *data, std::size_t size) {
    if (size == 0) return;
    if (size >= limit_) {
      truncated_ = truncated_ || size > limit_ || !bytes_.empty();
      bytes_.assign(data + (size - limit_), limit_);
      start_ = 0;
      return;
    }
    std::size_t room = limit_ - bytes_.size();
    std::size_t grow = std::min(room, size);
    bytes_.append(data, grow);
    data += grow;
    size -= grow;
    if (size > 0) truncated_ = true;
    while (size > 0) {
      std::size_t chunk = std::min(size, limit_ - start_);
      std::memcpy(&bytes_[start_], data, chunk);
      start_ = (start_ + chunk) % limit_;
      data += chunk;
      size -= chunk;
    }
  }

  std::string take() const { return bytes_.substr(start_) + bytes_.substr(0, start_); }
  bool truncated() const { return truncated_; }

 private:
  std::size_t limit_;
  std::string bytes_;
  std::size_t start_ = 0;  // oldest byte, once bytes_ is full
  bool truncated_ = false;
};

struct ChildSupervisor::Child {
  enum class Cause { None, TimedOut, Stopped };

  Child(std::uint64_t id_, int pid_, int fd_, const SpawnRequest &request, SteadyTime started_)
      : id(id_),
        pid(pid_),
        fd(fd_),
        program(request.argv[0]),
        output(request.max_output),
        timeout(request.timeout),
        kill_grace(request.kill_grace),
        started(started_) {}

  std::uint64_t id;
  int pid;  // also the process group id; 0 while its spawn is under way
  int fd;  // read end of the output pipe, -1 once closed
  std::string program;  // argv[0], for a failed spawn's message
  OutputTail output;
  std::chrono::milliseconds timeout;
  std::chrono::milliseconds kill_grace;
  SteadyTime started;
  Cause cause = Cause::None;
  std::optional<SteadyTime> kill_at;  // set when SIGTERM was sent
  bool kill_sent = false;
};

namespace {

// A signal can interrupt any of these calls: the worker's handlers are not
// installed with SA_RESTART everywhere.
template <typename Call>
auto retry_eintr(Call call) {
  for (;;) {
    auto result = call();
    if (result != -1 || errno != EINTR) return result;
  }
}

void close_fd(int &fd) {
  if (fd >= 0) ::close(fd);  // never retried: on Linux the fd is gone even on EINTR
  fd = -1;
}

// The group id stays reserved while its leader is alive or a zombie, and we
// reap the leader only after its last signal, so this never hits a stranger.
// (A child whose spawn is under way has no pid yet: kill(0) would signal
// our own group.)
void signal_group(int pgid, int sig) {
  if (pgid > 1) ::kill(-pgid, sig);
}


std::string signal_text(int sig) {
  const char *name = ::strsignal(sig);
  return std::to_string(sig) + " (" + (name != nullptr ? name : "unknown") + ")";
}

// Why the working directory is unusable, or "" if it looks fine. Checked
// before spawning because a failed chdir in the child only reports an errno.
std::string working_directory_problem(const std::string &dir) {
  if (dir.empty()) return "";
  struct stat info;
  if (::stat(dir.c_str(), &info) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return "working directory " + quote(dir) + " does not exist";
    return "could not access working directory " + quote(dir) + ": " + std::strerror(errno);
  }
  if (!S_ISDIR(info.st_mode)) return "working directory " + quote(dir) + " is not a directory";
  if (::access(dir.c_str(), X_OK) != 0)
    return "could not access working directory " + quote(dir) + ": " + std::strerror(errno);
  return "";
}

// The child's ends are dup2'ed onto 0..2, so ours must not already be there.
int move_above_stdio(int fd) {
  if (fd < 0 || fd > 2) return fd;
  int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  int saved = errno;
  ::close(fd);
  errno = saved;
  return moved;
}

// The child's end blocks (a child writing to stdout must not see EAGAIN);
// ours does not. Both are close-on-exec: only the dup2'ed copies survive.
bool make_output_pipe(int &read_end, int &write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  read_end = move_above_stdio(fds[0]);
  write_end = move_above_stdio(fds[1]);
  if (read_end < 0 || write_end < 0 || ::fcntl(read_end, F_SETFL, O_NONBLOCK) != 0) {
    int saved = errno;
    close_fd(read_end);
    close_fd(write_end);
    errno = saved;
    return false;
  }
  return true;
}

void check_request(const SpawnRequest &request) {
  if (request.argv.empty()) throw InvalidInput("argv must not be empty");
  if (request.argv[0].empty()) throw InvalidInput("argv[0] must not be empty");
  auto has_nul = [](const std::string &s) { return s.find('\0') != std::string::npos; };
  for (const auto &arg : request.argv)
    if (has_nul(arg)) throw InvalidInput("argv must not contain a NUL byte");
  for (const auto &entry : request.env) {
    if (has_nul(entry)) throw InvalidInput("env must not contain a NUL byte");
    if (entry.find('=') == std::string::npos || entry[0] == '=')
      throw InvalidInput("env entry " + quote(entry) + " is not KEY=VALUE");
  }
  if (has_nul(request.working_directory)) throw InvalidInput("working_directory must not contain a NUL byte");
  if (request.timeout.count() < 0) throw InvalidInput("timeout must not be negative");
  if (request.kill_grace.count() < 0) throw InvalidInput("kill_grace must not be negative");
}

FinishedChild spawn_failure(std::uint64_t id, std::string message, SteadyTime now) {
  FinishedChild failed;
  failed.id = id;
  failed.pid = 0;
  failed.ending = Ending::SpawnFailed;
  failed.error = std::move(message);
  failed.started = failed.ended = now;
  return failed;
}

enum class ExitPeek { Running, Exited, Lost };

// Looks without reaping, so the group id stays reserved for signal_group.
ExitPeek peek_exit(int pid) {
  siginfo_t info;
  std::memset(&info, 0, sizeof info);
  int rc = retry_eintr([&] { return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT); });
  if (rc != 0) return ExitPeek::Lost;  // ECHILD: someone reaped it behind our back
  return info.si_pid == 0 ? ExitPeek::Running : ExitPeek::Exited;
}

}  // namespace

ChildSupervisor::ChildSupervisor() = default;

ChildSupervisor::~ChildSupervisor() { kill_all(); }

bool ChildSupervisor::id_in_use(std::uint64_t id) const {
  auto same = [id](const auto &c) { return c.id == id; };
  return std::any_of(children_.begin(), children_.end(), same) ||
         std::any_of(failed_.begin(), failed_.end(), same);
}

// Checks the request and makes the child's pipe; false (the failure noted
// for poll()) if it cannot start.
bool ChildSupervisor::prepare(std::uint64_t id, const SpawnRequest &request, SteadyTime now, SpawnJob &job) {
  check_request(request);
  if (id_in_use(id)) throw std::runtime_error("child id " + std::to_string(id) + " is already in use");
  children_.reserve(children_.size() + 1);  // so nothing below can throw once the child runs
  failed_.reserve(failed_.size() + 1);

  std::string problem = working_directory_problem(request.working_directory);
  if (!problem.empty()) {
    failed_.push_back(spawn_failure(id, std::move(problem), now));
    return false;
  }
  job.id = id;
  job.argv = request.argv;
  job.env = request.env;
  job.working_directory = request.working_directory;
  int read_end = -1;
  if (!make_output_pipe(read_end, job.write_end)) {
    failed_.push_back(spawn_failure(id, std::string("could not create pipe: ") + std::strerror(errno), now));
    return false;
  }
  try {
    children_.emplace_back(id, 0, read_end, request, now);
  } catch (...) {
    close_fd(read_end);
    close_fd(job.write_end);
    throw;
  }
  return true;
}

int ChildSupervisor::spawn(std::uint64_t id, const SpawnRequest &request, SteadyTime now) {
  SpawnJob job;
  if (!prepare(id, request, now, job)) return 0;
  int pid = 0;
  int rc = ENOMEM;
  try {
    rc = spawn_job(job, pid);
  } catch (...) {  // out of memory for argv: the spawn fails
    close_fd(job.write_end);
  }
  return spawned(id, pid, rc, now) ? pid : 0;
}

void ChildSupervisor::spawn_later(std::uint64_t id, const SpawnRequest &request, SteadyTime now) {
  if (!spawn_thread_) spawn_thread_ = std::make_unique<SpawnThread>();
  SpawnJob job;
  if (!prepare(id, request, now, job)) return;
  int write_end = job.write_end;
  try {
    spawn_thread_->submit(std::move(job));
  } catch (...) {  // not queued: the child will never be
    close_fd(write_end);
    close_fd(children_.back().fd);
    children_.pop_back();
    throw;
  }
}

// The outcome of child id's spawn: it runs (and a stop asked meanwhile is
// sent now), or it becomes a failure for poll(). Returns whether it runs.
bool ChildSupervisor::spawned(std::uint64_t id, int pid, int error, SteadyTime now) {
  auto it = std::find_if(children_.begin(), children_.end(), [id](const Child &c) { return c.id == id; });
  if (it == children_.end()) return false;
  if (error != 0) {
    close_fd(it->fd);
    FinishedChild failed =
        spawn_failure(id, "could not execute " + quote(it->program) + ": " + std::strerror(error), now);
    if (it->cause == Child::Cause::Stopped) {  // stopped first: that is its end
      failed.ending = Ending::Stopped;
      failed.error = "stopped";
    }
    failed_.push_back(std::move(failed));
    children_.erase(it);
    return false;
  }
  it->pid = pid;
  it->started = now;  // its timeout counts from here, not from its wait in the queue
  if (it->cause == Child::Cause::Stopped) send_term(*it, now);
  return true;
}

void ChildSupervisor::collect_spawns(SteadyTime now) {
  if (!spawn_thread_) return;
  for (const SpawnResult &result : spawn_thread_->take_results())
    if (spawned(result.id, result.pid, result.error, now)) started_.emplace_back(result.id, result.pid);
}

std::vector<std::pair<std::uint64_t, int>> ChildSupervisor::take_started() {
  std::vector<std::pair<std::uint64_t, int>> started = std::move(started_);
  started_.clear();
  return started;
}

void ChildSupervisor::read_output(Child &child) {
  // Read until EAGAIN so a chatty child never sits on a full pipe, but stop
  // after a budget so one child cannot hold the worker: the fd stays
  // readable and the next wait returns at once.
  constexpr std::size_t kBudget = 4 << 20;
  char buffer[64 * 1024];
  std::size_t total = 0;
  while (child.fd >= 0 && total < kBudget) {
    ssize_t n = ::read(child.fd, buffer, sizeof buffer);
    if (n > 0) {
      child.output.append(buffer, static_cast<std::size_t>(n));
      total += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return;
    } else {
      close_fd(child.fd);  // EOF, or an error that would repeat forever
    }
  }
}

void ChildSupervisor::send_term(Child &child, SteadyTime now) {
  if (child.pid == 0) return;  // sent once spawned (see spawned())
  signal_group(child.pid, SIGTERM);
  child.kill_at = now + child.kill_grace;
}

void ChildSupervisor::apply_deadlines(Child &child, SteadyTime now) {
  if (child.pid == 0) return;
  if (!child.kill_at && child.timeout.count() > 0 && now >= child.started + child.timeout) {
    child.cause = Child::Cause::TimedOut;
    send_term(child, now);
  }
  if (child.kill_at && !child.kill_sent && now >= *child.kill_at) {
    signal_group(child.pid, SIGKILL);
    child.kill_sent = true;
  }
}

void ChildSupervisor::stop(std::uint64_t id, SteadyTime now) {
  for (auto &child : children_) {
    if (child.id != id) continue;
    if (!child.kill_at) {
      child.cause = Child::Cause::Stopped;
      send_term(child, now);
    }
    apply_deadlines(child, now);  // a zero grace kills at once
    return;
  }
}

std::vector<FinishedChild> ChildSupervisor::poll(SteadyTime now) {
  collect_spawns(now);
  std::vector<FinishedChild> finished = std::move(failed_);
  failed_.clear();
  for (auto it = children_.begin(); it != children_.end();) {
    Child &child = *it;
    read_output(child);
    if (child.pid == 0) {  // its spawn is under way
      ++it;
      continue;
    }
    ExitPeek peek = peek_exit(child.pid);
    if (peek == ExitPeek::Running) {
      apply_deadlines(child, now);
      ++it;
      continue;
    }
    int status = 0;
    bool known = false;
    if (peek == ExitPeek::Exited) {
      // The leader is a zombie: its group id is still ours to signal. No
      // grandchild may outlive the task or keep the pipe open.
      signal_group(child.pid, SIGKILL);
      read_output(child);
      known = retry_eintr([&] { return ::waitpid(child.pid, &status, 0); }) == child.pid;
    }
    close_fd(child.fd);

    FinishedChild done;
    done.id = child.id;
    done.pid = child.pid;
    done.output = child.output.take();
    done.output_truncated = child.output.truncated();
    done.started = child.started;
    done.ended = now;
    if (known && WIFSIGNALED(status)) done.signal = WTERMSIG(status);
    if (child.cause == Child::Cause::TimedOut) {
      done.ending = Ending::TimedOut;
      done.error = "timed out after " + format_interval(child.timeout);
    } else if (child.cause == Child::Cause::Stopped) {
      done.ending = Ending::Stopped;
      done.error = "stopped";
    } else if (known && WIFEXITED(status)) {
      done.ending = Ending::Exited;
      done.exit_code = WEXITSTATUS(status);
      if (done.exit_code != 0) done.error = "exited with code " + std::to_string(done.exit_code);
    } else if (known) {
      done.ending = Ending::Signaled;
      done.error = "killed by signal " + signal_text(done.signal);
      if (WCOREDUMP(status)) done.error += ", core dumped";
    } else {
      done.ending = Ending::Signaled;
      done.error = "exit status lost: the process was reaped by someone else";
    }
    finished.push_back(std::move(done));
    it = children_.erase(it);
  }
  return finished;
}

std::vector<int> ChildSupervisor::watched_fds() const {
  std::vector<int> fds;
  for (const auto &child : children_)
    if (child.fd >= 0) fds.push_back(child.fd);
  if (spawn_thread_) fds.push_back(spawn_thread_->wake_fd());
  return fds;
}

std::optional<SteadyTime> ChildSupervisor::next_deadline() const {
  std::optional<SteadyTime> earliest;
  auto consider = [&earliest](SteadyTime t) {
    if (!earliest || t < *earliest) earliest = t;
  };
  for (const auto &failed : failed_) consider(failed.ended);
  for (const auto &child : children_) {
    if (child.pid == 0) continue;  // its spawn's result wakes the caller (watched_fds)
    if (!child.kill_at && child.timeout.count() > 0) consider(child.started + child.timeout);
    if (child.kill_at && !child.kill_sent) consider(*child.kill_at);
  }
  return earliest;
}

std::size_t ChildSupervisor::running() const { return children_.size(); }

void ChildSupervisor::kill_all() noexcept {
  // Spawns not begun are dropped; the one under way is waited for, so that
  // each child that runs has its pid to be killed.
  if (spawn_thread_) {
    for (std::uint64_t id : spawn_thread_->cancel_queued())
      for (auto &child : children_)
        if (child.id == id) close_fd(child.fd);
    spawn_thread_->wait_idle();
    for (const SpawnResult &result : spawn_thread_->take_results())
      for (auto &child : children_)
        if (child.id == result.id) child.pid = result.pid;
  }
  // Signal every group first so they die in parallel, then reap.
  for (const auto &child : children_) signal_group(child.pid, SIGKILL);
  for (auto &child : children_) {
    int status;
    if (child.pid > 0) retry_eintr([&] { return ::waitpid(child.pid, &status, 0); });
    close_fd(child.fd);
  }
  children_.clear();
  failed_.clear();
  started_.clear();
}

bool kill_process_group(int pgid) {
  if (pgid <= 1) throw InvalidInput("process group id must be greater than 1, got " + std::to_string(pgid));
  if (pgid == static_cast<int>(::getpgrp())) return false;
  return ::kill(-pgid, SIGKILL) == 0;
}

}  // namespace orch
