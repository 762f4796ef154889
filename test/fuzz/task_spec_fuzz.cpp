// Fuzzes task spec validation (raw JSON text, and JSON built from the input
// so that deep paths are reached) and interval parsing. Accepted specs are
// checked against the promises of parse_process_type.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/http_request.hpp"
#include "core/interval.hpp"
#include "core/retry_backoff.hpp"
#include "core/task_spec.hpp"

namespace {

using json = nlohmann::json;

void check(bool ok, const char *what) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

void check_spec(const orch::ProcessTypeSpec &spec) {
  const auto &tasks = spec.tasks;
  check(!tasks.empty() && tasks.size() <= orch::kMaxTasks, "task count");
  std::vector<int> pending(tasks.size(), 0);
  std::vector<std::vector<std::size_t>> dependents(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const orch::TaskSpec &t = tasks[i];
    check(!t.name.empty() && t.name.size() <= orch::kMaxTaskNameLength, "name length");
    for (std::size_t j = 0; j < i; ++j) check(tasks[j].name != t.name, "unique names");
    switch (t.kind) {
      case orch::TaskKind::Command:
        check(!t.command.empty() && !t.command[0].empty() && t.shell.empty() && t.sql.empty(), "command kind");
        break;
      case orch::TaskKind::Shell:
        check(t.command.empty() && !t.shell.empty() && t.sql.empty(), "shell kind");
        break;
      case orch::TaskKind::Sql:
        check(t.command.empty() && t.shell.empty() && !t.sql.empty(), "sql kind");
        break;
      case orch::TaskKind::Http: {
        check(t.shell.empty() && t.sql.empty() && t.env.empty() && t.working_directory.empty(), "http kind");
        orch::HttpRequest request = orch::http_request_of(t.command);  // throws (and the fuzzer stops) if not
        check(request.url.rfind("http://", 0) == 0 || request.url.rfind("https://", 0) == 0, "http scheme");
        check(orch::http_host(request.url).find('{') == std::string::npos, "literal host");
        check(!orch::has_dot_segment(request.url), "no dot segments");
        break;
      }
    }
    check(t.slurm_json.empty() || t.kind == orch::TaskKind::Command || t.kind == orch::TaskKind::Shell,
          "slurm only for commands");
    check(t.working_directory.empty() || t.working_directory[0] == '/', "absolute directory");
    for (const auto &[k, v] : t.env) check(k.rfind("ORCH_", 0) != 0, "ORCH_ reserved");
    check(t.timeout.count() >= 0 && t.timeout <= orch::kMaxInterval, "timeout range");
    check(t.retry_delay.count() >= 0 && t.retry_delay <= orch::kMaxInterval, "retry_delay range");
    check(t.max_retries >= 0 && t.max_retries <= orch::kMaxRetries, "max_retries range");
    check(t.retry_backoff >= 1.0 && t.retry_backoff <= orch::kMaxRetryBackoff, "backoff range");
    for (int attempt = 1; attempt <= t.max_retries + 1; ++attempt) {
      auto d = orch::retry_delay_for(t, attempt);
      check(d >= t.retry_delay && d <= std::max(t.retry_delay, orch::kMaxBackoffDelay), "retry delay bounds");
    }
    for (std::size_t d : t.depends_on) {
      check(d < tasks.size() && d != i, "dependency index");
      ++pending[i];
      dependents[d].push_back(i);
    }
  }
  // Kahn's algorithm must consume every task: the graph is acyclic.
  std::vector<std::size_t> ready;
  for (std::size_t i = 0; i < tasks.size(); ++i)
    if (pending[i] == 0) ready.push_back(i);
  std::size_t done = 0;
  while (!ready.empty()) {
    std::size_t n = ready.back();
    ready.pop_back();
    ++done;
    for (std::size_t m : dependents[n])
      if (--pending[m] == 0) ready.push_back(m);
  }
  check(done == tasks.size(), "acyclic");
}

json random_value(FuzzedDataProvider &in, int depth);

std::string random_string(FuzzedDataProvider &in) {
  static const std::string kPool[] = {"a",      "b",    "c",    "d",  "e", "5s", "1h30m",    "00:10:00",
                                      "-1 s",   "0",    "/tmp", "tmp", "ORCH_X", "PATH", "1X", "",
                                      " ",      "select 1", "{{a}}", std::string("x\0y", 3),
                                      "http://a.com/{{a}}", "https://[::1]:8080/x?y={{b}}", "http://{{a}}/",
                                      "http://a@b/", "slurm", "local", "POST"};
  if (in.ConsumeBool()) return kPool[in.ConsumeIntegralInRange<std::size_t>(0, std::size(kPool) - 1)];
  return in.ConsumeRandomLengthString(24);
}

json random_value(FuzzedDataProvider &in, int depth) {
  switch (in.ConsumeIntegralInRange(0, depth > 3 ? 5 : 7)) {
    case 0:
      return nullptr;
    case 1:
      return in.ConsumeBool();
    case 2:
      return in.ConsumeIntegralInRange<std::int64_t>(-5, 200);
    case 3:
      return in.ConsumeFloatingPoint<double>();
    case 4:
      return in.ConsumeIntegral<std::int64_t>();
    case 5:
      return random_string(in);
    case 6: {
      json a = json::array();
      for (int i = in.ConsumeIntegralInRange(0, 4); i > 0; --i) a.push_back(random_value(in, depth + 1));
      return a;
    }
    default: {
      json o = json::object();
      for (int i = in.ConsumeIntegralInRange(0, 4); i > 0; --i) o[random_string(in)] = random_value(in, depth + 1);
      return o;
    }
  }
}

std::string structured(FuzzedDataProvider &in) {
  static const char *const kKeys[] = {"name",        "command",     "shell",         "sql",
                                      "working_directory", "env", "timeout",       "max_retries",
                                      "retry_delay", "retry_backoff", "depends_on",  "comand",
                                      "http",        "expect_status", "executor",    "slurm"};
  json tasks = json::array();
  for (int n = in.ConsumeIntegralInRange(1, 8); n > 0; --n) {
    json task = json::object();
    // Mostly well-formed tasks, so later checks are reached.
    if (in.ConsumeIntegralInRange(0, 9) > 0) task["name"] = std::string(1, static_cast<char>('a' + n - 1));
    if (in.ConsumeIntegralInRange(0, 9) > 0) task["sql"] = "select 1";
    for (int k = in.ConsumeIntegralInRange(0, 5); k > 0; --k) {
      const char *key = kKeys[in.ConsumeIntegralInRange<std::size_t>(0, std::size(kKeys) - 1)];
      if (std::string(key) == "depends_on" && in.ConsumeBool()) {
        json deps = json::array();
        for (int d = in.ConsumeIntegralInRange(0, 3); d > 0; --d)
          deps.push_back(std::string(1, static_cast<char>('a' + in.ConsumeIntegralInRange(0, 8))));
        task[key] = deps;
      } else if (std::string(key) == "http" && in.ConsumeBool()) {
        task.erase("sql");
        task[key] = {{"url", random_string(in)}, {"headers", {{random_string(in), random_string(in)}}},
                     {"body", random_value(in, 1)}};
      } else if (std::string(key) == "command" && in.ConsumeBool()) {
        task.erase("sql");
        task[key] = json::array({random_string(in), random_string(in)});
      } else {
        task[key] = random_value(in, 0);
      }
    }
    tasks.push_back(task);
  }
  return tasks.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FuzzedDataProvider in(data, size);
  switch (in.ConsumeIntegralInRange(0, 2)) {
    case 0: {
      std::string text = in.ConsumeRemainingBytesAsString();
      try {
        std::chrono::milliseconds ms = orch::parse_interval(text);
        check(ms.count() >= 0 && ms <= orch::kMaxInterval, "interval range");
        check(orch::parse_interval(orch::format_interval(ms)) == ms, "interval round trip");
      } catch (const orch::InvalidInput &) {
      }
      return 0;
    }
    case 1: {
      std::string text = in.ConsumeRemainingBytesAsString();
      try {
        check_spec(orch::parse_process_type(text));
      } catch (const orch::InvalidInput &) {
      }
      return 0;
    }
    default: {
      std::string text = structured(in);
      try {
        check_spec(orch::parse_process_type(text));
      } catch (const orch::InvalidInput &) {
      }
      return 0;
    }
  }
}
