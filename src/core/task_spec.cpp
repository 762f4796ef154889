#include "core/task_spec.hpp"

#include <cmath>
#include <cstdint>
#include <set>
#include <unordered_map>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/fan_out.hpp"
#include "core/http_request.hpp"
#include "core/slurm_job.hpp"
#include "core/outputs.hpp"
#include "core/placeholders.hpp"
#include "core/interval.hpp"

namespace orch {
namespace {

using json = nlohmann::json;

bool has_nul(const std::string &s) { return s.find('\0') != std::string::npos; }

bool is_blank(const std::string &s) { return s.find_first_not_of(" \t\n\r\f\v") == std::string::npos; }

bool valid_task_name(const std::string &name) {
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-';
    if (!ok) return false;
  }
  return !name.empty();
}

bool valid_env_name(const std::string &name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

const std::set<std::string> &known_keys() {
  static const std::set<std::string> keys = {"name",        "command",       "shell",      "sql",
                                             "working_directory", "env",     "timeout",    "max_retries",
                                             "retry_delay", "retry_backoff", "depends_on", "for_each",
                                             "count",       "max_parallel",  "http",       "expect_status",
                                             "executor",    "slurm"};
  return keys;
}

// Validates one task object; errors are prefixed with `task N ("name")`.
class TaskParser {
 public:
  TaskParser(const json &object, std::size_t index) : object_(object) {
    prefix_ = "task " + std::to_string(index);
    const json *name = field("name");
    if (name && name->is_string()) {
      const std::string &n = name->get_ref<const std::string &>();
      if (valid_task_name(n) && n.size() <= kMaxTaskNameLength) prefix_ += " (\"" + n + "\")";
    }
  }

  const std::string &prefix() const { return prefix_; }

  // Parses everything but depends_on, which needs all names first.
  TaskSpec parse() {
    for (const auto &item : object_.items())
      if (!known_keys().count(item.key())) fail("unknown key " + quote(item.key()));
    TaskSpec spec;
    spec.name = parse_name();
    parse_kind(spec);
    // An sql task runs in a database session and an http task in the
    // scheduler, not a process: a directory or environment would be
    // silently ignored.
    if (spec.kind == TaskKind::Sql || spec.kind == TaskKind::Http)
      for (const char *key : {"working_directory", "env"})
        if (field(key))
          fail("\"" + std::string(key) + "\" is only for command and shell tasks, not " + task_kind_name(spec.kind) +
               " tasks");
    if (field("expect_status") && spec.kind != TaskKind::Http) fail("\"expect_status\" is only for http tasks");
    parse_executor(spec);
    if (const json *v = field("working_directory")) {
      if (!v->is_string()) fail("\"working_directory\" must be a string");
      spec.working_directory = v->get<std::string>();
      if (has_nul(spec.working_directory)) fail("\"working_directory\" must not contain NUL bytes");
      if (spec.working_directory.empty() || spec.working_directory[0] != '/')
        fail("\"working_directory\" must be an absolute path, not " + quote(spec.working_directory));
    }
    if (const json *v = field("env")) spec.env = parse_env(*v);
    if (const json *v = field("timeout")) {
      spec.timeout = parse_interval_field(*v, "timeout");
      if (spec.timeout.count() == 0) fail("\"timeout\" must be greater than zero (leave it out for no timeout)");
    }
    if (const json *v = field("max_retries")) spec.max_retries = parse_max_retries(*v);
    if (const json *v = field("retry_delay")) spec.retry_delay = parse_interval_field(*v, "retry_delay");
    if (const json *v = field("retry_backoff")) {
      double b = v->is_number() ? v->get<double>() : 0.0;
      if (!(b >= 1.0 && b <= kMaxRetryBackoff)) fail("\"retry_backoff\" must be a number from 1 to 10");
      spec.retry_backoff = b;
    }
    parse_fan_out(spec);
    return spec;
  }

  // The depends_on array (checked to hold only strings), or null when absent.
  const json *depends_on() const {
    const json *v = field("depends_on");
    if (v && !v->is_array()) fail("\"depends_on\" must be an array of task names");
    if (v)
      for (const json &e : *v)
        if (!e.is_string()) fail("\"depends_on\" must be an array of task names");
    return v;
  }

  [[noreturn]] void fail(const std::string &message) const { throw InvalidInput(prefix_ + ": " + message); }

 private:
  // A key whose value is null counts as absent.
  const json *field(const char *key) const {
    auto it = object_.find(key);
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  std::string parse_name() const {
    const json *v = field("name");
    if (!v) fail("\"name\" is required");
    if (!v->is_string()) fail("\"name\" must be a string");
    const std::string &name = v->get_ref<const std::string &>();
    if (name.empty()) fail("\"name\" must not be empty");
    if (name.size() > kMaxTaskNameLength) fail("\"name\" must be at most 63 characters long");
    if (!valid_task_name(name))
      fail("\"name\" " + quote(name) + " may only contain letters, digits, \"_\", \".\" and \"-\"");
    return name;
  }

  void parse_kind(TaskSpec &spec) const {
    std::vector<std::string> present;
    for (const char *k : {"command", "shell", "sql", "http"})
      if (field(k)) present.emplace_back(k);
    if (present.empty()) fail("one of \"command\", \"shell\", \"sql\" or \"http\" is required");
    if (present.size() > 1) fail("\"" + present[0] + "\" and \"" + present[1] + "\" cannot both be set");

    if (const json *v = field("command")) {
      spec.kind = TaskKind::Command;
      if (!v->is_array() || v->empty()) fail("\"command\" must be a non-empty array of strings");
      for (const json &arg : *v) {
        if (!arg.is_string()) fail("\"command\" must be a non-empty array of strings");
        spec.command.push_back(arg.get<std::string>());
        if (has_nul(spec.command.back())) fail("\"command\" must not contain NUL bytes");
      }
      if (spec.command[0].empty()) fail("\"command\" must start with a non-empty program name");
    } else if (const json *http = field("http")) {
      spec.kind = TaskKind::Http;
      try {
        spec.command = http_command(parse_http_request(*http, field("expect_status")));
      } catch (const InvalidInput &e) {
        fail(e.what());
      }
    } else {
      const char *key = field("shell") ? "shell" : "sql";
      spec.kind = field("shell") ? TaskKind::Shell : TaskKind::Sql;
      const json *value = field(key);
      if (!value->is_string() || is_blank(value->get_ref<const std::string &>()))
        fail("\"" + std::string(key) + "\" must be a non-empty string");
      std::string text = value->get<std::string>();
      if (has_nul(text)) fail("\"" + std::string(key) + "\" must not contain NUL bytes");
      (spec.kind == TaskKind::Shell ? spec.shell : spec.sql) = std::move(text);
    }
  }

  void parse_fan_out(TaskSpec &spec) const {
    const json *for_each = field("for_each");
    const json *count = field("count");
    if (for_each && count) fail("\"for_each\" and \"count\" cannot both be set");
    if ((for_each || count) && spec.kind == TaskKind::Sql)
      fail("\"for_each\" and \"count\" are only for command and shell tasks");
    if (for_each) {
      FanOut fan_out;
      std::string key;
      if (for_each->is_array())
        fan_out.items_json = for_each->dump();
      else if (for_each->is_string() && (key = sole_placeholder(for_each->get_ref<const std::string &>())) != "")
        fan_out.items_key = key;
      else
        fail("\"for_each\" must be an array, or one placeholder naming one such as \"{{files}}\" or "
             "\"{{tasks.list.output.files}}\"");
      spec.fan_out = fan_out;
    }
    if (count) {
      double d = count->is_number() ? count->get<double>() : -1;
      if (!(d >= 0 && d <= kMaxFanOutCount) || d != std::floor(d))
        fail("\"count\" must be an integer from 0 to " + std::to_string(kMaxFanOutCount));
      FanOut fan_out;
      fan_out.count = static_cast<int>(d);
      spec.fan_out = fan_out;
    }
    if (const json *v = field("max_parallel")) {
      if (!spec.fan_out) fail("\"max_parallel\" is only for tasks with \"for_each\" or \"count\"");
      double d = v->is_number() ? v->get<double>() : 0;
      if (!(d >= 1 && d <= kMaxParallel) || d != std::floor(d))
        fail("\"max_parallel\" must be an integer from 1 to " + std::to_string(kMaxParallel));
      spec.max_parallel = static_cast<int>(d);
    }
    if (!spec.fan_out)
      for (const std::string &arg : spec.command)
        (void)replace_placeholders(arg, [&](const std::string &key) -> std::optional<std::string> {
          if (is_item_key(key)) fail("placeholder {{" + key + "}} is only for tasks with \"for_each\" or \"count\"");
          return std::nullopt;
        });
  }

  // "executor": "local" (the default) or "slurm" (command and shell tasks),
  // with "slurm": {...} options.
  void parse_executor(TaskSpec &spec) const {
    const json *executor = field("executor");
    if (executor && (!executor->is_string() || (*executor != "local" && *executor != "slurm")))
      fail("\"executor\" must be \"local\" or \"slurm\"");
    bool slurm = executor && *executor == "slurm";
    if (slurm && spec.kind != TaskKind::Command && spec.kind != TaskKind::Shell)
      fail("\"executor\": \"slurm\" is only for command and shell tasks");
    const json *options = field("slurm");
    if (options && !slurm) fail("\"slurm\" is only for tasks with \"executor\": \"slurm\"");
    if (!slurm) return;
    try {
      spec.slurm_json = options ? parse_slurm_options(*options).dump() : "{}";
    } catch (const InvalidInput &e) {
      fail(e.what());
    }
  }

  // The key of `text` when it is exactly one {{key}} placeholder, else "".
  static std::string sole_placeholder(const std::string &text) {
    std::string key;
    int found = 0;
    std::string rest = replace_placeholders(text, [&](const std::string &k) -> std::optional<std::string> {
      key = k;
      ++found;
      return std::string();
    });
    return rest.empty() && found == 1 ? key : "";
  }

  std::map<std::string, std::string> parse_env(const json &v) const {
    if (!v.is_object()) fail("\"env\" must be an object mapping names to strings");
    std::map<std::string, std::string> env;
    for (const auto &item : v.items()) {
      const std::string &key = item.key();
      if (!valid_env_name(key)) fail("\"env\" key " + quote(key) + " is not a valid environment variable name");
      if (key.compare(0, 5, "ORCH_") == 0)
        fail("\"env\" key " + quote(key) + " is reserved (names starting with ORCH_ are set by pg_orch)");
      if (!item.value().is_string()) fail("\"env\" value for " + quote(key) + " must be a string");
      const std::string &value = item.value().get_ref<const std::string &>();
      if (has_nul(value)) fail("\"env\" value for " + quote(key) + " must not contain NUL bytes");
      env.emplace(key, value);
    }
    return env;
  }

  // An interval string, or a JSON number of seconds; never negative.
  std::chrono::milliseconds parse_interval_field(const json &v, const char *key) const {
    std::string k = std::string("\"") + key + "\"";
    if (v.is_string()) {
      try {
        return parse_interval(v.get<std::string>());
      } catch (const InvalidInput &e) {
        fail(k + ": " + e.what());
      }
    }
    if (!v.is_number()) fail(k + " must be an interval string or a number of seconds");
    double seconds = v.get<double>();
    if (seconds < 0) fail(k + " must not be negative");
    double ms = std::round(seconds * 1000.0);
    if (!(ms <= static_cast<double>(kMaxInterval.count()))) fail(k + " is out of range (at most 100 years)");
    return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
  }

  int parse_max_retries(const json &v) const {
    const char *message = "\"max_retries\" must be an integer from 0 to 100";
    if (!v.is_number()) fail(message);
    double d = v.get<double>();
    if (!(d >= 0 && d <= kMaxRetries) || d != std::floor(d)) fail(message);
    return static_cast<int>(d);
  }

  const json &object_;
  std::string prefix_;
};

// Throws when the dependency graph has a cycle, showing it by task names.
void check_acyclic(const std::vector<TaskSpec> &tasks) {
  enum Color : unsigned char { White, Grey, Black };
  std::vector<Color> color(tasks.size(), White);
  std::vector<std::pair<std::size_t, std::size_t>> stack;  // (task, next edge)
  for (std::size_t root = 0; root < tasks.size(); ++root) {
    if (color[root] != White) continue;
    stack.emplace_back(root, 0);
    color[root] = Grey;
    while (!stack.empty()) {
      auto &[node, edge] = stack.back();
      if (edge == tasks[node].depends_on.size()) {
        color[node] = Black;
        stack.pop_back();
        continue;
      }
      std::size_t next = tasks[node].depends_on[edge++];
      if (color[next] == White) {
        color[next] = Grey;
        stack.emplace_back(next, 0);
      } else if (color[next] == Grey) {
        std::string path;
        bool on_cycle = false;
        for (const auto &frame : stack) {
          on_cycle = on_cycle || frame.first == next;
          if (on_cycle) path += tasks[frame.first].name + " -> ";
        }
        throw InvalidInput("tasks form a cycle: " + path + tasks[next].name);
      }
    }
  }
}

// Every {{tasks.NAME.output...}} of a command names an ancestor: a task it
// depends on, directly or through others, so that the output exists when
// the command becomes ready.
void check_output_references(const json &root, const std::vector<TaskSpec> &tasks) {
  std::vector<std::string> names;
  for (const TaskSpec &task : tasks) names.push_back(task.name);
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    if (tasks[i].kind == TaskKind::Sql) continue;
    TaskParser parser(root[i], i);
    std::vector<std::string> uses = tasks[i].command;
    if (tasks[i].fan_out && !tasks[i].fan_out->items_key.empty())
      uses.push_back("{{" + tasks[i].fan_out->items_key + "}}");
    std::vector<OutputReference> references;
    try {
      references = output_references(uses, names);
    } catch (const InvalidInput &e) {
      parser.fail(e.what());
    }
    if (references.empty()) continue;
    std::vector<bool> ancestor(tasks.size(), false);
    std::vector<std::size_t> stack(tasks[i].depends_on.begin(), tasks[i].depends_on.end());
    while (!stack.empty()) {
      std::size_t next = stack.back();
      stack.pop_back();
      if (ancestor[next]) continue;
      ancestor[next] = true;
      stack.insert(stack.end(), tasks[next].depends_on.begin(), tasks[next].depends_on.end());
    }
    for (const OutputReference &reference : references) {
      std::size_t named = 0;
      while (tasks[named].name != reference.task) ++named;
      std::string key = "tasks." + reference.task + ".output";
      for (const std::string &element : reference.path) key += "." + element;
      if (!ancestor[named])
        parser.fail("placeholder {{" + key + "}} uses the output of " + quote(reference.task) +
                    ", which it does not depend on (through \"depends_on\")");
    }
  }
}

// nlohmann's messages start with "[json.exception.parse_error.101] " and may
// quote raw input bytes; keep the useful part, printable ASCII only.
std::string json_error_text(const std::exception &e) {
  std::string text = e.what();
  if (!text.empty() && text[0] == '[') {
    std::size_t end = text.find("] ");
    if (end != std::string::npos) text.erase(0, end + 2);
  }
  for (char &c : text)
    if (c < 0x20 || c > 0x7e) c = '?';
  return text;
}

}  // namespace

bool ProcessTypeSpec::runs_os_commands() const {
  for (const TaskSpec &t : tasks)
    if (t.kind == TaskKind::Command || t.kind == TaskKind::Shell) return true;
  return false;
}

std::string task_kind_name(TaskKind kind) {
  switch (kind) {
    case TaskKind::Command:
      return "command";
    case TaskKind::Shell:
      return "shell";
    case TaskKind::Sql:
      return "sql";
    case TaskKind::Http:
      return "http";
  }
  return "unknown";
}

ProcessTypeSpec parse_process_type(const std::string &tasks_json) {
  if (has_nul(tasks_json)) throw InvalidInput("tasks must not contain NUL bytes");
  json root;
  try {
    root = json::parse(tasks_json);
  } catch (const json::exception &e) {
    throw InvalidInput("tasks are not valid JSON: " + json_error_text(e));
  }
  if (!root.is_array()) throw InvalidInput("tasks must be a JSON array of task objects");
  if (root.empty()) throw InvalidInput("tasks must not be empty");
  if (root.size() > kMaxTasks)
    throw InvalidInput("too many tasks: " + std::to_string(root.size()) + " (at most 1000)");

  ProcessTypeSpec result;
  std::unordered_map<std::string, std::size_t> by_name;
  for (std::size_t i = 0; i < root.size(); ++i) {
    if (!root[i].is_object()) throw InvalidInput("task " + std::to_string(i) + ": must be a JSON object");
    TaskParser parser(root[i], i);
    TaskSpec spec = parser.parse();
    auto [it, inserted] = by_name.emplace(spec.name, i);
    if (!inserted) parser.fail("name " + quote(spec.name) + " is already used by task " + std::to_string(it->second));
    result.tasks.push_back(std::move(spec));
  }

  bool explicit_graph = false;
  for (std::size_t i = 0; i < root.size(); ++i) {
    TaskParser parser(root[i], i);
    const json *deps = parser.depends_on();
    if (!deps) continue;
    explicit_graph = true;
    std::vector<std::size_t> &out = result.tasks[i].depends_on;
    std::vector<bool> seen(root.size(), false);
    for (const json &d : *deps) {
      const std::string &name = d.get_ref<const std::string &>();
      auto found = by_name.find(name);
      if (found == by_name.end()) parser.fail("\"depends_on\" names unknown task " + quote(name));
      if (found->second == i) parser.fail("\"depends_on\" names the task itself");
      if (seen[found->second]) parser.fail("\"depends_on\" names " + quote(name) + " twice");
      seen[found->second] = true;
      out.push_back(found->second);
    }
  }
  if (explicit_graph) {
    check_acyclic(result.tasks);
  } else {
    for (std::size_t i = 1; i < result.tasks.size(); ++i) result.tasks[i].depends_on.push_back(i - 1);
  }
  check_output_references(root, result.tasks);
  return result;
}

}  // namespace orch
