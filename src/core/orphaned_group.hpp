// Crash recovery: killing the process group of a task whose scheduler died.
// Only the pgid survives in the database, and after a restart that number
// may belong to someone else (PostgreSQL's own backends lead their own
// groups), so the group is killed only when it is provably the task's.
#pragma once

#include <string>

#include "core/cpp_only.hpp"

namespace orch {

// Kills group `pgid` if it belongs to the task whose environment contains
// the entry `marker` (e.g. "ORCH_TASK_ID=42"):
// - the group leader is alive: it must carry the marker in its environment;
// - the leader is gone: Linux does not reuse a pid while it still names a
//   process group, so any member left is the task's own.
// Returns true if a signal was sent.
bool kill_orphaned_group(int pgid, const std::string &marker);

}  // namespace orch
