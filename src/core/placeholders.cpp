#include "core/placeholders.hpp"

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/fan_out.hpp"

namespace orch {
namespace {

using json = nlohmann::json;

json parse_input(const std::string &input_json) {
  if (input_json.empty()) return json::object();
  json input;
  try {
    input = json::parse(input_json, [](int depth, json::parse_event_t, json &) {
      if (depth > kMaxInputDepth)
        throw InvalidInput("input data is nested too deeply (more than " + std::to_string(kMaxInputDepth) +
                           " levels)");
      return true;
    });
  } catch (const json::exception &) {
    throw InvalidInput("input data is not valid JSON");
  }
  if (!input.is_object()) throw InvalidInput("input data must be a JSON object");
  return input;
}

bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == '-';
}

bool is_blank(char c) { return c == ' ' || c == '\t'; }

}  // namespace

std::string render_value(const json &value) {
  if (value.is_string()) return value.get<std::string>();
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool is_output_key(const std::string &key) { return key.rfind("tasks.", 0) == 0; }

std::string replace_placeholders(const std::string &arg,
                                 const std::function<std::optional<std::string>(const std::string &key)> &replace) {
  std::string result;
  std::size_t i = 0;
  while (i < arg.size()) {
    if (arg.compare(i, 2, "{{") == 0) {
      std::size_t j = i + 2;
      while (j < arg.size() && is_blank(arg[j])) ++j;
      std::size_t key_start = j;
      while (j < arg.size() && is_key_char(arg[j])) ++j;
      std::size_t key_end = j;
      while (j < arg.size() && is_blank(arg[j])) ++j;
      if (key_end > key_start && arg.compare(j, 2, "}}") == 0) {
        std::optional<std::string> value = replace(arg.substr(key_start, key_end - key_start));
        if (value) {
          result += *value;
          i = j + 2;
          continue;
        }
        result.append(arg, i, j + 2 - i);  // kept as written, not scanned again
        i = j + 2;
        continue;
      }
    }
    result += arg[i++];
  }
  return result;
}

bool has_placeholder(const std::vector<std::string> &argv, const std::function<bool(const std::string &key)> &is) {
  bool found = false;
  for (const std::string &arg : argv)
    (void)replace_placeholders(arg, [&](const std::string &key) -> std::optional<std::string> {
      found = found || is(key);
      return std::nullopt;
    });
  return found;
}

std::string inserted_value(const std::string &prefix, const std::string &value, std::size_t index,
                           const ValueEncoder &encode, bool later) {
  if (value.find('\0') != std::string::npos) throw InvalidInput(prefix + " value contains a NUL byte");
  std::string text = encode ? encode(index, value) : value;
  if (later && text.find("{{") != std::string::npos)
    throw InvalidInput(prefix + " value contains \"{{\", which a later step would read as a placeholder");
  return text;
}

std::vector<std::string> substitute_placeholders(const std::vector<std::string> &argv, const std::string &input_json,
                                                 const std::string &task_name, bool leave_items,
                                                 const ValueEncoder &encode) {
  json input = parse_input(input_json);
  bool later = has_placeholder(argv, [&](const std::string &key) {
    return is_output_key(key) || (leave_items && is_item_key(key));
  });
  std::vector<std::string> out;
  out.reserve(argv.size());
  for (std::size_t i = 0; i < argv.size(); ++i)
    out.push_back(replace_placeholders(argv[i], [&](const std::string &key) -> std::optional<std::string> {
      if (is_output_key(key) || (leave_items && is_item_key(key))) return std::nullopt;
      auto it = input.find(key);
      std::string prefix = "task " + quote(task_name) + ": placeholder {{" + key + "}}";
      if (it == input.end()) throw InvalidInput(prefix + " has no value in the input data");
      return inserted_value(prefix, render_value(*it), i, encode, later);
    }));
  return out;
}

std::map<std::string, std::string> input_environment(const std::string &input_json) {
  json input = parse_input(input_json);
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> source_key;  // variable -> input key, for the collision message
  for (const auto &item : input.items()) {
    std::string name = "ORCH_INPUT_";
    for (char c : item.key()) {
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
      bool ok = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
      name += ok ? c : '_';
    }
    auto [it, inserted] = source_key.emplace(name, item.key());
    if (!inserted)
      throw InvalidInput("input data keys " + quote(it->second) + " and " + quote(item.key()) +
                         " both map to environment variable " + name);
    std::string value = render_value(item.value());
    if (value.find('\0') != std::string::npos)
      throw InvalidInput("input data key " + quote(item.key()) + " contains a NUL byte and cannot be passed as " +
                         name);
    env.emplace(name, std::move(value));
  }
  return env;
}

}  // namespace orch
