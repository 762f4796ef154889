// The launcher: one static background worker per cluster that starts the
// scheduler of the database named by orch.database_name once it exists, and
// starts it again if it exits (for example after DROP EXTENSION and CREATE
// EXTENSION). The scheduler does not depend on how it was started: it only
// takes a database oid.
#pragma once

#include "pg/postgres_headers.hpp"

namespace orch::pg {

void register_launcher();

}  // namespace orch::pg

extern "C" {
PGDLLEXPORT void orch_launcher_main(Datum);
}
