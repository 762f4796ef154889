// Shared memory: where each database's scheduler can be woken. Sessions set
// the scheduler's latch when a transaction that started or stopped work
// commits, so the scheduler reacts within milliseconds without polling.
#pragma once

#include <cstdint>

#include "pg/postgres_headers.hpp"

namespace orch::pg {

void request_shared_state();  // from _PG_init: asks for the memory and hooks its set-up

// The scheduler of this database announces itself (and withdraws at exit).
void register_scheduler();
// Bumped by every committed wake-up (work may be new: runs, schedules).
std::uint32_t wake_generation();
// Bumped by every committed orch.stop(); the scheduler looks for stopped runs when it changes.
std::uint32_t stop_generation();

// From orch.start / orch.stop: wake the scheduler when this transaction commits.
void wake_scheduler_at_commit(bool stop_requested);

}  // namespace orch::pg
