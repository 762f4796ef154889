// sql tasks: each attempt runs in its own dynamic background worker, "pg_orch
// sql task", which the scheduler starts instead of spawning a command.
//
// The runner connects to the scheduler's database and, in one transaction,
// checks that the attempt is still DISPATCHED, records it RUNNING with its
// pid, runs the task's SQL in a subtransaction as the role that created the
// process (with that role's JWT claims, the run's input as $1 jsonb and the
// task's timeout), and records the outcome. The SQL's effects and the task's
// completion commit together; a failed statement is rolled back alone and
// recorded as the attempt's failure. The user's SQL cannot leave the
// creator's identity: SET ROLE, RESET ROLE and SET SESSION AUTHORIZATION are
// refused (as in a SECURITY DEFINER function), request.jwt.claims cannot be
// changed and no other request.* setting can be made up, and a process
// created by a superuser is refused rather than run as one.
//
// The scheduler watches the worker through its handle: if the worker exits
// without recording the attempt (killed, crashed, stopped, timed out), the
// scheduler records it; orch._tasks_finished ignores that record when the
// runner got there first.
#pragma once

#include <cstdint>

#include "pg/postgres_headers.hpp"

namespace orch::pg {

// Registers the worker for one attempt of an sql task of this database; its
// start and exit set the caller's latch. nullptr when no worker slot is free
// (max_worker_processes). The handle is allocated in TopMemoryContext.
BackgroundWorkerHandle *start_sql_task_worker(std::uint64_t task_id, int attempt);

// The task whose outcome this worker is recording right now, else 0.
std::int64_t recording_task_id();

}  // namespace orch::pg

extern "C" {
PGDLLEXPORT void orch_sql_task_main(Datum database_oid);
}
