// What a process type's version is stored as: one row per task, validated
// and normalised once when the version is defined (orch.process_type_tasks);
// each start copies those rows.
#pragma once

#include <string>

#include "core/task_spec.hpp"
#include "core/cpp_only.hpp"

namespace orch {

// The validated spec as a JSON array: intervals in milliseconds
// (timeout_ms, retry_delay_ms), depends_on as task indexes, and whether a
// command uses other tasks' outputs (uses_outputs: substituted when it
// becomes ready).
std::string normalized_tasks_json(const ProcessTypeSpec &spec);

}  // namespace orch
