#include "core/task_spec.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.hpp"

namespace orch {
namespace {

using std::chrono::milliseconds;
using Deps = std::vector<std::size_t>;

std::string error_of(const std::string &json) {
  try {
    parse_process_type(json);
  } catch (const InvalidInput &e) {
    return e.what();
  }
  return "no error";
}

// One task named "a" with the given extra members, e.g. R"("timeout": 5)".
std::string one(const std::string &members) { return R"([{"name": "a", )" + members + "}]"; }

TEST(TaskSpec, MinimalCommandTaskHasDefaults) {
  ProcessTypeSpec p = parse_process_type(R"([{"name": "a", "command": ["/bin/true"]}])");
  ASSERT_EQ(p.tasks.size(), 1u);
  const TaskSpec &t = p.tasks[0];
  EXPECT_EQ(t.name, "a");
  EXPECT_EQ(t.kind, TaskKind::Command);
  EXPECT_EQ(t.command, std::vector<std::string>{"/bin/true"});
  EXPECT_EQ(t.shell, "");
  EXPECT_EQ(t.sql, "");
  EXPECT_EQ(t.working_directory, "");
  EXPECT_TRUE(t.env.empty());
  EXPECT_EQ(t.timeout, milliseconds(0));
  EXPECT_EQ(t.max_retries, 0);
  EXPECT_EQ(t.retry_delay, milliseconds(0));
  EXPECT_EQ(t.retry_backoff, 1.0);
  EXPECT_TRUE(t.depends_on.empty());
  EXPECT_TRUE(p.runs_os_commands());
}

TEST(TaskSpec, DesignExampleParsesEveryField) {
  ProcessTypeSpec p = parse_process_type(R"([
    {"name": "fetch", "shell": "curl -o in.json \"$ORCH_INPUT_URL\""},
    {"name": "extract",
     "command": ["/usr/bin/python3", "extract.py", "--in", "{{input_file}}"],
     "working_directory": "/srv/jobs", "env": {"MODE": "fast", "_x1": ""},
     "timeout": "10 minutes", "max_retries": 3, "retry_delay": "5 seconds",
     "retry_backoff": 2.5, "depends_on": ["fetch"]},
    {"name": "record.v2-final", "sql": "insert into t select $1", "depends_on": ["extract", "fetch"]}])");
  ASSERT_EQ(p.tasks.size(), 3u);
  const TaskSpec &f = p.tasks[0], &e = p.tasks[1], &r = p.tasks[2];
  EXPECT_EQ(f.kind, TaskKind::Shell);
  EXPECT_EQ(f.shell, "curl -o in.json \"$ORCH_INPUT_URL\"");
  EXPECT_EQ(f.depends_on, Deps{});
  EXPECT_EQ(e.kind, TaskKind::Command);
  EXPECT_EQ(e.command, (std::vector<std::string>{"/usr/bin/python3", "extract.py", "--in", "{{input_file}}"}));
  EXPECT_EQ(e.working_directory, "/srv/jobs");
  EXPECT_EQ(e.env, (std::map<std::string, std::string>{{"MODE", "fast"}, {"_x1", ""}}));
  EXPECT_EQ(e.timeout, milliseconds(600000));
  EXPECT_EQ(e.max_retries, 3);
  EXPECT_EQ(e.retry_delay, milliseconds(5000));
  EXPECT_EQ(e.retry_backoff, 2.5);
  EXPECT_EQ(e.depends_on, Deps{0});
  EXPECT_EQ(r.name, "record.v2-final");
  EXPECT_EQ(r.kind, TaskKind::Sql);
  EXPECT_EQ(r.sql, "insert into t select $1");
  EXPECT_EQ(r.depends_on, (Deps{1, 0}));  // as written
}

TEST(TaskSpec, KindNames) {
  EXPECT_EQ(task_kind_name(TaskKind::Command), "command");
  EXPECT_EQ(task_kind_name(TaskKind::Shell), "shell");
  EXPECT_EQ(task_kind_name(TaskKind::Sql), "sql");
}

TEST(TaskSpec, RunsOsCommands) {
  EXPECT_FALSE(parse_process_type(R"([{"name": "a", "sql": "select 1"}, {"name": "b", "sql": "select 2"}])")
                   .runs_os_commands());
  EXPECT_TRUE(parse_process_type(R"([{"name": "a", "sql": "select 1"}, {"name": "b", "shell": "true"}])")
                  .runs_os_commands());
  EXPECT_TRUE(parse_process_type(R"([{"name": "a", "sql": "select 1"}, {"name": "b", "command": ["true"]}])")
                  .runs_os_commands());
  EXPECT_FALSE(ProcessTypeSpec{}.runs_os_commands());
}

TEST(TaskSpec, WithoutDependsOnTasksRunInArrayOrder) {
  ProcessTypeSpec p = parse_process_type(
      R"([{"name": "a", "sql": "select 1"}, {"name": "b", "sql": "select 2"}, {"name": "c", "sql": "select 3"}])");
  EXPECT_EQ(p.tasks[0].depends_on, Deps{});
  EXPECT_EQ(p.tasks[1].depends_on, Deps{0});
  EXPECT_EQ(p.tasks[2].depends_on, Deps{1});
}

TEST(TaskSpec, AnyDependsOnMakesTheGraphExplicit) {
  ProcessTypeSpec p = parse_process_type(R"([{"name": "a", "sql": "select 1"}, {"name": "b", "sql": "select 2"},
      {"name": "c", "sql": "select 3", "depends_on": ["a"]}])");
  EXPECT_EQ(p.tasks[0].depends_on, Deps{});
  EXPECT_EQ(p.tasks[1].depends_on, Deps{});  // a root, not after a
  EXPECT_EQ(p.tasks[2].depends_on, Deps{0});

  // Empty lists everywhere: all parallel.
  p = parse_process_type(R"([{"name": "a", "sql": "select 1", "depends_on": []},
      {"name": "b", "sql": "select 2", "depends_on": []}])");
  EXPECT_EQ(p.tasks[1].depends_on, Deps{});

  // A null depends_on is absent, so the array order applies.
  p = parse_process_type(R"([{"name": "a", "sql": "select 1"}, {"name": "b", "sql": "select 2", "depends_on": null}])");
  EXPECT_EQ(p.tasks[1].depends_on, Deps{0});
}

TEST(TaskSpec, DependencyMayComeLaterInTheArray) {
  ProcessTypeSpec p = parse_process_type(R"([{"name": "d", "sql": "x", "depends_on": ["b", "c"]},
      {"name": "b", "sql": "x", "depends_on": ["a"]}, {"name": "c", "sql": "x", "depends_on": ["a"]},
      {"name": "a", "sql": "x"}])");
  EXPECT_EQ(p.tasks[0].depends_on, (Deps{1, 2}));
  EXPECT_EQ(p.tasks[1].depends_on, Deps{3});
  EXPECT_EQ(p.tasks[2].depends_on, Deps{3});
  EXPECT_EQ(p.tasks[3].depends_on, Deps{});
}

TEST(TaskSpec, IntervalsAsStringsOrSeconds) {
  EXPECT_EQ(parse_process_type(one(R"("sql": "x", "timeout": 30)")).tasks[0].timeout, milliseconds(30000));
  EXPECT_EQ(parse_process_type(one(R"("sql": "x", "timeout": 1.5)")).tasks[0].timeout, milliseconds(1500));
  EXPECT_EQ(parse_process_type(one(R"("sql": "x", "timeout": "00:00:02")")).tasks[0].timeout, milliseconds(2000));
  EXPECT_EQ(parse_process_type(one(R"("sql": "x", "retry_delay": 0)")).tasks[0].retry_delay, milliseconds(0));
  EXPECT_EQ(parse_process_type(one(R"("sql": "x", "retry_delay": "0s")")).tasks[0].retry_delay, milliseconds(0));
  EXPECT_EQ(parse_process_type(one(R"("sql": "x", "retry_delay": "1m")")).tasks[0].retry_delay, milliseconds(60000));
  EXPECT_EQ(parse_process_type(one(R"("sql": "x", "timeout": null)")).tasks[0].timeout, milliseconds(0));
}

TEST(TaskSpec, RetrySettingsBounds) {
  EXPECT_EQ(parse_process_type(one(R"("sql": "x", "max_retries": 0)")).tasks[0].max_retries, 0);
  EXPECT_EQ(parse_process_type(one(R"("sql": "x", "max_retries": 100)")).tasks[0].max_retries, 100);
  EXPECT_EQ(parse_process_type(one(R"("sql": "x", "max_retries": 3.0)")).tasks[0].max_retries, 3);
  EXPECT_EQ(parse_process_type(one(R"("sql": "x", "retry_backoff": 1)")).tasks[0].retry_backoff, 1.0);
  EXPECT_EQ(parse_process_type(one(R"("sql": "x", "retry_backoff": 10)")).tasks[0].retry_backoff, 10.0);
  const std::string retries = "task 0 (\"a\"): \"max_retries\" must be an integer from 0 to 100";
  for (const char *bad : {"101", "-1", "1.5", "\"3\"", "true", "[]", "1e10"})
    EXPECT_EQ(error_of(one(std::string(R"("sql": "x", "max_retries": )") + bad)), retries) << bad;
  const std::string backoff = "task 0 (\"a\"): \"retry_backoff\" must be a number from 1 to 10";
  for (const char *bad : {"0.5", "0", "-2", "10.01", "\"2\"", "false", "{}"})
    EXPECT_EQ(error_of(one(std::string(R"("sql": "x", "retry_backoff": )") + bad)), backoff) << bad;
}

TEST(TaskSpec, TopLevelErrors) {
  EXPECT_EQ(error_of("{}"), "tasks must be a JSON array of task objects");
  EXPECT_EQ(error_of("\"a\""), "tasks must be a JSON array of task objects");
  EXPECT_EQ(error_of("[]"), "tasks must not be empty");
  EXPECT_EQ(error_of("[1]"), "task 0: must be a JSON object");
  EXPECT_EQ(error_of(R"([{"name": "a", "sql": "x"}, ["b"]])"), "task 1: must be a JSON object");
  EXPECT_EQ(error_of(std::string("[{\"name\": \"a\", \"sql\": \"x") + '\0' + "\"}]"), "tasks must not contain NUL bytes");
  EXPECT_EQ(error_of("[{\"name\": \"a\""),
            "tasks are not valid JSON: parse error at line 1, column 14: syntax error while parsing object - "
            "unexpected end of input; expected '}'");
  // The rest of the message is nlohmann's own, worded anew in 3.11.3 (Debian 13).
  EXPECT_EQ(error_of("").rfind("tasks are not valid JSON: parse error at line 1, column 1: ", 0), 0u) << error_of("");
  EXPECT_EQ(error_of("[\"\xff\"]").rfind("tasks are not valid JSON: parse error at line 1, column 3: ", 0), 0u)
      << error_of("[\"\xff\"]");
}

TEST(TaskSpec, TaskCountLimit) {
  auto tasks = [](int n) {
    std::string json = "[";
    for (int i = 0; i < n; ++i) json += (i ? "," : "") + std::string(R"({"name": "t)") + std::to_string(i) + R"(", "sql": "x"})";
    return json + "]";
  };
  ProcessTypeSpec p = parse_process_type(tasks(1000));
  EXPECT_EQ(p.tasks.size(), 1000u);
  EXPECT_EQ(p.tasks[999].depends_on, Deps{998});
  EXPECT_EQ(error_of(tasks(1001)), "too many tasks: 1001 (at most 1000)");
}

TEST(TaskSpec, NameErrors) {
  EXPECT_EQ(error_of(R"([{"command": ["x"]}])"), "task 0: \"name\" is required");
  EXPECT_EQ(error_of(R"([{"name": null, "command": ["x"]}])"), "task 0: \"name\" is required");
  EXPECT_EQ(error_of(R"([{"name": 5, "command": ["x"]}])"), "task 0: \"name\" must be a string");
  EXPECT_EQ(error_of(R"([{"name": "", "command": ["x"]}])"), "task 0: \"name\" must not be empty");
  EXPECT_EQ(error_of(R"([{"name": "a b", "command": ["x"]}])"),
            R"(task 0: "name" "a b" may only contain letters, digits, "_", "." and "-")");
  EXPECT_EQ(error_of(R"([{"name": "a\"b", "command": ["x"]}])"),
            R"(task 0: "name" "a\"b" may only contain letters, digits, "_", "." and "-")");
  EXPECT_EQ(error_of(R"([{"name": "é", "command": ["x"]}])"),
            R"(task 0: "name" "é" may only contain letters, digits, "_", "." and "-")");
  std::string n63(63, 'n');
  EXPECT_EQ(parse_process_type(R"([{"name": ")" + n63 + R"(", "sql": "x"}])").tasks[0].name, n63);
  EXPECT_EQ(error_of(R"([{"name": ")" + n63 + R"(n", "sql": "x"}])"),
            "task 0: \"name\" must be at most 63 characters long");
  EXPECT_EQ(error_of(R"([{"name": "a", "sql": "x"}, {"name": "b", "sql": "x"}, {"name": "a", "sql": "y"}])"),
            "task 2 (\"a\"): name \"a\" is already used by task 0");
}

TEST(TaskSpec, UnknownKeysComeFirstAndAreNamed) {
  EXPECT_EQ(error_of(R"([{"name": "a", "sql": "x"}, {"name": "b", "comand": ["x"]}])"),
            "task 1 (\"b\"): unknown key \"comand\"");
  EXPECT_EQ(error_of(R"([{"nmae": "b", "command": ["x"]}])"), "task 0: unknown key \"nmae\"");
  EXPECT_EQ(error_of(R"([{"name": "b", "command": ["x"], "Timeout": 5}])"), "task 0 (\"b\"): unknown key \"Timeout\"");
  EXPECT_EQ(error_of(R"([{"name": "b", "command": ["x"], "a\nb": 5}])"), "task 0 (\"b\"): unknown key \"a\\nb\"");
}

TEST(TaskSpec, KindErrors) {
  EXPECT_EQ(error_of(R"([{"name": "a"}])"), R"(task 0 ("a"): one of "command", "shell", "sql" or "http" is required)");
  EXPECT_EQ(error_of(R"([{"name": "a", "shell": null}])"),
            R"(task 0 ("a"): one of "command", "shell", "sql" or "http" is required)");
  EXPECT_EQ(error_of(R"([{"name": "a", "command": ["x"], "shell": "y"}])"),
            R"(task 0 ("a"): "command" and "shell" cannot both be set)");
  EXPECT_EQ(error_of(R"([{"name": "a", "sql": "x", "shell": "y"}])"),
            R"(task 0 ("a"): "shell" and "sql" cannot both be set)");
  EXPECT_EQ(error_of(R"([{"name": "a", "sql": "x", "shell": "y", "command": ["z"]}])"),
            R"(task 0 ("a"): "command" and "shell" cannot both be set)");
}

TEST(TaskSpec, CommandErrors) {
  const std::string non_empty = R"(task 1 ("b"): "command" must be a non-empty array of strings)";
  for (const char *bad : {"[]", "\"ls -l\"", "[1]", "[\"ls\", 2]", "[[\"ls\"]]", "{}", "true"})
    EXPECT_EQ(error_of(std::string(R"([{"name": "a", "sql": "x"}, {"name": "b", "command": )") + bad + "}]"),
              non_empty)
        << bad;
  EXPECT_EQ(error_of(one(R"("command": [""])")), R"(task 0 ("a"): "command" must start with a non-empty program name)");
  EXPECT_EQ(parse_process_type(one(R"("command": ["echo", ""])")).tasks[0].command,
            (std::vector<std::string>{"echo", ""}));
  EXPECT_EQ(error_of(one(R"("command": ["echo", "a\u0000b"])")), R"(task 0 ("a"): "command" must not contain NUL bytes)");
}

TEST(TaskSpec, ShellAndSqlErrors) {
  for (const char *key : {"shell", "sql"}) {
    std::string message = std::string(R"(task 0 ("a"): ")") + key + R"(" must be a non-empty string)";
    for (const char *bad : {"\"\"", "\"  \\n \"", "5", "[\"x\"]", "false"})
      EXPECT_EQ(error_of(one("\"" + std::string(key) + "\": " + bad)), message) << key << " " << bad;
    EXPECT_EQ(error_of(one("\"" + std::string(key) + R"(": "a\u0000")")),
              std::string(R"(task 0 ("a"): ")") + key + R"(" must not contain NUL bytes)");
  }
}

TEST(TaskSpec, SqlTasksHaveNoDirectoryOrEnvironment) {
  EXPECT_EQ(error_of(one(R"("sql": "x", "working_directory": "/tmp")")),
            R"(task 0 ("a"): "working_directory" is only for command and shell tasks, not sql tasks)");
  EXPECT_EQ(error_of(one(R"("sql": "x", "env": {"A": "1"})")),
            R"(task 0 ("a"): "env" is only for command and shell tasks, not sql tasks)");
}

TEST(TaskSpec, WorkingDirectoryErrors) {
  EXPECT_EQ(error_of(one(R"("shell": "x", "working_directory": "tmp/x")")),
            R"(task 0 ("a"): "working_directory" must be an absolute path, not "tmp/x")");
  EXPECT_EQ(error_of(one(R"("shell": "x", "working_directory": "")")),
            R"(task 0 ("a"): "working_directory" must be an absolute path, not "")");
  EXPECT_EQ(error_of(one(R"("shell": "x", "working_directory": 5)")),
            R"(task 0 ("a"): "working_directory" must be a string)");
  EXPECT_EQ(error_of(one(R"("shell": "x", "working_directory": "/a\u0000")")),
            R"(task 0 ("a"): "working_directory" must not contain NUL bytes)");
}

TEST(TaskSpec, EnvErrors) {
  EXPECT_EQ(error_of(one(R"("shell": "x", "env": ["A=1"])")),
            R"(task 0 ("a"): "env" must be an object mapping names to strings)");
  for (const char *bad : {"1X", "A-B", "", "A B", "A=B", "É"})
    EXPECT_EQ(error_of(one(std::string(R"("shell": "x", "env": {")") + bad + R"(": "v"})")),
              std::string(R"(task 0 ("a"): "env" key ")") + bad + R"(" is not a valid environment variable name)")
        << bad;
  EXPECT_EQ(error_of(one(R"("shell": "x", "env": {"ORCH_INPUT_X": "v"})")),
            R"(task 0 ("a"): "env" key "ORCH_INPUT_X" is reserved (names starting with ORCH_ are set by pg_orch))");
  EXPECT_EQ(error_of(one(R"("shell": "x", "env": {"ORCH_": "v"})")),
            R"(task 0 ("a"): "env" key "ORCH_" is reserved (names starting with ORCH_ are set by pg_orch))");
  EXPECT_EQ(parse_process_type(one(R"("shell": "x", "env": {"ORCH": "1", "orch_x": "2"})")).tasks[0].env.size(), 2u);
  EXPECT_EQ(error_of(one(R"("shell": "x", "env": {"X": 1})")), R"(task 0 ("a"): "env" value for "X" must be a string)");
  EXPECT_EQ(error_of(one(R"("shell": "x", "env": {"X": null})")),
            R"(task 0 ("a"): "env" value for "X" must be a string)");
  EXPECT_EQ(error_of(one(R"("shell": "x", "env": {"X": "a\u0000"})")),
            R"(task 0 ("a"): "env" value for "X" must not contain NUL bytes)");
}

TEST(TaskSpec, IntervalErrors) {
  EXPECT_EQ(error_of(R"([{"name": "extract", "sql": "x"}, {"name": "transform", "sql": "x"},
                        {"name": "load", "sql": "x", "timeout": "abc"}])"),
            R"(task 2 ("load"): "timeout": invalid interval "abc")");
  EXPECT_EQ(error_of(one(R"("sql": "x", "timeout": 0)")),
            R"(task 0 ("a"): "timeout" must be greater than zero (leave it out for no timeout))");
  EXPECT_EQ(error_of(one(R"("sql": "x", "timeout": "0 s")")),
            R"(task 0 ("a"): "timeout" must be greater than zero (leave it out for no timeout))");
  EXPECT_EQ(error_of(one(R"("sql": "x", "timeout": 0.0001)")),
            R"(task 0 ("a"): "timeout" must be greater than zero (leave it out for no timeout))");
  EXPECT_EQ(error_of(one(R"("sql": "x", "timeout": -1)")), R"(task 0 ("a"): "timeout" must not be negative)");
  EXPECT_EQ(error_of(one(R"("sql": "x", "timeout": "-1 s")")),
            R"(task 0 ("a"): "timeout": invalid interval "-1 s": must not be negative)");
  EXPECT_EQ(error_of(one(R"("sql": "x", "timeout": true)")),
            R"(task 0 ("a"): "timeout" must be an interval string or a number of seconds)");
  EXPECT_EQ(error_of(one(R"("sql": "x", "timeout": 1e300)")),
            R"(task 0 ("a"): "timeout" is out of range (at most 100 years))");
  EXPECT_EQ(error_of(one(R"("sql": "x", "retry_delay": -0.5)")), R"(task 0 ("a"): "retry_delay" must not be negative)");
  EXPECT_EQ(error_of(one(R"("sql": "x", "retry_delay": "soon")")),
            R"(task 0 ("a"): "retry_delay": invalid interval "soon")");
  EXPECT_EQ(error_of(one(R"("sql": "x", "retry_delay": {})")),
            R"(task 0 ("a"): "retry_delay" must be an interval string or a number of seconds)");
}

TEST(TaskSpec, DependsOnErrors) {
  const std::string abc = R"([{"name": "a", "sql": "x"}, {"name": "b", "sql": "x"}, {"name": "c", "sql": "x", )";
  EXPECT_EQ(error_of(abc + R"("depends_on": ["x"]}])"), R"(task 2 ("c"): "depends_on" names unknown task "x")");
  EXPECT_EQ(error_of(abc + R"("depends_on": ["a", "A"]}])"), R"(task 2 ("c"): "depends_on" names unknown task "A")");
  EXPECT_EQ(error_of(abc + R"("depends_on": ["c"]}])"), R"(task 2 ("c"): "depends_on" names the task itself)");
  EXPECT_EQ(error_of(abc + R"("depends_on": ["a", "b", "a"]}])"), R"(task 2 ("c"): "depends_on" names "a" twice)");
  for (const char *bad : {"\"a\"", "[1]", "[\"a\", null]", "{\"a\": 1}", "true"})
    EXPECT_EQ(error_of(abc + R"("depends_on": )" + bad + "}]"),
              R"(task 2 ("c"): "depends_on" must be an array of task names)")
        << bad;
}

TEST(TaskSpec, CyclesAreShownByName) {
  EXPECT_EQ(error_of(R"([{"name": "a", "sql": "x", "depends_on": ["b"]}, {"name": "b", "sql": "x", "depends_on": ["a"]}])"),
            "tasks form a cycle: a -> b -> a");
  EXPECT_EQ(error_of(R"([{"name": "a", "sql": "x", "depends_on": ["b"]}, {"name": "b", "sql": "x", "depends_on": ["c"]},
                        {"name": "c", "sql": "x", "depends_on": ["a"]}])"),
            "tasks form a cycle: a -> b -> c -> a");
  // The path into the cycle (t) is not part of it.
  EXPECT_EQ(error_of(R"([{"name": "t", "sql": "x", "depends_on": ["a"]}, {"name": "a", "sql": "x", "depends_on": ["b"]},
                        {"name": "b", "sql": "x", "depends_on": ["a"]}])"),
            "tasks form a cycle: a -> b -> a");
  // A diamond is not a cycle.
  EXPECT_EQ(error_of(R"([{"name": "a", "sql": "x", "depends_on": []}, {"name": "b", "sql": "x", "depends_on": ["a"]},
                        {"name": "c", "sql": "x", "depends_on": ["a"]}, {"name": "d", "sql": "x", "depends_on": ["b", "c"]}])"),
            "no error");
}

TEST(TaskSpec, LongGraphsNeedNoRecursion) {
  auto chain = [](bool closed) {
    std::string json = "[";
    for (int i = 0; i < 1000; ++i) {
      int dep = i + 1 == 1000 ? (closed ? 0 : -1) : i + 1;
      json += (i ? "," : "") + std::string(R"({"name": "t)") + std::to_string(i) + R"(", "sql": "x", "depends_on": [)" +
              (dep < 0 ? "" : "\"t" + std::to_string(dep) + "\"") + "]}";
    }
    return json + "]";
  };
  ProcessTypeSpec p = parse_process_type(chain(false));
  EXPECT_EQ(p.tasks[0].depends_on, Deps{1});
  EXPECT_EQ(p.tasks[999].depends_on, Deps{});
  std::string cycle = error_of(chain(true));
  EXPECT_EQ(cycle.rfind("tasks form a cycle: t0 -> t1 -> t2 -> ", 0), 0u) << cycle;
  EXPECT_EQ(cycle.substr(cycle.size() - 18), "t998 -> t999 -> t0");

  // Every task depending on all earlier ones: many edges, still quick.
  std::string dense = "[";
  for (int i = 0; i < 300; ++i) {
    dense += (i ? "," : "") + std::string(R"({"name": "t)") + std::to_string(i) + R"(", "sql": "x", "depends_on": [)";
    for (int j = 0; j < i; ++j) dense += (j ? "," : "") + std::string("\"t") + std::to_string(j) + "\"";
    dense += "]}";
  }
  EXPECT_EQ(parse_process_type(dense + "]").tasks[299].depends_on.size(), 299u);
}

}  // namespace
}  // namespace orch
