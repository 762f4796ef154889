#include "core/outputs.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"
#include "core/placeholders.hpp"
#include "core/task_spec.hpp"

namespace orch {
namespace {

std::string error_of(const std::function<void()> &f) {
  try {
    f();
  } catch (const InvalidInput &e) {
    return e.what();
  }
  return "(no error)";
}

TEST(OutputReference, NameThenPath) {
  OutputReference plain = parse_output_reference("tasks.extract.output", {"extract", "load"});
  EXPECT_EQ(plain.task, "extract");
  EXPECT_TRUE(plain.path.empty());
  OutputReference deep = parse_output_reference("tasks.extract.output.files.0.name", {"extract"});
  EXPECT_EQ(deep.task, "extract");
  EXPECT_EQ(deep.path, (std::vector<std::string>{"files", "0", "name"}));
  // Names may hold dots: the longest that fits.
  EXPECT_EQ(parse_output_reference("tasks.a.b.output.c", {"a", "a.b"}).task, "a.b");
  EXPECT_EQ(parse_output_reference("tasks.a.b.output.c", {"a", "a.b"}).path, std::vector<std::string>{"c"});
}

TEST(OutputReference, Refusals) {
  EXPECT_EQ(error_of([] { parse_output_reference("tasks.nope.output", {"extract"}); }),
            "placeholder {{tasks.nope.output}} names no task's output (use {{tasks.NAME.output}} or "
            "{{tasks.NAME.output.PATH}})");
  EXPECT_EQ(error_of([] { parse_output_reference("tasks.extract", {"extract"}); }).substr(0, 40),
            "placeholder {{tasks.extract}} names no t");
  EXPECT_EQ(error_of([] { parse_output_reference("tasks.extract.outputs", {"extract"}); }).substr(0, 48),
            "placeholder {{tasks.extract.outputs}} names no t");
  EXPECT_EQ(error_of([] { parse_output_reference("tasks.extract.output..x", {"extract"}); }),
            "placeholder {{tasks.extract.output..x}} has an empty path element");
  EXPECT_EQ(error_of([] { parse_output_reference("tasks.extract.output.", {"extract"}); }),
            "placeholder {{tasks.extract.output.}} has an empty path element");
}

TEST(SubstituteOutputs, InsideOneArgumentByPath) {
  std::string outputs = R"({"extract": {"files": ["a b.csv", "c;rm -rf /"], "count": 2}, "note": "x y"})";
  std::vector<std::string> argv = {"load", "--file={{tasks.extract.output.files.1}}", "{{tasks.extract.output.count}}",
                                   "{{tasks.note.output}}", "{{tasks.extract.output}}", "{{day}}"};
  std::vector<std::string> out = substitute_outputs(argv, outputs, "load");
  ASSERT_EQ(out.size(), 6u);
  EXPECT_EQ(out[1], "--file=c;rm -rf /");
  EXPECT_EQ(out[2], "2");
  EXPECT_EQ(out[3], "x y");
  EXPECT_EQ(out[4], R"({"count":2,"files":["a b.csv","c;rm -rf /"]})");
  EXPECT_EQ(out[5], "{{day}}");  // input placeholders were substituted when the run was made
}

TEST(SubstituteOutputs, MissingPartsFailTheTaskSayingWhich) {
  std::string outputs = R"({"extract": {"files": ["a"]}, "quiet": null})";
  EXPECT_EQ(error_of([&] { substitute_outputs({"{{tasks.extract.output.files.3}}"}, outputs, "load"); }),
            "task \"load\": placeholder {{tasks.extract.output.files.3}}: the output of \"extract\" has no \"3\"");
  EXPECT_EQ(error_of([&] { substitute_outputs({"{{tasks.extract.output.size}}"}, outputs, "load"); }),
            "task \"load\": placeholder {{tasks.extract.output.size}}: the output of \"extract\" has no \"size\"");
  EXPECT_EQ(error_of([&] { substitute_outputs({"{{tasks.quiet.output}}"}, outputs, "load"); }),
            "task \"load\": placeholder {{tasks.quiet.output}}: task \"quiet\" has no output");
  EXPECT_EQ(error_of([&] { substitute_outputs({"{{tasks.other.output}}"}, outputs, "load"); }),
            "task \"load\": placeholder {{tasks.other.output}} names no task it depends on");
}

TEST(SubstituteInput, LeavesOutputPlaceholdersForLater) {
  std::vector<std::string> out =
      substitute_placeholders({"{{day}}/{{tasks.extract.output.file}}"}, R"({"day": "mon"})", "load");
  EXPECT_EQ(out[0], "mon/{{tasks.extract.output.file}}");
}

TEST(OutputProblem, OneBoundedJsonValue) {
  EXPECT_EQ(output_problem("", 100), std::nullopt);
  EXPECT_EQ(output_problem(" \n", 100), std::nullopt);
  EXPECT_EQ(output_problem(R"({"rows": 3})", 100), std::nullopt);
  EXPECT_EQ(output_problem("42\n", 100), std::nullopt);
  EXPECT_EQ(output_problem("not json", 100), "the output in $ORCH_OUTPUT is not one valid JSON value");
  EXPECT_EQ(output_problem("{} {}", 100), "the output in $ORCH_OUTPUT is not one valid JSON value");
  EXPECT_EQ(output_problem("\"\\ud800\"", 100), "the output in $ORCH_OUTPUT is not one valid JSON value");
  EXPECT_EQ(output_problem("\"a\\u0000b\"", 100), "the output in $ORCH_OUTPUT contains a NUL character");
  EXPECT_EQ(output_problem(std::string(101, ' '), 100),
            "the output in $ORCH_OUTPUT is more than orch.max_output_data (100 bytes)");
  EXPECT_EQ(output_problem(std::string(5000, '[') + std::string(5000, ']'), 100000),
            "the output in $ORCH_OUTPUT is not one valid JSON value");
}

TEST(ProcessTypeOutputs, ANameMustBeAnAncestor) {
  EXPECT_EQ(error_of([] {
              parse_process_type(R"([{"name": "a", "command": ["true"]},
                                     {"name": "b", "command": ["echo", "{{tasks.a.output}}"]}])");
            }),
            "(no error)");  // sequential: b depends on a
  EXPECT_EQ(error_of([] {
              parse_process_type(R"([{"name": "a", "command": ["true"], "depends_on": []},
                                     {"name": "b", "command": ["echo", "{{tasks.a.output}}"], "depends_on": []}])");
            }),
            "task 1 (\"b\"): placeholder {{tasks.a.output}} uses the output of \"a\", which it does not depend "
            "on (through \"depends_on\")");
  EXPECT_EQ(error_of([] {
              parse_process_type(R"([{"name": "a", "command": ["true"]},
                                     {"name": "b", "command": ["echo", "{{tasks.zz.output}}"]}])");
            }),
            "task 1 (\"b\"): placeholder {{tasks.zz.output}} names no task's output (use {{tasks.NAME.output}} or "
            "{{tasks.NAME.output.PATH}})");
  EXPECT_EQ(error_of([] {  // through another task
              parse_process_type(R"([{"name": "a", "command": ["true"], "depends_on": []},
                                     {"name": "m", "command": ["true"], "depends_on": ["a"]},
                                     {"name": "b", "command": ["echo", "{{tasks.a.output.x}}"], "depends_on": ["m"]}])");
            }),
            "(no error)");
}

}  // namespace
}  // namespace orch
