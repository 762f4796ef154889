// Fuzzes the "key:value;..." parser and, through the JSON it produces, the
// placeholder and environment rendering. Besides crashes, it checks that
// format_input_data inverts parsing and that {{key}} yields the parsed value.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/input_data.hpp"
#include "core/placeholders.hpp"

namespace {

void check(bool ok, const char *what) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

bool placeholder_key(const std::string &key) {
  for (char c : key)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
          c == '-'))
      return false;
  return !key.empty();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::string text(reinterpret_cast<const char *>(data), size);
  orch::InputPairs pairs;
  try {
    pairs = orch::parse_input_data(text);
  } catch (const orch::InvalidInput &) {
    return 0;
  }
  for (const auto &[key, value] : pairs) check(!key.empty(), "empty key");
  check(orch::parse_input_data(orch::format_input_data(pairs)) == pairs, "format/parse round trip");

  std::string json;
  try {
    json = orch::input_data_to_json(text);
  } catch (const orch::InvalidInput &) {
    return 0;  // not UTF-8
  }
  try {
    for (const auto &[key, value] : pairs) {
      // {{tasks.*}} names another task's output, not an input key.
      if (!placeholder_key(key) || orch::is_output_key(key)) continue;
      std::vector<std::string> out = orch::substitute_placeholders({"{{" + key + "}}"}, json, "t");
      check(out.size() == 1 && out[0] == value, "placeholder gives the value");
    }
    orch::substitute_placeholders({text, "{{x}}"}, json, "t");
  } catch (const orch::InvalidInput &) {
  }
  try {
    check(orch::input_environment(json).size() == pairs.size(), "one variable per key");
  } catch (const orch::InvalidInput &) {
  }
  return 0;
}
