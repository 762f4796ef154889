// The launcher: one static background worker per cluster that keeps a
// scheduler in every database where pg_orch is installed. Which database
// gets one when is decided by core/scheduler_roster; the launcher reads the
// catalog and its messages (shared_state.hpp) and starts the workers. The
// scheduler does not depend on how it was started: it only takes a
// database oid.
#pragma once

#include "pg/postgres_headers.hpp"

namespace orch::pg {

void register_launcher();

}  // namespace orch::pg

extern "C" {
PGDLLEXPORT void orch_launcher_main(Datum);
}
