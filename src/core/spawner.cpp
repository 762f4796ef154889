#include "core/spawner.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace orch {
namespace {

// posix_spawn's C objects, destroyed on every path.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;
  bool have_actions = false;
  bool have_attributes = false;

  ~SpawnSetup() {
    if (have_actions) posix_spawn_file_actions_destroy(&actions);
    if (have_attributes) posix_spawnattr_destroy(&attributes);
  }

  // Returns 0 or an errno value.
  int prepare(int write_end, const std::string &working_directory) {
    int rc = posix_spawn_file_actions_init(&actions);
    if (rc != 0) return rc;
    have_actions = true;
    rc = posix_spawnattr_init(&attributes);
    if (rc != 0) return rc;
    have_attributes = true;

    if ((rc = posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)) != 0) return rc;
    if ((rc = posix_spawn_file_actions_adddup2(&actions, write_end, 1)) != 0) return rc;
    if ((rc = posix_spawn_file_actions_adddup2(&actions, write_end, 2)) != 0) return rc;
    if (!working_directory.empty() &&
        (rc = posix_spawn_file_actions_addchdir_np(&actions, working_directory.c_str())) != 0)
      return rc;
    // PostgreSQL keeps many descriptors without close-on-exec (data files,
    // sockets): a command, or a grandchild left behind, must not hold them.
    if ((rc = posix_spawn_file_actions_addclosefrom_np(&actions, 3)) != 0) return rc;

    // The worker ignores SIGPIPE and blocks signals at times; the command
    // must start with the defaults a shell would give it. Every bit is set by
    // hand: sigfillset leaves out glibc's two internal signals, which
    // posix_spawn would then leave ignored in the child.
    sigset_t all, none;
    std::memset(&all, 0xff, sizeof all);
    sigemptyset(&none);
    if ((rc = posix_spawnattr_setsigdefault(&attributes, &all)) != 0) return rc;
    if ((rc = posix_spawnattr_setsigmask(&attributes, &none)) != 0) return rc;
    if ((rc = posix_spawnattr_setpgroup(&attributes, 0)) != 0) return rc;
    short flags = POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
    return posix_spawnattr_setflags(&attributes, flags);
  }
};

std::vector<char *> c_strings(const std::vector<std::string> &strings) {
  std::vector<char *> pointers;
  pointers.reserve(strings.size() + 1);
  for (const auto &s : strings) pointers.push_back(const_cast<char *>(s.c_str()));
  pointers.push_back(nullptr);
  return pointers;
}

}  // namespace

int spawn_job(SpawnJob &job, int &pid) {
  std::vector<char *> argv = c_strings(job.argv);
  std::vector<char *> envp = c_strings(job.env);
  SpawnSetup setup;
  int rc = setup.prepare(job.write_end, job.working_directory);
  pid_t child = 0;
  if (rc == 0) rc = posix_spawnp(&child, argv[0], &setup.actions, &setup.attributes, argv.data(), envp.data());
  ::close(job.write_end);  // only the child writes: EOF comes when its group closes it
  job.write_end = -1;
  pid = rc == 0 ? static_cast<int>(child) : 0;
  return rc;
}

SpawnThread::SpawnThread() {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) throw std::runtime_error(std::string("could not create an eventfd: ") + std::strerror(errno));
  // The thread starts with every signal blocked: the process's handlers
  // (PostgreSQL's) must run on the thread that installed them.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    thread_ = std::thread([this] { work(); });
  } catch (...) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    ::close(wake_fd_);
    throw;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

SpawnThread::~SpawnThread() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
  ::close(wake_fd_);
}

void SpawnThread::submit(SpawnJob job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // Room for every result to come, so that the thread never allocates
    // for one (an exception there would end the process).
    results_.reserve(results_.size() + jobs_.size() + 2);
    jobs_.push_back(std::move(job));
  }
  changed_.notify_all();
}

std::vector<SpawnResult> SpawnThread::take_results() {
  std::uint64_t count;
  while (::read(wake_fd_, &count, sizeof count) < 0 && errno == EINTR) {
  }
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<SpawnResult> results(results_.begin(), results_.end());
  results_.clear();  // (keeping the room reserved for the thread)
  return results;
}

std::vector<std::uint64_t> SpawnThread::cancel_queued() noexcept {
  std::vector<std::uint64_t> ids;
  std::lock_guard<std::mutex> lock(mutex_);
  try {
    ids.reserve(jobs_.size());
  } catch (...) {
    return ids;  // (out of memory: they are spawned, then killed)
  }
  for (SpawnJob &job : jobs_) {
    ::close(job.write_end);
    ids.push_back(job.id);
  }
  jobs_.clear();
  changed_.notify_all();
  return ids;
}

void SpawnThread::wait_idle() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return jobs_.empty() && !busy_; });
}

void SpawnThread::work() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, and nothing left
    SpawnJob job = std::move(jobs_.front());
    jobs_.pop_front();
    busy_ = true;
    lock.unlock();
    SpawnResult result;
    result.id = job.id;
    try {
      result.error = spawn_job(job, result.pid);
    } catch (...) {  // out of memory for argv: no C++ exception may leave this thread
      if (job.write_end >= 0) ::close(job.write_end);
      result.error = ENOMEM;
    }
    lock.lock();
    results_.push_back(result);
    busy_ = false;
    changed_.notify_all();
    std::uint64_t one = 1;
    while (::write(wake_fd_, &one, sizeof one) < 0 && errno == EINTR) {
    }
  }
}

}  // namespace orch
