// The http executor against a real server on 127.0.0.1: a thread that
// answers each connection by the request's path.
#include "core/http_executor.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/http_request.hpp"

namespace {

using namespace std::chrono_literals;

// /json: 200 with a JSON body; /status/N: status N; /slow: no answer until
// the connection closes; /big: 200 with 100,000 bytes.
class Server {
 public:
  Server() {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listener_, reinterpret_cast<sockaddr *>(&address), sizeof address);
    listen(listener_, 64);
    socklen_t length = sizeof address;
    getsockname(listener_, reinterpret_cast<sockaddr *>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~Server() {
    stopping_ = true;
    shutdown(listener_, SHUT_RDWR);
    thread_.join();
    close(listener_);
    for (int fd : held_) close(fd);
  }
  std::string url(const std::string &path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

 private:
  void serve() {
    while (!stopping_) {
      int client = accept(listener_, nullptr, nullptr);
      if (client < 0) return;
      std::string request;
      char buffer[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t got = read(client, buffer, sizeof buffer);
        if (got <= 0) break;
        request.append(buffer, static_cast<std::size_t>(got));
      }
      std::string path = request.substr(request.find(' ') + 1);
      path = path.substr(0, path.find(' '));
      if (path == "/slow") {
        held_.push_back(client);
        continue;
      }
      std::string status = "200", type = "application/json", body = R"({"ok": true})";
      if (path.rfind("/status/", 0) == 0) {
        status = path.substr(8);
        type = "text/plain";
        body = "status " + status;
      } else if (path == "/big") {
        type = "text/plain";
        body = std::string(100000, 'x');
      } else if (path == "/deep") {
        body = std::string(200000, '[') + std::string(200000, ']');
      } else if (path == "/nul") {
        body = R"({"a\u0000": "b\u0000c"})";
      }
      std::string response = "HTTP/1.1 " + status + " X\r\nContent-Type: " + type +
                             "\r\nContent-Length: " + std::to_string(body.size()) +
                             "\r\nConnection: close\r\n\r\n" + body;
      (void)!write(client, response.data(), response.size());
      close(client);
    }
  }

  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::vector<int> held_;
  std::thread thread_;
};

orch::TaskLaunch task(std::uint64_t id, const std::string &url, std::chrono::milliseconds timeout = 0ms) {
  orch::HttpRequest request;
  request.method = "GET";
  request.url = url;
  orch::TaskLaunch launch;
  launch.id = id;
  launch.kind = "http";
  launch.command = orch::http_command(request);
  launch.timeout = timeout;
  return launch;
}

// Waits as the scheduler does, until `count` attempts ended (or 10 s).
std::vector<orch::AttemptEnd> run(orch::HttpExecutor &executor, std::size_t count) {
  orch::SteadyClock clock;
  std::vector<orch::AttemptEnd> ended;
  auto give_up = clock.now() + 10s;
  while (ended.size() < count && clock.now() < give_up) {
    std::vector<pollfd> fds;
    for (const orch::Watch &watch : executor.descriptors())
      fds.push_back(pollfd{watch.fd, static_cast<short>(POLLIN | (watch.writable ? POLLOUT : 0)), 0});
    int timeout = 100;
    if (auto deadline = executor.next_deadline())
      timeout = static_cast<int>(std::max<long>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - clock.now()).count()));
    ::poll(fds.data(), fds.size(), std::min(timeout, 100));
    for (orch::AttemptEnd &end : executor.poll(clock.now())) ended.push_back(std::move(end));
  }
  return ended;
}

}  // namespace

TEST(HttpExecutor, AnExpectedStatusSucceedsWithItsOutput) {
  Server server;
  orch::HttpExecutor executor;
  orch::Launch launch = executor.launch(task(1, server.url("/json")), orch::SteadyClock().now());
  EXPECT_EQ(launch.status, orch::LaunchStatus::Running);
  EXPECT_EQ(launch.execution_name, "GET " + server.url("/json"));
  EXPECT_EQ(executor.running(), 1u);
  std::vector<orch::AttemptEnd> ended = run(executor, 1);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].ending, orch::Ending::Succeeded);
  EXPECT_EQ(ended[0].output, R"({"ok": true})");
  nlohmann::json output = nlohmann::json::parse(ended[0].output_data);
  EXPECT_EQ(output["status"], 200);
  EXPECT_EQ(output["body"], nlohmann::json::parse(R"({"ok": true})"));
  EXPECT_EQ(output["headers"]["content-type"], "application/json");
  EXPECT_EQ(executor.running(), 0u);
  EXPECT_TRUE(executor.descriptors().empty());
}

TEST(HttpExecutor, ServerErrorsAreRetryableOthersAreNot) {
  Server server;
  orch::HttpExecutor executor;
  executor.launch(task(1, server.url("/status/503")), orch::SteadyClock().now());
  executor.launch(task(2, server.url("/status/404")), orch::SteadyClock().now());
  executor.launch(task(3, server.url("/status/302")), orch::SteadyClock().now());
  std::vector<orch::AttemptEnd> ended = run(executor, 3);
  ASSERT_EQ(ended.size(), 3u);
  for (const orch::AttemptEnd &end : ended) {
    if (end.id == 1) {
      EXPECT_EQ(end.ending, orch::Ending::Failed);
      EXPECT_EQ(end.error, "HTTP status 503 (expected 2xx)");
    } else {
      EXPECT_EQ(end.ending, orch::Ending::Rejected) << end.id;
    }
    EXPECT_EQ(nlohmann::json::parse(end.output_data)["body"], "status " + end.output.substr(7));
  }
}

TEST(HttpExecutor, TimesOutStopsAndReportsRefusedConnections) {
  Server server;
  orch::HttpExecutor executor;
  auto begin = orch::SteadyClock().now();
  executor.launch(task(1, server.url("/slow"), 300ms), begin);
  executor.launch(task(2, server.url("/slow")), begin);
  executor.launch(task(3, "http://127.0.0.1:1/"), begin);
  std::vector<orch::AttemptEnd> first = run(executor, 2);
  ASSERT_EQ(first.size(), 2u);
  for (const orch::AttemptEnd &end : first) {
    if (end.id == 1) {
      EXPECT_EQ(end.ending, orch::Ending::TimedOut);
      EXPECT_EQ(end.error, "timed out after 300ms");
      EXPECT_GE(orch::SteadyClock().now() - begin, 300ms);
    } else {
      EXPECT_EQ(end.id, 3u);
      EXPECT_EQ(end.ending, orch::Ending::Failed);
      EXPECT_NE(end.error.find("connect to server"), std::string::npos) << end.error;  // curl 7: "Couldn't", 8: "Could not"
    }
  }
  EXPECT_EQ(executor.running(), 1u);
  executor.stop(2, orch::SteadyClock().now());
  std::vector<orch::AttemptEnd> stopped = executor.poll(orch::SteadyClock().now());
  ASSERT_EQ(stopped.size(), 1u);
  EXPECT_EQ(stopped[0].ending, orch::Ending::Stopped);
  EXPECT_EQ(executor.running(), 0u);
}

TEST(HttpExecutor, HostileJsonBodiesAreKeptAsText) {
  Server server;
  orch::HttpExecutor executor;
  executor.launch(task(1, server.url("/deep")), orch::SteadyClock().now());  // deeper than any input may be
  executor.launch(task(2, server.url("/nul")), orch::SteadyClock().now());   // NUL, which jsonb refuses
  std::vector<orch::AttemptEnd> ended = run(executor, 2);
  ASSERT_EQ(ended.size(), 2u);
  for (const orch::AttemptEnd &end : ended) {
    nlohmann::json output = nlohmann::json::parse(end.output_data);
    if (end.id == 1)
      EXPECT_TRUE(output["body"].is_string());
    else
      EXPECT_EQ(output["body"], nlohmann::json::parse(R"({"a\ufffd": "b\ufffdc"})"));
  }
}

TEST(HttpExecutor, KeepsTheBodysTailAndDropsABodyTooLargeForTheOutput) {
  Server server;
  orch::HttpExecutor executor;
  executor.set_limits(1000, 5000);
  executor.launch(task(1, server.url("/big")), orch::SteadyClock().now());
  std::vector<orch::AttemptEnd> ended = run(executor, 1);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].ending, orch::Ending::Succeeded);
  EXPECT_EQ(ended[0].output, std::string(1000, 'x'));
  EXPECT_TRUE(ended[0].output_truncated);
  nlohmann::json output = nlohmann::json::parse(ended[0].output_data);
  EXPECT_TRUE(output["body"].is_null());
  EXPECT_EQ(output["status"], 200);
}
