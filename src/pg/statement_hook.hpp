// Statements that concern the schedulers, seen in every session (the
// library is preloaded):
// - CREATE / ALTER EXTENSION pg_orch, CREATE DATABASE (from a template that
//   may have it): the launcher starts the database's scheduler at commit;
// - DROP EXTENSION pg_orch: the scheduler is woken to find it gone and leave;
// - DROP DATABASE, ALTER DATABASE ... RENAME, CREATE DATABASE ... TEMPLATE:
//   the database is held (its scheduler leaves, none starts) until the
//   statement's transaction ends, so these never fail or wait because of
//   pg_orch's own connections.
#pragma once

namespace orch::pg {

void install_statement_hook();

}  // namespace orch::pg
