// orch._write_run(): a started run's rows, the run and its tasks, written
// the way COPY writes rows: a heap insert, then the index entries, with no
// plan and no executor nodes.
//
// Why: an INSERT, even with its plan cached, builds every node's projection
// and tuple descriptor again at each call, about 1,000 instructions a
// column. A task row has 37 columns; the task's INSERT alone was a third of
// a start (bench/start_instructions, bench/README.md).
//
// What INSERT does and this does too: NOT NULL and CHECK constraints, domain
// checks, unique checks and partial-index predicates, TOAST. What it need
// not do: permissions and row level security (only orch._start_run calls
// it, as the extension's owner). What it refuses rather than skip: INSERT
// triggers and rules, and a column it does not fill that has a default, is
// generated or is an identity (a column added to orch.runs or orch.tasks
// must be filled here).
#include "pg/guards.hpp"

extern "C" {
#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "commands/sequence.h"
#include "rewrite/prs2lock.h"
#include "utils/array.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/typcache.h"

PG_FUNCTION_INFO_V1(orch_write_run);
Datum orch_substitute_placeholders(PG_FUNCTION_ARGS);
}

namespace orch::pg {
namespace {

// The columns this file reads or writes, by table, with the (base) type
// each must have as it uses them (InvalidOid: checked otherwise; a column
// copied from orch.process_type_tasks must have the same type in both).
enum RunColumn {
  R_ID,
  R_PROCESS_ID,
  R_OWNER,
  R_STATUS,
  R_TRIGGERED_BY,
  R_CATCH_UP,
  R_INPUT_DATA,
  R_TOTAL_TASKS,
  R_HAS_FAN_OUT,
  R_STARTED_AT,
  RUN_COLUMNS
};
const char *const run_columns[] = {"id",       "process_id", "owner",       "status",      "triggered_by",
                                   "catch_up", "input_data", "total_tasks", "has_fan_out", "started_at"};
const Oid run_types[] = {INT8OID, TEXTOID,  TEXTOID, InvalidOid, TEXTOID,
                         BOOLOID, JSONBOID, INT4OID, BOOLOID,    TIMESTAMPTZOID};

// A task's definition, copied from orch.process_type_tasks into orch.tasks
// under the same names (the first COPIED of both lists)...
enum TaskColumn {
  T_TASK_INDEX,
  T_NAME,
  T_KIND,
  T_COMMAND,
  T_SHELL,
  T_SQL,
  T_WORKING_DIRECTORY,
  T_ENV,
  T_TIMEOUT,
  T_MAX_RETRIES,
  T_RETRY_DELAY,
  T_RETRY_BACKOFF,
  T_DEPENDS_ON,
  T_USES_OUTPUTS,
  T_FAN_OUT,
  T_MAX_PARALLEL,
  T_SLURM,
  COPIED,
  // ... then what orch.tasks alone has ...
  T_ID = COPIED,
  T_RUN_ID,
  T_PROCESS_ID,
  T_OWNER,
  T_TYPE,
  T_TYPE_VERSION,
  T_STATUS,
  T_READY_AT,
  T_ATTEMPT,
  T_OUTPUT_TRUNCATED,
  TASK_COLUMNS,
  // ... and what orch.process_type_tasks alone has.
  D_HAS_PLACEHOLDERS = COPIED,
  D_TYPE,
  D_VERSION,
  DEFINITION_COLUMNS
};
#define COPIED_NAMES                                                                                             \
  "task_index", "name", "kind", "command", "shell", "sql", "working_directory", "env", "timeout", "max_retries", \
      "retry_delay", "retry_backoff", "depends_on", "uses_outputs", "fan_out", "max_parallel", "slurm"
const char *const task_columns[] = {COPIED_NAMES,   "id",     "run_id",   "process_id", "owner",           "type",
                                    "type_version", "status", "ready_at", "attempt",    "output_truncated"};
const Oid task_types[] = {InvalidOid, InvalidOid,     InvalidOid, InvalidOid, InvalidOid, InvalidOid,
                          InvalidOid, InvalidOid,     InvalidOid, InvalidOid, InvalidOid, InvalidOid,
                          InvalidOid, InvalidOid,     InvalidOid, InvalidOid, InvalidOid,  // copied
                          INT8OID,    INT8OID,        TEXTOID,    TEXTOID,    TEXTOID,    INT4OID,
                          InvalidOid, TIMESTAMPTZOID, INT4OID,    BOOLOID};
const char *const definition_columns[] = {COPIED_NAMES, "has_placeholders", "type", "version"};
const Oid definition_types[] = {INT4OID,    TEXTOID,    TEXTOID,    TEXTARRAYOID, InvalidOid, InvalidOid,   InvalidOid,
                                InvalidOid, InvalidOid, InvalidOid, InvalidOid,   InvalidOid, INT4ARRAYOID, InvalidOid,
                                JSONBOID,   InvalidOid, InvalidOid, BOOLOID,      TEXTOID,    INT4OID};
static_assert(sizeof(run_columns) / sizeof(*run_columns) == RUN_COLUMNS &&
              sizeof(run_types) / sizeof(*run_types) == RUN_COLUMNS);
static_assert(sizeof(task_columns) / sizeof(*task_columns) == TASK_COLUMNS &&
              sizeof(task_types) / sizeof(*task_types) == TASK_COLUMNS);
static_assert(sizeof(definition_columns) / sizeof(*definition_columns) == DEFINITION_COLUMNS &&
              sizeof(definition_types) / sizeof(*definition_types) == DEFINITION_COLUMNS);

// A table's columns as this file uses them, taken from the type cache's
// description of its row type and taken again whenever that changes.
struct Columns {
  uint64 row_type;  // the type cache's identifier of the row type they were taken from
  AttrNumber number[TASK_COLUMNS];
  Oid type[TASK_COLUMNS];
  bool is_domain[TASK_COLUMNS];
  void *domain_check[TASK_COLUMNS];  // domain_check()'s cache
};

// Kept in the call site's fn_extra: the relations' OIDs, their columns, the
// status values and the task id sequence.
struct CallSite {
  Oid runs, tasks, definitions, definitions_key;
  Columns run_columns, task_columns, definition_columns;
  Datum run_in_progress, task_pending;
  Oid tasks_id_seq;
  MemoryContext memory;  // fn_mcxt
};

Oid relation_in_orch(const char *name) {
  Oid relid = get_relname_relid(name, get_namespace_oid("orch", false));
  if (!OidIsValid(relid)) elog(ERROR, "pg_orch: relation orch.%s does not exist", name);
  return relid;
}

// Takes rel's columns `names` into columns unless its row type is unchanged
// since; returns whether it took them. With `writing`, refuses a column
// left out that INSERT would fill (a default, generated, an identity).
bool take_columns(Relation rel, const char *const *names, const Oid *types, int count, bool writing, Columns *columns) {
  TypeCacheEntry *row_type = lookup_type_cache(rel->rd_rel->reltype, TYPECACHE_TUPDESC);
  if (columns->row_type == row_type->tupDesc_identifier) return false;
  TupleDesc desc = RelationGetDescr(rel);
  for (int i = 0; i < count; ++i) columns->number[i] = InvalidAttrNumber;
  for (int a = 0; a < desc->natts; ++a) {
    Form_pg_attribute attribute = TupleDescAttr(desc, a);
    if (attribute->attisdropped) continue;
    int i = 0;
    while (i < count && strcmp(NameStr(attribute->attname), names[i]) != 0) ++i;
    if (i == count) {
      if (writing && (attribute->atthasdef || attribute->attgenerated || attribute->attidentity))
        elog(ERROR, "pg_orch: column %s.%s has a default that a start would not apply", RelationGetRelationName(rel),
             NameStr(attribute->attname));
      continue;
    }
    Oid base = getBaseType(attribute->atttypid);
    if (types[i] != InvalidOid && base != types[i])
      elog(ERROR, "pg_orch: column %s.%s has type %s", RelationGetRelationName(rel), names[i],
           format_type_be(attribute->atttypid));
    columns->number[i] = attribute->attnum;
    columns->type[i] = attribute->atttypid;
    columns->is_domain[i] = base != attribute->atttypid;
    columns->domain_check[i] = nullptr;
  }
  for (int i = 0; i < count; ++i)
    if (columns->number[i] == InvalidAttrNumber)
      elog(ERROR, "pg_orch: column %s.%s does not exist", RelationGetRelationName(rel), names[i]);
  columns->row_type = row_type->tupDesc_identifier;
  return true;
}

CallSite *call_site(FunctionCallInfo fcinfo) {
  if (fcinfo->flinfo->fn_extra != nullptr) return static_cast<CallSite *>(fcinfo->flinfo->fn_extra);
  auto *site = static_cast<CallSite *>(MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(CallSite)));
  site->runs = relation_in_orch("runs");
  site->tasks = relation_in_orch("tasks");
  site->definitions = relation_in_orch("process_type_tasks");
  site->definitions_key = relation_in_orch("process_type_tasks_pkey");
  site->memory = fcinfo->flinfo->fn_mcxt;
  fcinfo->flinfo->fn_extra = site;
  return site;
}

// A table being written to: its indexes open, a slot for its rows.
struct Target {
  Relation rel;
  ResultRelInfo *info;
  TupleTableSlot *slot;
  Columns *columns;
  MemoryContext memory;  // for the domain checks' caches
};

Target open_target(Oid relid, CallSite *site, Columns *columns) {
  Relation rel = table_open(relid, RowExclusiveLock);
  TriggerDesc *triggers = rel->trigdesc;
  bool rule = false;
  for (int i = 0; rel->rd_rules != nullptr && i < rel->rd_rules->numLocks; ++i)
    rule = rule || rel->rd_rules->rules[i]->event == CMD_INSERT;
  if (rule || (triggers != nullptr && (triggers->trig_insert_before_row || triggers->trig_insert_after_row ||
                                       triggers->trig_insert_instead_row || triggers->trig_insert_before_statement ||
                                       triggers->trig_insert_after_statement)))
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("pg_orch does not support INSERT %s on orch.%s", rule ? "rules" : "triggers",
                           RelationGetRelationName(rel)),
                    errhint("Drop it: pg_orch writes the rows of a started run without INSERT.")));
  ResultRelInfo *info = makeNode(ResultRelInfo);
  InitResultRelInfo(info, rel, 0, nullptr, 0);
  ExecOpenIndices(info, false);
  TupleTableSlot *slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsVirtual);
  return Target{rel, info, slot, columns, site->memory};
}

// The value of enum column `column` (a status) labelled `label`.
Datum enum_value(const Target &target, int column, const char *label) {
  return DirectFunctionCall2(enum_in, CStringGetDatum(label), ObjectIdGetDatum(target.columns->type[column]));
}

// Clears the slot for a row: every column NULL.
void clear_row(Target &target) {
  ExecClearTuple(target.slot);
  memset(target.slot->tts_isnull, true, sizeof(bool) * RelationGetDescr(target.rel)->natts);
}

void set_column(Target &target, int column, Datum value) {
  Columns *columns = target.columns;
  if (columns->is_domain[column])
    domain_check(value, false, columns->type[column], &columns->domain_check[column], target.memory);
  target.slot->tts_values[columns->number[column] - 1] = value;
  target.slot->tts_isnull[columns->number[column] - 1] = false;
}

void insert_row(Target &target, EState *estate) {
  TupleTableSlot *slot = ExecStoreVirtualTuple(target.slot);
  TupleDesc desc = RelationGetDescr(target.rel);
  for (int a = 0; a < desc->natts; ++a)
    if (TupleDescAttr(desc, a)->attnotnull && slot->tts_isnull[a])
      elog(ERROR, "pg_orch: a started run's row in %s has no value for %s", RelationGetRelationName(target.rel),
           NameStr(TupleDescAttr(desc, a)->attname));
  if (desc->constr != nullptr && desc->constr->num_check > 0) ExecConstraints(target.info, slot, estate);
  table_tuple_insert(target.rel, slot, GetCurrentCommandId(true), 0, nullptr);
  if (target.info->ri_NumIndices > 0) insert_index_entries(target.info, slot, estate);
}

void close_target(Target &target) {
  ExecCloseIndices(target.info);
  ExecDropSingleTupleTableSlot(target.slot);
  table_close(target.rel, NoLock);  // the lock is kept until the transaction ends, as INSERT keeps it
}

// Writes the run and, from its type version's tasks, its tasks: placeholders
// substituted from the input, ready at started_at if they wait for nothing
// (a fan-out waits for orch._advance_runs). Returns how many tasks it
// wrote. Plain C inside pg_call.
int write_run(FunctionCallInfo fcinfo) {
  for (int i = 0; i < PG_NARGS(); ++i)
    if (PG_ARGISNULL(i)) elog(ERROR, "pg_orch: orch._write_run's argument %d is null", i + 1);
  if (!ActiveSnapshotSet()) elog(ERROR, "pg_orch: orch._write_run needs an active snapshot");
  CallSite *site = call_site(fcinfo);
  Datum run_id = PG_GETARG_DATUM(0), process_id = PG_GETARG_DATUM(1), owner = PG_GETARG_DATUM(2),
        type = PG_GETARG_DATUM(3), type_version = PG_GETARG_DATUM(4), input = PG_GETARG_DATUM(5),
        triggered_by = PG_GETARG_DATUM(6), catch_up = PG_GETARG_DATUM(7), total_tasks = PG_GETARG_DATUM(8),
        has_fan_out = PG_GETARG_DATUM(9), started_at = PG_GETARG_DATUM(10);
  EState *estate = CreateExecutorState();

  Target runs = open_target(site->runs, site, &site->run_columns);
  if (take_columns(runs.rel, run_columns, run_types, RUN_COLUMNS, true, runs.columns))
    site->run_in_progress = enum_value(runs, R_STATUS, "IN_PROGRESS");
  clear_row(runs);
  set_column(runs, R_ID, run_id);
  set_column(runs, R_PROCESS_ID, process_id);
  set_column(runs, R_OWNER, owner);
  set_column(runs, R_STATUS, site->run_in_progress);
  set_column(runs, R_TRIGGERED_BY, triggered_by);
  set_column(runs, R_CATCH_UP, catch_up);
  set_column(runs, R_INPUT_DATA, input);
  set_column(runs, R_TOTAL_TASKS, total_tasks);
  set_column(runs, R_HAS_FAN_OUT, has_fan_out);
  set_column(runs, R_STARTED_AT, started_at);
  insert_row(runs, estate);
  close_target(runs);

  Target tasks = open_target(site->tasks, site, &site->task_columns);
  Relation definitions = table_open(site->definitions, AccessShareLock);
  bool tasks_changed = take_columns(tasks.rel, task_columns, task_types, TASK_COLUMNS, true, tasks.columns);
  if (take_columns(definitions, definition_columns, definition_types, DEFINITION_COLUMNS, false,
                   &site->definition_columns) ||
      tasks_changed) {
    site->task_pending = enum_value(tasks, T_STATUS, "PENDING");
    site->tasks_id_seq = identity_sequence(tasks.rel, tasks.columns->number[T_ID]);
    for (int c = 0; c < COPIED; ++c) {
      Oid from = site->definition_columns.type[c], to = tasks.columns->type[c];
      if (getBaseType(from) != getBaseType(to))
        elog(ERROR, "pg_orch: column %s has type %s in orch.process_type_tasks and %s in orch.tasks", task_columns[c],
             format_type_be(from), format_type_be(to));
    }
  }
  const AttrNumber *d = site->definition_columns.number;
  TupleDesc definition_desc = RelationGetDescr(definitions);
  Datum *definition = static_cast<Datum *>(palloc(sizeof(Datum) * definition_desc->natts));
  bool *definition_null = static_cast<bool *>(palloc(sizeof(bool) * definition_desc->natts));
  // Compared as the key's index compares them: with the column's collation.
  ScanKeyData key[2];
  ScanKeyEntryInitialize(&key[0], 0, d[D_TYPE], BTEqualStrategyNumber, InvalidOid,
                         TupleDescAttr(definition_desc, d[D_TYPE] - 1)->attcollation, F_TEXTEQ, type);
  ScanKeyEntryInitialize(&key[1], 0, d[D_VERSION], BTEqualStrategyNumber, InvalidOid, InvalidOid, F_INT4EQ,
                         type_version);
  SysScanDesc scan = systable_beginscan(definitions, site->definitions_key, true, GetActiveSnapshot(), 2, key);
  MemoryContext per_row = GetPerTupleMemoryContext(estate);
  int written = 0;
  for (HeapTuple row; HeapTupleIsValid(row = systable_getnext(scan));) {
    MemoryContext caller = MemoryContextSwitchTo(per_row);
    heap_deform_tuple(row, definition_desc, definition, definition_null);
    clear_row(tasks);
    for (int c = 0; c < COPIED; ++c)
      if (!definition_null[d[c] - 1]) set_column(tasks, c, definition[d[c] - 1]);
    bool fans_out = !definition_null[d[T_FAN_OUT] - 1];
    if (DatumGetBool(definition[d[D_HAS_PLACEHOLDERS] - 1]) && !definition_null[d[T_COMMAND] - 1])
      set_column(tasks, T_COMMAND,
                 DirectFunctionCall5(orch_substitute_placeholders, definition[d[T_COMMAND] - 1], input,
                                     definition[d[T_NAME] - 1], BoolGetDatum(fans_out), definition[d[T_KIND] - 1]));
    set_column(tasks, T_ID, Int64GetDatum(nextval_internal(site->tasks_id_seq, false)));
    set_column(tasks, T_RUN_ID, run_id);
    set_column(tasks, T_PROCESS_ID, process_id);
    set_column(tasks, T_OWNER, owner);
    set_column(tasks, T_TYPE, type);
    set_column(tasks, T_TYPE_VERSION, type_version);
    set_column(tasks, T_STATUS, site->task_pending);
    ArrayType *depends_on = DatumGetArrayTypeP(definition[d[T_DEPENDS_ON] - 1]);
    if (ArrayGetNItems(ARR_NDIM(depends_on), ARR_DIMS(depends_on)) == 0 && !fans_out)
      set_column(tasks, T_READY_AT, started_at);
    set_column(tasks, T_ATTEMPT, Int32GetDatum(0));
    set_column(tasks, T_OUTPUT_TRUNCATED, BoolGetDatum(false));
    insert_row(tasks, estate);
    ++written;
    MemoryContextSwitchTo(caller);
    ResetPerTupleExprContext(estate);
  }
  systable_endscan(scan);
  table_close(definitions, NoLock);  // kept until the transaction ends, as INSERT ... SELECT keeps it
  close_target(tasks);
  FreeExecutorState(estate);
  return written;
}

}  // namespace
}  // namespace orch::pg

extern "C" Datum orch_write_run(PG_FUNCTION_ARGS) {
  return orch::pg::cpp_entry(
      [&] { return Int32GetDatum(orch::pg::pg_call([&] { return orch::pg::write_run(fcinfo); })); });
}
