// Fan-out: a task with "for_each" or "count" runs as one instance per item,
// each with {{item}}, {{item.PATH}} and {{item_index}} in its command and
// ORCH_ITEM / ORCH_ITEM_INDEX in its environment.
#pragma once

#include <string>
#include <vector>

#include "core/cpp_only.hpp"
#include "core/placeholders.hpp"

namespace orch {

// item, item.PATH and item_index: placeholders of fan-out tasks only.
bool is_item_key(const std::string &key);

// The items of a fan-out, as a JSON array, when the task becomes ready.
// fan_out_json is the normalised spec: {"for_each": [...]}, {"for_each":
// "KEY"} (an input key, or tasks.NAME.output[.PATH] of an ancestor) or
// {"count": N} (the items are 0 .. N-1). input_json is the run's input,
// outputs_json the ancestors' outputs by name. Throws InvalidInput
// (`task "x": "for_each" {{KEY}} ...`) when the placeholder has no value or
// it is not an array.
std::string fan_out_items(const std::string &fan_out_json, const std::string &input_json,
                          const std::string &outputs_json, const std::string &task_name);

// Replaces {{item}}, {{item.PATH}} and {{item_index}} in argv, each inside
// its one element, rendered as input values are (PATH as for outputs).
// Throws InvalidInput (`task "x": placeholder {{item.name}}: item 3 has no
// "name"`).
std::vector<std::string> substitute_item(const std::vector<std::string> &argv, const std::string &item_json,
                                         int item_index, const std::string &task_name,
                                         const ValueEncoder &encode = {});

}  // namespace orch
