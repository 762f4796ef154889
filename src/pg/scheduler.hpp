// The scheduler: one background worker per database. It claims ready tasks,
// launches their commands through the core's ChildSupervisor, records what
// happened, and otherwise sleeps on its latch until an event: a session's
// start/stop committing, a child's output or exit, a timeout, a retry coming
// due. See README "How it works".
#pragma once

#include "pg/postgres_headers.hpp"

extern "C" {
PGDLLEXPORT void orch_scheduler_main(Datum database_oid);
}
