#include "core/fan_out.hpp"

#include <gtest/gtest.h>

#include <functional>

#include "core/error.hpp"
#include "core/run_plan.hpp"
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

TEST(FanOutItems, LiteralCountInputAndOutput) {
  EXPECT_EQ(fan_out_items(R"({"for_each": [1, "a", {"b": 2}]})", "{}", "{}", "t"), R"([1,"a",{"b":2}])");
  EXPECT_EQ(fan_out_items(R"({"count": 3})", "{}", "{}", "t"), "[0,1,2]");
  EXPECT_EQ(fan_out_items(R"({"count": 0})", "{}", "{}", "t"), "[]");
  EXPECT_EQ(fan_out_items(R"({"for_each": "files"})", R"({"files": ["a", "b"]})", "{}", "t"), R"(["a","b"])");
  EXPECT_EQ(fan_out_items(R"({"for_each": "tasks.list.output.files"})", "{}", R"({"list": {"files": [3]}})", "t"),
            "[3]");
}

TEST(FanOutItems, RefusalsSayWhich) {
  EXPECT_EQ(error_of([] { fan_out_items(R"({"for_each": "files"})", "{}", "{}", "t"); }),
            "task \"t\": \"for_each\" {{files}} has no value in the input data");
  EXPECT_EQ(error_of([] { fan_out_items(R"({"for_each": "files"})", R"({"files": "a"})", "{}", "t"); }),
            "task \"t\": \"for_each\" {{files}} is not an array but a string");
  EXPECT_EQ(error_of([] { fan_out_items(R"({"for_each": "tasks.list.output.x"})", "{}", R"({"list": {}})", "t"); }),
            "task \"t\": \"for_each\" {{tasks.list.output.x}}: the output of \"list\" has no \"x\"");
}

TEST(SubstituteItem, ItemPathAndIndexInsideOneArgument) {
  std::vector<std::string> out = substitute_item({"cp", "{{item.src}}", "/out/{{item_index}}-{{item.tags.1}}", "{{item}}",
                                                  "{{other}}"},
                                                 R"({"src": "a b;rm", "tags": ["x", "y"]})", 4, "copy");
  EXPECT_EQ(out, (std::vector<std::string>{"cp", "a b;rm", "/out/4-y", R"({"src":"a b;rm","tags":["x","y"]})",
                                           "{{other}}"}));
  EXPECT_EQ(error_of([] { substitute_item({"{{item.dst}}"}, R"({"src": 1})", 2, "copy"); }),
            "task \"copy\": placeholder {{item.dst}}: item 2 has no \"dst\"");
}

TEST(FanOutSpec, NormalisedForEachCountAndMaxParallel) {
  std::string rows = normalized_tasks_json(parse_process_type(R"([
    {"name": "a", "count": 2, "command": ["echo", "{{item_index}}"], "max_parallel": 1},
    {"name": "b", "for_each": "{{ files }}", "command": ["echo", "{{item}}"]},
    {"name": "c", "for_each": [1, 2], "shell": "echo $ORCH_ITEM"}])"));
  EXPECT_NE(rows.find(R"("fan_out":{"count":2})"), std::string::npos) << rows;
  EXPECT_NE(rows.find(R"("max_parallel":1)"), std::string::npos) << rows;
  EXPECT_NE(rows.find(R"("fan_out":{"for_each":"files"})"), std::string::npos) << rows;
  EXPECT_NE(rows.find(R"("fan_out":{"for_each":[1,2]})"), std::string::npos) << rows;
}

}  // namespace
}  // namespace orch
