// The executor of http tasks: every request in flight at once inside the
// scheduler's own loop, through libcurl's multi interface. Its sockets and
// its timer are the scheduler's to wait on (descriptors(), next_deadline());
// poll() lets curl do what is ready and never blocks. Redirects are not
// followed, only http and https are spoken, and curl installs no signal
// handler.
//
// An attempt ends Succeeded for an expected status (core/http_request.hpp),
// Failed (tried again) for a 5xx, a connection error or a broken transfer,
// Rejected for any other status, TimedOut after the task's timeout. Its
// output is {"status", "headers", "body"}, the body parsed when it is JSON;
// the output text is the body's tail.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "core/cpp_only.hpp"
#include "core/executor.hpp"

#include <curl/curl.h>

namespace orch {

class HttpExecutor final : public Executor {
 public:
  HttpExecutor();
  HttpExecutor(const HttpExecutor &) = delete;
  HttpExecutor &operator=(const HttpExecutor &) = delete;
  ~HttpExecutor() override;

  // Applies to later launches (settings may change on reload).
  void set_limits(std::size_t max_output, std::size_t max_output_data) {
    max_output_ = max_output;
    max_output_data_ = max_output_data;
  }

  Launch launch(const TaskLaunch &task, SteadyTime now) override;
  void stop(std::uint64_t id, SteadyTime now) override;
  std::vector<AttemptEnd> poll(SteadyTime now) override;
  // Now, when a stopped or refused attempt waits to be reported.
  std::optional<SteadyTime> next_deadline() const override {
    return ended_.empty() ? timer_ : std::optional<SteadyTime>(SteadyTime{});
  }
  std::vector<Watch> descriptors() const override;
  std::size_t running() const override { return requests_.size() + ended_.size(); }
  void abandon_all() noexcept override;

  struct Request;  // one in flight (http_executor.cpp)

 private:
  static int on_socket(void *easy, int fd, int what, void *executor, void *);
  static int on_timer(CURLM *, long timeout_ms, void *executor);
  void remove(std::uint64_t id) noexcept;

  CURLM *multi_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Request>> requests_;
  std::map<int, int> sockets_;  // what curl waits for on each: CURL_POLL_IN, _OUT or _INOUT
  std::optional<SteadyTime> timer_;  // when curl wants to be called for its timeouts
  std::vector<AttemptEnd> ended_;  // failed at launch or stopped: reported by the next poll()
  std::size_t max_output_ = 1 << 20;
  std::size_t max_output_data_ = 1 << 20;
};

}  // namespace orch
