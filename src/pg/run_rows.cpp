// orch._write_run(): a started run's rows, the run and its tasks, written
// the way COPY writes rows: a heap insert, then the index entries, with no
// plan and no executor nodes.
//
// Why: an INSERT, even with its plan cached, builds every node's projection
// and tuple descriptor again at each call, about 1,000 instructions a
// column. A task row has 37 columns; the two INSERTs were two thirds of a
// start (bench/start_instructions, bench/README.md).
//
// What INSERT does and this does too: NOT NULL and CHECK constraints, domain
// checks, unique checks and partial-index predicates, TOAST. What it need
// not do: permissions and row level security (only orch._start_run calls
// it, as the extension's owner) and defaults (every NOT NULL column is
// given; a column added to orch.runs or orch.tasks must be given here).
// Triggers: these tables have none for INSERT; one added later is refused
// with an error, never skipped.
#include "pg/guards.hpp"

extern "C" {
#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "commands/sequence.h"
#include "executor/executor.h"
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

// The columns this file reads or writes, by table. Their numbers are looked
// up once per call site and again whenever the table's row type changes.
enum RunColumn { R_ID, R_PROCESS_ID, R_OWNER, R_STATUS, R_TRIGGERED_BY, R_CATCH_UP, R_INPUT_DATA, R_TOTAL_TASKS,
                 R_HAS_FAN_OUT, R_STARTED_AT, RUN_COLUMNS };
const char *const run_columns[] = {"id", "process_id", "owner", "status", "triggered_by", "catch_up",
                                   "input_data", "total_tasks", "has_fan_out", "started_at"};

// A task's definition, copied from orch.process_type_tasks into orch.tasks
// under the same names (the first COPIED of both lists)...
enum TaskColumn { T_TASK_INDEX, T_NAME, T_KIND, T_COMMAND, T_SHELL, T_SQL, T_WORKING_DIRECTORY, T_ENV, T_TIMEOUT,
                  T_MAX_RETRIES, T_RETRY_DELAY, T_RETRY_BACKOFF, T_DEPENDS_ON, T_USES_OUTPUTS, T_FAN_OUT,
                  T_MAX_PARALLEL, T_SLURM, COPIED,
                  // ... then what orch.tasks alone has ...
                  T_ID = COPIED, T_RUN_ID, T_PROCESS_ID, T_OWNER, T_TYPE, T_TYPE_VERSION, T_STATUS, T_READY_AT,
                  T_ATTEMPT, T_OUTPUT_TRUNCATED, TASK_COLUMNS,
                  // ... and what orch.process_type_tasks alone has.
                  D_HAS_PLACEHOLDERS = COPIED, D_TYPE, D_VERSION, DEFINITION_COLUMNS};
const char *const task_columns[] = {
    "task_index", "name", "kind", "command", "shell", "sql", "working_directory", "env", "timeout", "max_retries",
    "retry_delay", "retry_backoff", "depends_on", "uses_outputs", "fan_out", "max_parallel", "slurm",
    "id", "run_id", "process_id", "owner", "type", "type_version", "status", "ready_at", "attempt",
    "output_truncated"};
const char *const definition_columns[] = {
    "task_index", "name", "kind", "command", "shell", "sql", "working_directory", "env", "timeout", "max_retries",
    "retry_delay", "retry_backoff", "depends_on", "uses_outputs", "fan_out", "max_parallel", "slurm",
    "has_placeholders", "type", "version"};

struct ColumnNumbers {
  uint64 row_type_identifier;  // the table's row type, as the type cache last described it
  AttrNumber number[TASK_COLUMNS];
};

// Kept in the call site's fn_extra: the relations' OIDs and column numbers,
// the two enum labels, and the domain checks' caches.
struct CallSite {
  Oid runs, tasks, definitions, definitions_key, tasks_id_seq;
  ColumnNumbers run_numbers, task_numbers, definition_numbers;
  Datum run_in_progress, task_pending;
  void *triggered_by_check, *kind_check;
};

Oid relation_in_orch(const char *name) {
  Oid relid = get_relname_relid(name, get_namespace_oid("orch", false));
  if (!OidIsValid(relid)) elog(ERROR, "pg_orch: relation orch.%s does not exist", name);
  return relid;
}

// Fills numbers with the columns' numbers in rel, unless rel's row type is
// the one they were taken from.
void number_columns(Relation rel, const char *const *names, int count, ColumnNumbers *numbers) {
  TypeCacheEntry *row_type = lookup_type_cache(rel->rd_rel->reltype, TYPECACHE_TUPDESC);
  if (numbers->row_type_identifier == row_type->tupDesc_identifier) return;
  TupleDesc desc = RelationGetDescr(rel);
  for (int i = 0; i < count; ++i) {
    numbers->number[i] = InvalidAttrNumber;
    for (int a = 0; a < desc->natts; ++a) {
      Form_pg_attribute attribute = TupleDescAttr(desc, a);
      if (!attribute->attisdropped && strcmp(NameStr(attribute->attname), names[i]) == 0)
        numbers->number[i] = attribute->attnum;
    }
    if (numbers->number[i] == InvalidAttrNumber)
      elog(ERROR, "pg_orch: column %s.%s does not exist", RelationGetRelationName(rel), names[i]);
  }
  numbers->row_type_identifier = row_type->tupDesc_identifier;
}

CallSite *call_site(FunctionCallInfo fcinfo) {
  if (fcinfo->flinfo->fn_extra != nullptr) return static_cast<CallSite *>(fcinfo->flinfo->fn_extra);
  auto *site = static_cast<CallSite *>(MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(CallSite)));
  site->runs = relation_in_orch("runs");
  site->tasks = relation_in_orch("tasks");
  site->definitions = relation_in_orch("process_type_tasks");
  site->definitions_key = relation_in_orch("process_type_tasks_pkey");
  site->tasks_id_seq = relation_in_orch("tasks_id_seq");
  fcinfo->flinfo->fn_extra = site;
  return site;
}

// A table being written to: its indexes open, a slot for its rows.
struct Target {
  Relation rel;
  ResultRelInfo *info;
  TupleTableSlot *slot;
};

Target open_target(Oid relid) {
  Relation rel = table_open(relid, RowExclusiveLock);
  TriggerDesc *triggers = rel->trigdesc;
  if (triggers != nullptr &&
      (triggers->trig_insert_before_row || triggers->trig_insert_after_row || triggers->trig_insert_instead_row ||
       triggers->trig_insert_before_statement || triggers->trig_insert_after_statement))
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("pg_orch does not support INSERT triggers on orch.%s", RelationGetRelationName(rel)),
                    errhint("Drop the trigger: pg_orch writes the rows of a started run without firing them.")));
  ResultRelInfo *info = makeNode(ResultRelInfo);
  InitResultRelInfo(info, rel, 0, nullptr, 0);
  ExecOpenIndices(info, false);
  TupleTableSlot *slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsVirtual);
  return Target{rel, info, slot};
}

// The value of enum column `number` (a status) labelled `label`.
Datum enum_value(Target &target, AttrNumber number, const char *label) {
  Oid type = TupleDescAttr(RelationGetDescr(target.rel), number - 1)->atttypid;
  return DirectFunctionCall2(enum_in, CStringGetDatum(label), ObjectIdGetDatum(type));
}

// Clears the slot for a row: every column NULL.
void clear_row(Target &target) {
  ExecClearTuple(target.slot);
  memset(target.slot->tts_isnull, true, sizeof(bool) * RelationGetDescr(target.rel)->natts);
}

void set_column(Target &target, AttrNumber number, Datum value) {
  target.slot->tts_values[number - 1] = value;
  target.slot->tts_isnull[number - 1] = false;
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
  if (target.info->ri_NumIndices > 0)
#if PG_VERSION_NUM >= 160000
    ExecInsertIndexTuples(target.info, slot, estate, false, false, nullptr, NIL, false);
#else
    ExecInsertIndexTuples(target.info, slot, estate, false, false, nullptr, NIL);
#endif
}

void close_target(Target &target) {
  ExecCloseIndices(target.info);
  ExecDropSingleTupleTableSlot(target.slot);
  table_close(target.rel, NoLock);  // the lock is kept until the transaction ends, as INSERT keeps it
}

Datum checked(FunctionCallInfo fcinfo, Datum value, Oid domain, void **cache) {
  domain_check(value, false, domain, cache, fcinfo->flinfo->fn_mcxt);
  return value;
}

// Writes the run and, from its type version's tasks, its tasks: placeholders
// substituted from the input, ready at started_at if they wait for nothing
// (a fan-out waits for orch._advance_runs). Returns how many tasks it
// wrote. Plain C inside pg_call.
int write_run(FunctionCallInfo fcinfo) {
  for (int i = 0; i < PG_NARGS(); ++i)
    if (PG_ARGISNULL(i)) elog(ERROR, "pg_orch: orch._write_run's argument %d is null", i + 1);
  CallSite *site = call_site(fcinfo);
  Datum run_id = PG_GETARG_DATUM(0), process_id = PG_GETARG_DATUM(1), owner = PG_GETARG_DATUM(2),
        type = PG_GETARG_DATUM(3), type_version = PG_GETARG_DATUM(4), input = PG_GETARG_DATUM(5),
        triggered_by = PG_GETARG_DATUM(6), catch_up = PG_GETARG_DATUM(7), total_tasks = PG_GETARG_DATUM(8),
        has_fan_out = PG_GETARG_DATUM(9), started_at = PG_GETARG_DATUM(10);
  EState *estate = CreateExecutorState();

  Target runs = open_target(site->runs);
  number_columns(runs.rel, run_columns, RUN_COLUMNS, &site->run_numbers);
  const AttrNumber *r = site->run_numbers.number;
  if (site->run_in_progress == 0) site->run_in_progress = enum_value(runs, r[R_STATUS], "IN_PROGRESS");
  clear_row(runs);
  set_column(runs, r[R_ID], run_id);
  set_column(runs, r[R_PROCESS_ID], process_id);
  set_column(runs, r[R_OWNER], owner);
  set_column(runs, r[R_STATUS], site->run_in_progress);
  set_column(runs, r[R_TRIGGERED_BY],
             checked(fcinfo, triggered_by, TupleDescAttr(RelationGetDescr(runs.rel), r[R_TRIGGERED_BY] - 1)->atttypid,
                     &site->triggered_by_check));
  set_column(runs, r[R_CATCH_UP], catch_up);
  set_column(runs, r[R_INPUT_DATA], input);
  set_column(runs, r[R_TOTAL_TASKS], total_tasks);
  set_column(runs, r[R_HAS_FAN_OUT], has_fan_out);
  set_column(runs, r[R_STARTED_AT], started_at);
  insert_row(runs, estate);
  close_target(runs);

  Target tasks = open_target(site->tasks);
  number_columns(tasks.rel, task_columns, TASK_COLUMNS, &site->task_numbers);
  const AttrNumber *t = site->task_numbers.number;
  TupleDesc task_desc = RelationGetDescr(tasks.rel);
  if (site->task_pending == 0) site->task_pending = enum_value(tasks, t[T_STATUS], "PENDING");
  Oid kind_domain = TupleDescAttr(task_desc, t[T_KIND] - 1)->atttypid;

  Relation definitions = table_open(site->definitions, AccessShareLock);
  number_columns(definitions, definition_columns, DEFINITION_COLUMNS, &site->definition_numbers);
  const AttrNumber *d = site->definition_numbers.number;
  TupleDesc definition_desc = RelationGetDescr(definitions);
  Datum *definition = static_cast<Datum *>(palloc(sizeof(Datum) * definition_desc->natts));
  bool *definition_null = static_cast<bool *>(palloc(sizeof(bool) * definition_desc->natts));
  ScanKeyData key[2];
  ScanKeyInit(&key[0], d[D_TYPE], BTEqualStrategyNumber, F_TEXTEQ, type);
  ScanKeyInit(&key[1], d[D_VERSION], BTEqualStrategyNumber, F_INT4EQ, type_version);
  Snapshot snapshot = ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot();
  SysScanDesc scan = systable_beginscan(definitions, site->definitions_key, true, snapshot, 2, key);
  MemoryContext per_row = GetPerTupleMemoryContext(estate);
  int written = 0;
  for (HeapTuple row; HeapTupleIsValid(row = systable_getnext(scan));) {
    MemoryContext caller = MemoryContextSwitchTo(per_row);
    heap_deform_tuple(row, definition_desc, definition, definition_null);
    clear_row(tasks);
    for (int c = 0; c < COPIED; ++c) {
      if (definition_null[d[c] - 1]) continue;
      set_column(tasks, t[c], definition[d[c] - 1]);
    }
    Datum *command = &tasks.slot->tts_values[t[T_COMMAND] - 1];
    bool fans_out = !definition_null[d[T_FAN_OUT] - 1];
    if (DatumGetBool(definition[d[D_HAS_PLACEHOLDERS] - 1]) && !tasks.slot->tts_isnull[t[T_COMMAND] - 1])
      *command = DirectFunctionCall5(orch_substitute_placeholders, *command, input, definition[d[T_NAME] - 1],
                                     BoolGetDatum(fans_out), definition[d[T_KIND] - 1]);
    checked(fcinfo, definition[d[T_KIND] - 1], kind_domain, &site->kind_check);
    set_column(tasks, t[T_ID], Int64GetDatum(nextval_internal(site->tasks_id_seq, false)));
    set_column(tasks, t[T_RUN_ID], run_id);
    set_column(tasks, t[T_PROCESS_ID], process_id);
    set_column(tasks, t[T_OWNER], owner);
    set_column(tasks, t[T_TYPE], type);
    set_column(tasks, t[T_TYPE_VERSION], type_version);
    set_column(tasks, t[T_STATUS], site->task_pending);
    ArrayType *depends_on = DatumGetArrayTypeP(definition[d[T_DEPENDS_ON] - 1]);
    if (ArrayGetNItems(ARR_NDIM(depends_on), ARR_DIMS(depends_on)) == 0 && !fans_out)
      set_column(tasks, t[T_READY_AT], started_at);
    set_column(tasks, t[T_ATTEMPT], Int32GetDatum(0));
    set_column(tasks, t[T_OUTPUT_TRUNCATED], BoolGetDatum(false));
    insert_row(tasks, estate);
    ++written;
    MemoryContextSwitchTo(caller);
    ResetPerTupleExprContext(estate);
  }
  systable_endscan(scan);
  table_close(definitions, AccessShareLock);
  close_target(tasks);
  FreeExecutorState(estate);
  return written;
}

}  // namespace
}  // namespace orch::pg

extern "C" Datum orch_write_run(PG_FUNCTION_ARGS) {
  return orch::pg::cpp_entry([&] {
    return Int32GetDatum(orch::pg::pg_call([&] { return orch::pg::write_run(fcinfo); }));
  });
}
