#include "core/outputs.hpp"

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/fan_out.hpp"
#include "core/placeholders.hpp"

namespace orch {
namespace {

using json = nlohmann::json;

std::vector<std::string> split_path(const std::string &rest, const std::string &key) {
  std::vector<std::string> path;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = rest.find('.', start);
    std::string element = rest.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (element.empty()) throw InvalidInput("placeholder {{" + key + "}} has an empty path element");
    path.push_back(element);
    if (dot == std::string::npos) return path;
    start = dot + 1;
  }
}

bool is_index(const std::string &element) {
  if (element.empty() || element.size() > 9) return false;
  for (char c : element)
    if (c < '0' || c > '9') return false;
  return true;
}

bool has_nul(const json &value) {
  if (value.is_string()) return value.get_ref<const std::string &>().find('\0') != std::string::npos;
  if (value.is_object()) {
    for (const auto &item : value.items())
      if (item.key().find('\0') != std::string::npos || has_nul(item.value())) return true;
  }
  if (value.is_array()) {
    for (const json &element : value)
      if (has_nul(element)) return true;
  }
  return false;
}

}  // namespace

OutputReference parse_output_reference(const std::string &key, const std::vector<std::string> &task_names) {
  const std::string prefix = "tasks.";
  const std::string suffix = ".output";
  const std::string *best = nullptr;
  for (const std::string &name : task_names) {
    std::size_t end = prefix.size() + name.size();
    if (key.compare(0, prefix.size(), prefix) != 0 || key.compare(prefix.size(), name.size(), name) != 0) continue;
    if (key.compare(end, suffix.size(), suffix) != 0) continue;
    std::size_t after = end + suffix.size();
    if (after != key.size() && key[after] != '.') continue;
    if (best == nullptr || name.size() > best->size()) best = &name;
  }
  if (best == nullptr)
    throw InvalidInput("placeholder {{" + key + "}} names no task's output (use {{tasks.NAME.output}} or " +
                       "{{tasks.NAME.output.PATH}})");
  OutputReference reference{*best, {}};
  std::size_t after = prefix.size() + best->size() + suffix.size();
  if (after < key.size()) reference.path = split_path(key.substr(after + 1), key);
  return reference;
}

std::vector<OutputReference> output_references(const std::vector<std::string> &argv,
                                               const std::vector<std::string> &task_names) {
  std::vector<OutputReference> references;
  for (const std::string &arg : argv)
    (void)replace_placeholders(arg, [&](const std::string &key) -> std::optional<std::string> {
      if (is_output_key(key)) references.push_back(parse_output_reference(key, task_names));
      return std::nullopt;
    });
  return references;
}

const json &referenced_output(const json &outputs, const OutputReference &reference, const std::string &prefix) {
  auto found = outputs.find(reference.task);
  if (found == outputs.end()) throw InvalidInput(prefix + " names no task it depends on");
  const json *value = &*found;
  if (value->is_null()) throw InvalidInput(prefix + ": task " + quote(reference.task) + " has no output");
  for (const std::string &element : reference.path) {
    if (value->is_array() && is_index(element) && std::stoul(element) < value->size()) {
      value = &(*value)[std::stoul(element)];
    } else if (value->is_object() && value->contains(element)) {
      value = &(*value)[element];
    } else {
      throw InvalidInput(prefix + ": the output of " + quote(reference.task) + " has no " + quote(element));
    }
  }
  return *value;
}

std::vector<std::string> substitute_outputs(const std::vector<std::string> &argv, const std::string &outputs_json,
                                            const std::string &task_name, const ValueEncoder &encode) {
  json outputs = outputs_json.empty() ? json::object() : json::parse(outputs_json);
  std::vector<std::string> names;
  for (const auto &item : outputs.items()) names.push_back(item.key());
  bool later = has_placeholder(argv, is_item_key);  // a fan-out's items come next
  std::vector<std::string> out;
  for (std::size_t i = 0; i < argv.size(); ++i)
    out.push_back(replace_placeholders(argv[i], [&](const std::string &key) -> std::optional<std::string> {
      if (!is_output_key(key)) return std::nullopt;
      std::string prefix = "task " + quote(task_name) + ": placeholder {{" + key + "}}";
      OutputReference reference;
      try {
        reference = parse_output_reference(key, names);
      } catch (const InvalidInput &) {
        throw InvalidInput(prefix + " names no task it depends on");
      }
      const json *value = &referenced_output(outputs, reference, prefix);
      return inserted_value(prefix, render_value(*value), i, encode, later);
    }));
  return out;
}

std::optional<std::string> output_problem(const std::string &text, std::size_t max_bytes) {
  if (text.size() > max_bytes)
    return "the output in $ORCH_OUTPUT is more than orch.max_output_data (" + std::to_string(max_bytes) + " bytes)";
  bool blank = text.find_first_not_of(" \t\r\n") == std::string::npos;
  if (blank) return std::nullopt;
  json value;
  try {
    value = json::parse(text, [](int depth, json::parse_event_t, json &) {
      if (depth > kMaxInputDepth) throw InvalidInput("nested too deeply");
      return true;
    });
  } catch (...) {
    return "the output in $ORCH_OUTPUT is not one valid JSON value";
  }
  if (has_nul(value)) return "the output in $ORCH_OUTPUT contains a NUL character";
  return std::nullopt;
}

}  // namespace orch
