#include "core/input_data.hpp"

#include <string>

#include <gtest/gtest.h>

#include "core/error.hpp"

namespace orch {
namespace {

std::string error_of(const std::string &text) {
  try {
    parse_input_data(text);
  } catch (const InvalidInput &e) {
    return e.what();
  }
  return "no error";
}

TEST(InputData, SeedExample) {
  EXPECT_EQ(parse_input_data("input_file:/data/input.json;output_dir:/data/output;user_id:user123"),
            (InputPairs{{"input_file", "/data/input.json"}, {"output_dir", "/data/output"}, {"user_id", "user123"}}));
  EXPECT_EQ(parse_input_data("input_file:/data/input.json;output_dir:/data/output;user_id:user123;batch_size:100"),
            (InputPairs{{"input_file", "/data/input.json"},
                        {"output_dir", "/data/output"},
                        {"user_id", "user123"},
                        {"batch_size", "100"}}));
}

TEST(InputData, KeepsInputOrder) {
  EXPECT_EQ(parse_input_data("z:1;a:2;m:3"), (InputPairs{{"z", "1"}, {"a", "2"}, {"m", "3"}}));
}

TEST(InputData, ValueIsEverythingAfterTheFirstColon) {
  EXPECT_EQ(parse_input_data("url:http://x:80/a"), (InputPairs{{"url", "http://x:80/a"}}));
  EXPECT_EQ(parse_input_data("t:12:30:00;x::"), (InputPairs{{"t", "12:30:00"}, {"x", ":"}}));
  EXPECT_EQ(parse_input_data("a:"), (InputPairs{{"a", ""}}));
}

TEST(InputData, Escapes) {
  EXPECT_EQ(parse_input_data(R"(a\;b\:c:d\;e\:f\\g)"), (InputPairs{{"a;b:c", "d;e:f\\g"}}));
  EXPECT_EQ(parse_input_data(R"(list:x\;y;n:1)"), (InputPairs{{"list", "x;y"}, {"n", "1"}}));
  // Other backslashes are plain characters, so Windows paths need no care.
  EXPECT_EQ(parse_input_data(R"(path:C:\data\new)"), (InputPairs{{"path", R"(C:\data\new)"}}));
  EXPECT_EQ(parse_input_data(R"(a:b\)"), (InputPairs{{"a", "b\\"}}));
  EXPECT_EQ(parse_input_data(R"(a\b:c)"), (InputPairs{{"a\\b", "c"}}));
  EXPECT_EQ(parse_input_data(R"(a:\\;b:1)"), (InputPairs{{"a", "\\"}, {"b", "1"}}));
}

TEST(InputData, WhitespaceAroundKeysIsTrimmedValuesAreVerbatim) {
  EXPECT_EQ(parse_input_data(" a :1; b\t:2;\n c:3"), (InputPairs{{"a", "1"}, {"b", "2"}, {"c", "3"}}));
  EXPECT_EQ(parse_input_data("a: 1 ;b:x y"), (InputPairs{{"a", " 1 "}, {"b", "x y"}}));
  EXPECT_EQ(parse_input_data("my key:v"), (InputPairs{{"my key", "v"}}));
}

TEST(InputData, EmptyAndTrailingSeparator) {
  EXPECT_EQ(parse_input_data(""), InputPairs{});
  EXPECT_EQ(parse_input_data("  \n "), InputPairs{});
  EXPECT_EQ(parse_input_data("a:1;"), (InputPairs{{"a", "1"}}));
  EXPECT_EQ(parse_input_data("a:1;  "), (InputPairs{{"a", "1"}}));
}

TEST(InputData, ErrorsSayWhere) {
  EXPECT_EQ(error_of("input_file:/x;oops;c:2"), "invalid input data at character 15: expected \"key:value\"");
  EXPECT_EQ(error_of("oops"), "invalid input data at character 1: expected \"key:value\"");
  EXPECT_EQ(error_of(";"), "invalid input data at character 1: expected \"key:value\"");
  EXPECT_EQ(error_of("a:1;;b:2"), "invalid input data at character 5: expected \"key:value\"");
  EXPECT_EQ(error_of("a:1;  ;b:2"), "invalid input data at character 7: expected \"key:value\"");
  EXPECT_EQ(error_of(R"(a\:1)"), "invalid input data at character 1: expected \"key:value\"");
  EXPECT_EQ(error_of(":v"), "invalid input data at character 1: empty key");
  EXPECT_EQ(error_of("a:1; :v"), "invalid input data at character 6: empty key");
  EXPECT_EQ(error_of("x:1;x:2"), "invalid input data at character 5: duplicate key \"x\"");
  EXPECT_EQ(error_of("x:1; x :2"), "invalid input data at character 6: duplicate key \"x\"");
  EXPECT_EQ(error_of(R"(a\;b:1;a\;b:2)"), "invalid input data at character 8: duplicate key \"a;b\"");
  // Characters, not bytes: "é" is two bytes.
  EXPECT_EQ(error_of("é:1;é:2"), "invalid input data at character 5: duplicate key \"é\"");
  EXPECT_EQ(error_of("é:ü;oops"), "invalid input data at character 5: expected \"key:value\"");
}

TEST(InputData, NulBytesAreRejected) {
  EXPECT_EQ(error_of(std::string("a:b\0c", 5)), "invalid input data at character 4: NUL byte not allowed");
  EXPECT_EQ(error_of(std::string("a\0:b", 4)), "invalid input data at character 2: NUL byte not allowed");
  EXPECT_EQ(error_of(std::string("\0", 1)), "invalid input data at character 1: NUL byte not allowed");
}

TEST(InputData, ToJson) {
  EXPECT_EQ(input_data_to_json("input_file:/data/input.json;output_dir:/data/output;user_id:user123"),
            R"({"input_file":"/data/input.json","output_dir":"/data/output","user_id":"user123"})");
  EXPECT_EQ(input_data_to_json(""), "{}");
  EXPECT_EQ(input_data_to_json("n:100;b:true"), R"({"b":"true","n":"100"})");  // values stay strings
  EXPECT_EQ(input_data_to_json("q:say \"hi\"\n\tnow;p:C:\\x"), R"({"p":"C:\\x","q":"say \"hi\"\n\tnow"})");
  EXPECT_EQ(input_data_to_json("k:é"), "{\"k\":\"é\"}");
  try {
    input_data_to_json("k:\xff");
    FAIL() << "no error";
  } catch (const InvalidInput &e) {
    EXPECT_STREQ(e.what(), "input data is not valid UTF-8");
  }
  EXPECT_THROW(input_data_to_json("oops"), InvalidInput);
}

TEST(InputData, FormatIsTheInverse) {
  EXPECT_EQ(format_input_data({}), "");
  EXPECT_EQ(format_input_data({{"a", "1"}, {"url", "http://x:80/a"}}), "a:1;url:http://x:80/a");
  EXPECT_EQ(format_input_data({{"a;b:c\\", "d;e:f\\"}}), R"(a\;b\:c\\:d\;e:f\\)");
  for (const char *text : {"input_file:/data/input.json;output_dir:/data/output", R"(a\;b\:c:d\;e\:f\\g)",
                           R"(path:C:\data\new;x:)", " a :1 ; b:\\", "k:;;"}) {
    std::string t(text);
    if (t == "k:;;") continue;  // invalid, skip
    InputPairs pairs = parse_input_data(t);
    EXPECT_EQ(parse_input_data(format_input_data(pairs)), pairs) << text;
  }
}

}  // namespace
}  // namespace orch
