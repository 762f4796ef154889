// The pruner: a short-lived background worker that a database's scheduler
// starts when it is idle and expired history may be due. It prunes batch
// after batch (orch._prune_batch: at most 1,000 rows per transaction),
// resting three times as long as the last batch took and while runs are
// being started (at most 10 s), and exits when a batch finds nothing or on
// SIGTERM (its scheduler's exit sends one). It is a process of its own so
// that no batch ever delays the scheduler's work.
#pragma once

#include "pg/postgres_headers.hpp"

namespace orch::pg {

// nullptr when no background worker slot is free.
BackgroundWorkerHandle *start_pruner();

}  // namespace orch::pg

extern "C" {
PGDLLEXPORT void orch_pruner_main(Datum);
}
