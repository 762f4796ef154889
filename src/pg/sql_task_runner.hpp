// sql tasks: each attempt runs in its own dynamic background worker, "pg_orch
// sql task", which the scheduler starts instead of spawning a command.
//
// The worker never shares its session with a privileged identity while any
// of the user's SQL exists in it (README, "Security"):
//   1. As the worker's own identity, before anything of the user's exists,
//      a first transaction checks that the attempt is still DISPATCHED,
//      reads what to run and records it RUNNING with the worker's pid.
//   2. The session becomes the creator's for good: session user and current
//      user, with SET ROLE and SET SESSION AUTHORIZATION refused (as in a
//      SECURITY DEFINER function), request.jwt.claims fixed to the creator's
//      claims and no other request.* setting allowed. A process created by
//      a superuser is refused rather than run as one.
//   3. A second transaction, as the creator, runs the statement in a
//      subtransaction (the run's input as $1 jsonb, the task's timeout),
//      fires the deferred triggers it queued and closes its cursors, then
//      records the outcome through orch._sql_task_finished, a SECURITY
//      DEFINER function that acts only for this worker at that moment. The
//      statement's effects and the task's completion commit together; a
//      failed statement is rolled back alone and recorded as the failure.
//
// The scheduler watches the worker through its handle: if the worker exits
// without recording the attempt (killed, crashed, stopped, timed out), the
// scheduler records it; orch._tasks_finished ignores that record when the
// worker got there first.
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
