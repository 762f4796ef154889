// Crash recovery: killing what a dead scheduler's tasks left running. Only
// the pgid survives in the database, and after a restart that number may
// belong to someone else (PostgreSQL's own backends lead their own groups),
// so nothing is killed unless it is provably a task's. Every command carries
// markers in its environment for that: ORCH_SCHEDULER=<cluster>/<database>
// and ORCH_TASK_ID=<id>.
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

// Kills the process group of every process whose environment contains the
// entry `marker` (e.g. "ORCH_SCHEDULER=7301/5"), found by scanning /proc:
// at scheduler start, everything a previous scheduler of the same database
// started is a leftover, including commands whose pid was never recorded.
// Never signals the caller's own group. Returns how many processes matched.
int kill_marked_processes(const std::string &marker);

}  // namespace orch
