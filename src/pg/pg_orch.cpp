// Module entry: settings, shared memory, the statement hook and the launcher worker.
// (In src/pg, core headers are included before PostgreSQL's: see core/cpp_only.hpp.)
#include "pg/launcher.hpp"
#include "pg/settings.hpp"
#include "pg/shared_state.hpp"
#include "pg/statement_hook.hpp"

extern "C" {
PG_MODULE_MAGIC;
void _PG_init(void);
}

extern "C" void _PG_init(void) {
  orch::pg::define_settings();
  // The workers and the shared memory that wakes them exist only when the
  // library is preloaded; without it the SQL functions still work and runs
  // wait for a server started with shared_preload_libraries = 'pg_orch'.
  if (!process_shared_preload_libraries_in_progress) return;
  orch::pg::request_shared_state();
  orch::pg::install_statement_hook();
  orch::pg::register_launcher();
}
