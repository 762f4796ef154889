// How tasks hand data on: a task's output (one JSON value) and the
// {{tasks.NAME.output}} / {{tasks.NAME.output.PATH}} placeholders by which
// a command uses the output of a task it depends on.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/cpp_only.hpp"
#include "core/placeholders.hpp"

namespace orch {

// Largest output accepted unless the setting says otherwise.
constexpr std::size_t kDefaultMaxOutputData = 1 << 20;

struct OutputReference {
  std::string task;               // the task whose output is used
  std::vector<std::string> path;  // keys, or array indexes, into that output
};

// Reads the key of a {{tasks...}} placeholder: "tasks." + a name of
// task_names + ".output", then optionally "." and a dot-separated PATH. A
// task name may hold dots itself: the longest name that fits is taken.
// Throws InvalidInput when no task of task_names fits, or PATH has an empty
// element.
OutputReference parse_output_reference(const std::string &key, const std::vector<std::string> &task_names);

// The output references in argv's placeholders, in order.
std::vector<OutputReference> output_references(const std::vector<std::string> &argv,
                                               const std::vector<std::string> &task_names);

// The part of an output that `reference` names, in outputs ({"NAME":
// output}): a PATH element indexes an array when it is a number, else names
// an object's key. Throws InvalidInput starting with `prefix` when the task
// is not in outputs, has no output, or the PATH is not there.
const nlohmann::json &referenced_output(const nlohmann::json &outputs, const OutputReference &reference,
                                        const std::string &prefix);

// Replaces each {{tasks.NAME.output[.PATH]}} in argv by that part of the
// output of NAME in outputs_json ({"NAME": output, ...}, the task's
// ancestors), rendered as input values are and always inside its one
// element. A PATH element indexes an array when it is a number, else names
// an object's key. Throws InvalidInput (`task "x": placeholder {{...}}: ...`)
// for a task that is not in outputs_json or has no output, a PATH that is
// not there, or a value with a NUL byte.
std::vector<std::string> substitute_outputs(const std::vector<std::string> &argv, const std::string &outputs_json,
                                            const std::string &task_name, const ValueEncoder &encode = {});

// Why `text`, what a task wrote to $ORCH_OUTPUT, cannot be its output, or
// nullopt if it can: at most max_bytes, one JSON value, UTF-8, no NUL
// character (which jsonb refuses). Empty text is no output, and fine.
std::optional<std::string> output_problem(const std::string &text, std::size_t max_bytes);

}  // namespace orch
