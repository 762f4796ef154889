#include "core/placeholders.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.hpp"

namespace orch {
namespace {

using Argv = std::vector<std::string>;
using Env = std::map<std::string, std::string>;

const char *kInput = R"({"input_file": "/data/in.json", "user_id": "user123", "n": 100, "ratio": 1.5,
  "flag": true, "off": false, "none": null, "obj": {"b": [1, "x"], "a": {}}, "list": [1, 2],
  "evil": "a b; rm -rf / $(x) `y`", "nested": "{{user_id}}", "a.b-c_d": "dotted", "empty": ""})";

Argv sub(const Argv &argv, const std::string &input = kInput) { return substitute_placeholders(argv, input, "extract"); }

std::string error_of(const Argv &argv, const std::string &input = kInput) {
  try {
    sub(argv, input);
  } catch (const InvalidInput &e) {
    return e.what();
  }
  return "no error";
}

TEST(Placeholders, ReplacesInsideOneElement) {
  EXPECT_EQ(sub({"/usr/bin/python3", "extract.py", "--in", "{{input_file}}"}),
            (Argv{"/usr/bin/python3", "extract.py", "--in", "/data/in.json"}));
  EXPECT_EQ(sub({"--in={{input_file}}", "{{user_id}}-{{user_id}}"}), (Argv{"--in=/data/in.json", "user123-user123"}));
  EXPECT_EQ(sub({"{{ input_file }}", "{{\tuser_id\t}}", "{{  n}}"}), (Argv{"/data/in.json", "user123", "100"}));
  EXPECT_EQ(sub({"{{a.b-c_d}}"}), Argv{"dotted"});
  EXPECT_EQ(sub({"x{{empty}}y"}), Argv{"xy"});
  EXPECT_EQ(sub({}), Argv{});
}

TEST(Placeholders, ValueNeverSplitsOrBecomesSyntax) {
  Argv out = sub({"/bin/echo", "{{evil}}"});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1], "a b; rm -rf / $(x) `y`");
}

TEST(Placeholders, ValueRendering) {
  EXPECT_EQ(sub({"{{n}}", "{{ratio}}", "{{flag}}", "{{off}}", "{{none}}", "{{obj}}", "{{list}}"}),
            (Argv{"100", "1.5", "true", "false", "null", R"({"a":{},"b":[1,"x"]})", "[1,2]"}));
  EXPECT_EQ(sub({"{{s}}"}, R"({"s": "quote \" and \\ and \u00e9"})"), Argv{"quote \" and \\ and é"});
}

TEST(Placeholders, ValuesAreNotExpandedAgain) { EXPECT_EQ(sub({"{{nested}}"}), Argv{"{{user_id}}"}); }

TEST(Placeholders, TextThatIsNotAPlaceholderStays) {
  Argv same = {"{{", "a {{ b", "{{}}", "{{ }}", "{{bad key}}", "{{a", "{{n}", "}}", "{ {n}}", "{{n!}}", "{{n}}}"};
  Argv out = sub(same);
  for (std::size_t i = 0; i + 1 < same.size(); ++i) EXPECT_EQ(out[i], same[i]);
  EXPECT_EQ(out.back(), "100}");
  EXPECT_EQ(sub({"{{{n}}}"}), Argv{"{100}"});
  EXPECT_EQ(sub({"{{{{n}}}}"}), Argv{"{{100}}"});
}

TEST(Placeholders, MissingKey) {
  EXPECT_EQ(error_of({"a", "{{missing}}"}), "task \"extract\": placeholder {{missing}} has no value in the input data");
  EXPECT_EQ(error_of({"{{ missing }}"}), "task \"extract\": placeholder {{missing}} has no value in the input data");
  EXPECT_EQ(error_of({"{{Input_File}}"}), "task \"extract\": placeholder {{Input_File}} has no value in the input data");
  EXPECT_EQ(error_of({"{{k}}"}, ""), "task \"extract\": placeholder {{k}} has no value in the input data");
  EXPECT_EQ(sub({"plain"}, ""), Argv{"plain"});
}

TEST(Placeholders, BadInputJson) {
  EXPECT_EQ(error_of({"x"}, "[1]"), "input data must be a JSON object");
  EXPECT_EQ(error_of({"x"}, "\"s\""), "input data must be a JSON object");
  EXPECT_EQ(error_of({"x"}, "nope"), "input data is not valid JSON");
  EXPECT_EQ(error_of({"x"}, "{\"a\": 1"), "input data is not valid JSON");
}

TEST(Placeholders, NulInValueIsRejected) {
  EXPECT_EQ(error_of({"{{k}}"}, R"({"k": "a\u0000b"})"), "task \"extract\": placeholder {{k}} value contains a NUL byte");
  EXPECT_EQ(error_of({"{{k}}"}, R"({"k": ["a\u0000b"]})"), "no error");  // rendered as JSON: \u0000 escaped
}

TEST(Placeholders, DeepNestingIsBounded) {
  auto nested = [](int levels) { return R"({"k": )" + std::string(levels, '[') + std::string(levels, ']') + "}"; };
  EXPECT_EQ(sub({"{{k}}"}, nested(3)), Argv{"[[[]]]"});
  EXPECT_EQ(error_of({"x"}, nested(900)), "no error");
  EXPECT_EQ(error_of({"x"}, nested(100000)), "input data is nested too deeply (more than 1000 levels)");
}

TEST(InputEnvironment, NamesAndValues) {
  EXPECT_EQ(input_environment(R"({"input_file": "/x", "user-id": "u1", "n": 5, "obj": {"a": [1]}, "Mixed.Case": null,
                                 "é": "e", "9lives": "cat"})"),
            (Env{{"ORCH_INPUT_INPUT_FILE", "/x"},
                 {"ORCH_INPUT_USER_ID", "u1"},
                 {"ORCH_INPUT_N", "5"},
                 {"ORCH_INPUT_OBJ", R"({"a":[1]})"},
                 {"ORCH_INPUT_MIXED_CASE", "null"},
                 {"ORCH_INPUT___", "e"},
                 {"ORCH_INPUT_9LIVES", "cat"}}));
  EXPECT_EQ(input_environment("{}"), Env{});
  EXPECT_EQ(input_environment(""), Env{});
  EXPECT_EQ(input_environment(R"({"v": "{{x}} $HOME"})"), (Env{{"ORCH_INPUT_V", "{{x}} $HOME"}}));
}

TEST(InputEnvironment, Errors) {
  auto error = [](const std::string &json) {
    try {
      input_environment(json);
    } catch (const InvalidInput &e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error(R"({"a_b": "2", "a-b": "1"})"),
            "input data keys \"a-b\" and \"a_b\" both map to environment variable ORCH_INPUT_A_B");
  EXPECT_EQ(error(R"({"a": "1", "A": "2"})"),
            "input data keys \"A\" and \"a\" both map to environment variable ORCH_INPUT_A");
  EXPECT_EQ(error(R"({"k": "a\u0000"})"),
            "input data key \"k\" contains a NUL byte and cannot be passed as ORCH_INPUT_K");
  EXPECT_EQ(error("[]"), "input data must be a JSON object");
}

}  // namespace
}  // namespace orch
