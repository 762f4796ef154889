#include "core/fan_out.hpp"

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/outputs.hpp"
#include "core/placeholders.hpp"

namespace orch {
namespace {

using json = nlohmann::json;

std::string type_name(const json &value) {
  switch (value.type()) {
    case json::value_t::object: return "an object";
    case json::value_t::string: return "a string";
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    default: return "a number";
  }
}

}  // namespace

bool is_item_key(const std::string &key) {
  return key == "item" || key == "item_index" || key.rfind("item.", 0) == 0;
}

std::string fan_out_items(const std::string &fan_out_json, const std::string &input_json,
                          const std::string &outputs_json, const std::string &task_name) {
  json spec = json::parse(fan_out_json);
  if (spec.contains("count")) {
    json items = json::array();
    for (int i = 0, n = spec.at("count").get<int>(); i < n; ++i) items.push_back(i);
    return items.dump();
  }
  const json &for_each = spec.at("for_each");
  if (for_each.is_array()) return for_each.dump();
  std::string key = for_each.get<std::string>();
  std::string prefix = "task " + quote(task_name) + ": \"for_each\" {{" + key + "}}";
  json value;
  if (is_output_key(key)) {
    json outputs = outputs_json.empty() ? json::object() : json::parse(outputs_json);
    std::vector<std::string> names;
    for (const auto &item : outputs.items()) names.push_back(item.key());
    OutputReference reference;
    try {
      reference = parse_output_reference(key, names);
    } catch (const InvalidInput &) {
      throw InvalidInput(prefix + " names no task it depends on");
    }
    value = referenced_output(outputs, reference, prefix);
  } else {
    json input = input_json.empty() ? json::object() : json::parse(input_json);
    auto found = input.find(key);
    if (found == input.end()) throw InvalidInput(prefix + " has no value in the input data");
    value = *found;
  }
  if (!value.is_array()) throw InvalidInput(prefix + " is not an array but " + type_name(value));
  return value.dump();
}

std::vector<std::string> substitute_item(const std::vector<std::string> &argv, const std::string &item_json,
                                         int item_index, const std::string &task_name, const ValueEncoder &encode) {
  json item = json::parse(item_json);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < argv.size(); ++i)
    out.push_back(replace_placeholders(argv[i], [&](const std::string &key) -> std::optional<std::string> {
      if (!is_item_key(key)) return std::nullopt;
      if (key == "item_index") return std::to_string(item_index);
      std::string prefix = "task " + quote(task_name) + ": placeholder {{" + key + "}}";
      const json *value = &item;
      if (key != "item") {
        std::string rest = key.substr(5);
        std::size_t start = 0;
        while (true) {
          std::size_t dot = rest.find('.', start);
          std::string element = rest.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
          bool index = !element.empty() && element.size() <= 9 &&
                       element.find_first_not_of("0123456789") == std::string::npos;
          if (value->is_array() && index && std::stoul(element) < value->size())
            value = &(*value)[std::stoul(element)];
          else if (value->is_object() && !element.empty() && value->contains(element))
            value = &(*value)[element];
          else
            throw InvalidInput(prefix + ": item " + std::to_string(item_index) + " has no " + quote(element));
          if (dot == std::string::npos) break;
          start = dot + 1;
        }
      }
      return inserted_value(prefix, render_value(*value), i, encode, false);
    }));
  return out;
}

}  // namespace orch
