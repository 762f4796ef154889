// posix_spawn for the child supervisor, now or on a thread of its own.
//
// posix_spawn returns once the child has exec'd, about 0.4 ms for a small
// command, and the caller sleeps all that time. The scheduler hands its
// spawns to a SpawnThread, so that their exec overlaps its next
// transaction (bench/README.md, throughput). The thread blocks every
// signal and calls nothing of PostgreSQL: only posix_spawn, close and write.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/cpp_only.hpp"

namespace orch {

struct SpawnJob {
  std::uint64_t id = 0;
  std::vector<std::string> argv;  // argv[0] looked up in PATH if it has no '/'
  std::vector<std::string> env;   // "KEY=VALUE" each
  std::string working_directory;  // empty: inherit
  int write_end = -1;  // the output pipe's end for the child's stdout and stderr
};

// Starts job's command in its own process group, stdin from /dev/null,
// stdout and stderr into write_end, default signal dispositions, an empty
// mask and no descriptor above 2. Closes write_end. Returns 0 with the pid,
// or an errno value (glibc reports exec and chdir failures here).
int spawn_job(SpawnJob &job, int &pid);

struct SpawnResult {
  std::uint64_t id = 0;
  int pid = 0;
  int error = 0;  // spawn_job's errno value; 0 when pid is set
};

class SpawnThread {
 public:
  SpawnThread();
  SpawnThread(const SpawnThread &) = delete;
  SpawnThread &operator=(const SpawnThread &) = delete;
  ~SpawnThread();  // finishes the jobs given, then joins

  void submit(SpawnJob job);
  // The results since the last call, without waiting.
  std::vector<SpawnResult> take_results();
  // Drops the jobs not begun (closing their write ends) and returns their
  // ids: they never get a result.
  std::vector<std::uint64_t> cancel_queued() noexcept;
  // Waits until every job submitted has a result.
  void wait_idle();
  // Readable while results wait for take_results(): for the caller's wait.
  int wake_fd() const { return wake_fd_; }

 private:
  void work();

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<SpawnJob> jobs_;
  std::vector<SpawnResult> results_;
  bool busy_ = false;
  bool stopping_ = false;
  int wake_fd_ = -1;
  std::thread thread_;
};

}  // namespace orch
