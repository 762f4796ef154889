// How input data reaches a task: {{key}} placeholders inside single argv
// elements of command tasks, ORCH_INPUT_<KEY> variables for every task.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/cpp_only.hpp"

namespace orch {

// Deepest nesting accepted in input data; rendering values recurses.
constexpr int kMaxInputDepth = 1000;

// Calls replace(key) for each {{key}} placeholder of arg (key of
// [A-Za-z0-9_.-]+, spaces allowed inside the braces) and returns arg with
// each replaced by what replace returns, or kept as written when replace
// returns nullopt. A "{{" that does not start a placeholder stays as is.
std::string replace_placeholders(const std::string &arg,
                                 const std::function<std::optional<std::string>(const std::string &key)> &replace);

// How a substituted value is written into element `index` of the array
// (an http task's url is percent-encoded, for one); empty: verbatim.
using ValueEncoder = std::function<std::string(std::size_t index, const std::string &value)>;

// A JSON value as a placeholder or variable inserts it: strings verbatim,
// anything else as compact JSON.
std::string render_value(const nlohmann::json &value);

// Keys starting with "tasks." name another task's output (core/outputs.hpp),
// not input data.
bool is_output_key(const std::string &key);

// Whether any element of argv has a {{key}} placeholder for which `is(key)`.
bool has_placeholder(const std::vector<std::string> &argv, const std::function<bool(const std::string &key)> &is);

// A value as it goes into element `index`: encoded, and refused
// (InvalidInput, `prefix`: "task ...: placeholder {{key}}") when it holds a
// NUL byte, or "{{" while placeholders are left for a later step (`later`),
// which would read it as one of them: a value is filled in once, never
// read as a template.
std::string inserted_value(const std::string &prefix, const std::string &value, std::size_t index,
                           const ValueEncoder &encode, bool later);

// Replaces each {{key}} (other than output keys, left for when the task
// becomes ready) with the value of that top-level key of input_json, within the
// one element it appears in: an input value can never become a second
// argument. Strings are inserted verbatim; numbers, booleans and null as
// JSON text; objects and arrays as compact JSON. Inserted values are not
// scanned again, and a "{{" that does not start a placeholder stays as is.
// input_json is a JSON object ("" counts as {}).
// Throws InvalidInput(`task "x": placeholder {{key}} has no value in the
// input data`), and for a value with a NUL byte or bad input_json.
// With leave_items (a fan-out task), {{item}}, {{item.PATH}} and
// {{item_index}} are left for its instances too.
std::vector<std::string> substitute_placeholders(const std::vector<std::string> &argv, const std::string &input_json,
                                                 const std::string &task_name, bool leave_items = false,
                                                 const ValueEncoder &encode = {});

// ORCH_INPUT_<KEY> -> value for each top-level key of input_json (rendered
// as above). KEY is the key upper-cased with every character outside
// [A-Z0-9_] replaced by '_'. Throws InvalidInput when two keys map to the
// same variable, or a value holds a NUL byte.
std::map<std::string, std::string> input_environment(const std::string &input_json);

}  // namespace orch
