// Starting pg_orch's dynamic background workers (schedulers, sql task
// workers, pruners), one way: connected to a database, never restarted by
// the postmaster (their starter decides), and notifying their starter of
// their start and exit through its latch.
#pragma once

#include <cstddef>
#include <string>

#include "pg/postgres_headers.hpp"

namespace orch::pg {

// nullptr when no background worker slot is free (max_worker_processes).
// `extra` (at most BGW_EXTRALEN bytes) is copied into bgw_extra.
BackgroundWorkerHandle *start_worker(const char *function, const std::string &name, const char *type, Oid database,
                                     const void *extra = nullptr, std::size_t extra_size = 0);

// Whether the worker has exited (or never started).
bool worker_stopped(BackgroundWorkerHandle *handle);

// Re-reads the configuration if a SIGHUP asked for it; true if it did.
bool reload_config_if_asked();

// For the scheduler and the pruner, right after they connect: no user's
// object is ever found by name (a function in a writable public schema or a
// temporary type named like one of ours is never used), and the settings
// the workers depend on are theirs, whatever a database's owner set for
// the database (ALTER DATABASE ... SET default_transaction_read_only, say),
// and statements are planned once.
void pin_worker_settings();

}  // namespace orch::pg
