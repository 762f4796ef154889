// What a process type becomes at the moment a run starts: one row per task,
// with the process's input substituted, ready to be stored in orch.tasks.
// Fixing it then is what keeps a redefined type from changing a run.
#pragma once

#include <string>

#include "core/task_spec.hpp"
#include "core/cpp_only.hpp"

namespace orch {

// The validated spec as a JSON array: intervals in milliseconds
// (timeout_ms, retry_delay_ms) and depends_on as task indexes.
std::string normalized_tasks_json(const ProcessTypeSpec &spec);

// Parses `tasks_json` (a type's task array) and applies `input_json` (a JSON
// object): {{key}} placeholders in command arguments are substituted, and
// the input is checked to be passable as ORCH_INPUT_<KEY> environment
// variables (input_environment) if any task is a command or shell; it is not
// copied into the rows. Returns the rows as a JSON array in normalized form,
// plus task_index. Throws InvalidInput (bad spec, missing placeholder value).
std::string materialize_run(const std::string &tasks_json, const std::string &input_json);

}  // namespace orch
