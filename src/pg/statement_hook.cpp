#include "pg/statement_hook.hpp"

#include "pg/shared_state.hpp"

extern "C" {
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "utils/acl.h"
#include "utils/syscache.h"
#include "nodes/parsenodes.h"
}

namespace orch::pg {

namespace {

ProcessUtility_hook_type previous_hook = nullptr;

bool names_pg_orch(const char *name) { return name != nullptr && strcmp(name, "pg_orch") == 0; }

bool drops_pg_orch(const DropStmt *stmt) {
  if (stmt->removeType != OBJECT_EXTENSION) return false;
  ListCell *cell;
  foreach (cell, stmt->objects)
    if (names_pg_orch(strVal(lfirst(cell)))) return true;
  return false;
}

// Only the extension's owner (or a superuser) may drop it: anyone else's
// DROP fails anyway and must not stop the scheduler meanwhile.
bool may_drop_pg_orch() {
  Oid extension = get_extension_oid("pg_orch", true);
  if (!OidIsValid(extension)) return false;
#if PG_VERSION_NUM >= 160000
  return object_ownercheck(ExtensionRelationId, extension, GetUserId());
#else
  return pg_extension_ownercheck(extension, GetUserId());
#endif
}

bool owns_database(Oid database) {
#if PG_VERSION_NUM >= 160000
  return object_ownercheck(DatabaseRelationId, database, GetUserId());
#else
  return pg_database_ownercheck(database, GetUserId());
#endif
}

// Whether any role with CREATEDB may copy it (ALTER DATABASE ... IS_TEMPLATE).
bool is_template(Oid database) {
  HeapTuple tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(database));
  if (!HeapTupleIsValid(tuple)) return false;
  bool is_template = reinterpret_cast<Form_pg_database>(GETSTRUCT(tuple))->datistemplate;
  ReleaseSysCache(tuple);
  return is_template;
}

// The database a statement needs without other connections, if any: only
// for those PostgreSQL lets do it (its owner or a superuser; any role with
// CREATEDB for copying a template), as anyone else's statement fails anyway
// and must not stop the scheduler meanwhile.
Oid database_needed_alone(Node *stmt) {
  const char *name = nullptr;
  bool copy = IsA(stmt, CreatedbStmt);
  if (copy) {
    ListCell *cell;
    foreach (cell, castNode(CreatedbStmt, stmt)->options) {
      auto *option = lfirst_node(DefElem, cell);
      if (strcmp(option->defname, "template") == 0 && option->arg != nullptr) name = defGetString(option);
    }
  } else if (IsA(stmt, DropdbStmt))
    name = castNode(DropdbStmt, stmt)->dbname;
  else if (IsA(stmt, RenameStmt) && castNode(RenameStmt, stmt)->renameType == OBJECT_DATABASE)
    name = castNode(RenameStmt, stmt)->subname;
  Oid database = name != nullptr ? get_database_oid(name, true) : InvalidOid;
  if (!OidIsValid(database) || database == MyDatabaseId) return InvalidOid;
  bool allowed = owns_database(database) || (copy && is_template(database) && have_createdb_privilege());
  return allowed ? database : InvalidOid;
}

// Called by PostgreSQL with no C++ object alive in this frame: an ERROR may
// longjmp through it.
void statement_hook(PlannedStmt *pstmt, const char *query, bool read_only_tree, ProcessUtilityContext context,
                    ParamListInfo params, QueryEnvironment *env, DestReceiver *dest, QueryCompletion *qc) {
  Node *stmt = pstmt->utilityStmt;
  if (IsA(stmt, CreateExtensionStmt) && names_pg_orch(castNode(CreateExtensionStmt, stmt)->extname))
    start_scheduler_at_commit(MyDatabaseId);
  else if (IsA(stmt, AlterExtensionStmt) && names_pg_orch(castNode(AlterExtensionStmt, stmt)->extname))
    start_scheduler_at_commit(MyDatabaseId);
  else if (IsA(stmt, DropStmt) && drops_pg_orch(castNode(DropStmt, stmt))) {
    // The database's workers leave first and none starts until the DROP
    // has ended: one in the middle of a transaction takes the extension's
    // locks in another order than the DROP, and one of the two would fail
    // with a deadlock.
    if (may_drop_pg_orch()) hold_database(MyDatabaseId);
    wake_scheduler_at_commit(false);
  }
  else if (Oid database = database_needed_alone(stmt); OidIsValid(database))
    hold_database(database);
  if (previous_hook != nullptr)
    previous_hook(pstmt, query, read_only_tree, context, params, env, dest, qc);
  else
    standard_ProcessUtility(pstmt, query, read_only_tree, context, params, env, dest, qc);
  // A copy of a template that has the extension needs a scheduler too: the
  // launcher probes it.
  if (IsA(stmt, CreatedbStmt)) start_scheduler_at_commit(get_database_oid(castNode(CreatedbStmt, stmt)->dbname, true));
}

}  // namespace

void install_statement_hook() {
  previous_hook = ProcessUtility_hook;
  ProcessUtility_hook = statement_hook;
}

}  // namespace orch::pg
