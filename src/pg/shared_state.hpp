// Shared memory: how sessions, the launcher and each database's scheduler
// reach one another.
// - Sessions set a scheduler's latch when a transaction that started or
//   stopped work commits, so it reacts within milliseconds without polling.
// - Sessions and schedulers leave the launcher messages (the extension was
//   created or updated in a database; a scheduler found no extension).
// - DROP DATABASE, ALTER DATABASE ... RENAME and DROP EXTENSION hold their
//   database: its scheduler is asked to leave and none starts until the
//   statement's transaction ends.
#pragma once

#include <cstdint>
#include <vector>

#include "pg/postgres_headers.hpp"

namespace orch::pg {

void request_shared_state();  // from _PG_init: asks for the memory and hooks its set-up

// --- the scheduler of a database
// Announces itself (withdrawn at exit); false if its database is held.
bool register_scheduler();
// Bumped by every committed wake-up (work may be new: runs, schedules).
std::uint32_t wake_generation();
// Bumped by every committed orch.stop(); the scheduler looks for stopped runs when it changes.
std::uint32_t stop_generation();
// It exits because the extension is not installed (or is another version).
void tell_launcher_not_installed();

// --- sessions
// From orch.start / orch.stop, DROP EXTENSION: wake the scheduler at commit.
void wake_scheduler_at_commit(bool stop_requested);
// CREATE / ALTER EXTENSION pg_orch, CREATE DATABASE (its template may have
// the extension): ask the launcher for the database's scheduler at commit.
void start_scheduler_at_commit(Oid database);
// Holds a database until this transaction ends: its scheduler leaves (and
// with it its sql task workers) and no other starts meanwhile.
void hold_database(Oid database);

// --- the launcher
void register_launcher_latch();
struct LauncherMessages {
  std::vector<Oid> extension_changed;
  std::vector<Oid> not_installed;
  bool lost = false;  // some did not fit: look at every database again
};
LauncherMessages take_launcher_messages();
std::vector<Oid> held_databases();

}  // namespace orch::pg
