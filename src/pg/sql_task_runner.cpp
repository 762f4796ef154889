// Core headers come first: they refuse to be included after postgres.h.
#include "core/error.hpp"
#include "core/interval.hpp"
#include "core/task_records.hpp"

#include <algorithm>
#include <climits>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pg/background_worker.hpp"
#include "pg/guards.hpp"
#include "pg/identity.hpp"
#include "pg/settings.hpp"
#include "pg/spi.hpp"
#include "pg/sql_task_runner.hpp"

extern "C" {
#include "access/table.h"
#include "funcapi.h"
#include "catalog/pg_db_role_setting.h"
#include "mb/pg_wchar.h"
#include "nodes/params.h"
#include "parser/parse_param.h"
#include "tcop/dest.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/backend_status.h"
#include "utils/timeout.h"

PG_FUNCTION_INFO_V1(orch_sql_task_recording);
}

namespace orch::pg {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

// What the scheduler passes to the worker in bgw_extra.
struct SqlTaskArgs {
  std::int64_t task_id;
  std::int32_t attempt;
};
static_assert(sizeof(SqlTaskArgs) <= BGW_EXTRALEN, "bgw_extra too small");

// The attempt, if it is still the one the scheduler dispatched, with what
// running it needs. Locks the task row: the scheduler's records of it wait
// for this transaction, then find it recorded.
constexpr const char *kContextQuery = R"SQL(
  SELECT r.status = 'IN_PROGRESS' AS run_in_progress, c.sql, c.input_data::pg_catalog.text AS input,
         c.role_name AS role, c.jwt_claims::pg_catalog.text AS claims, c.timeout_ms, c.outputs::pg_catalog.text AS outputs
  FROM orch.tasks t JOIN orch.runs r ON r.id = t.run_id CROSS JOIN LATERAL orch._sql_task_context(t.id) c
  WHERE t.id = $1::pg_catalog.int8 AND t.status = 'DISPATCHED' AND t.attempt = $2::pg_catalog.int4
  FOR UPDATE OF t
)SQL";

// The attempt's id while this worker records its outcome through
// orch._sql_task_finished, which refuses any other caller: the user's
// statement, which runs in this same session, never sees it set.
std::int64_t recording_task = 0;

// ---------------------------------------------------------------------------
// The creator's JWT claims, fixed for the life of the worker.
//
// request.jwt.claims is defined here (in this worker only) with the claims
// as its boot value and a check hook that refuses any other value, so the
// user's SQL cannot take on someone else's "sub" with SET or set_config(),
// and RESET gives the claims back. Every other request.* name is reserved,
// so PostgREST's legacy per-claim settings (request.jwt.claim.sub, read by
// Supabase's auth.uid()) cannot be made up either.

char *jwt_claims_value = nullptr;
char *jwt_claims_fixed = nullptr;  // the only value allowed; also the GUC's boot value, so never freed

bool check_jwt_claims(char **newval, void **, GucSource) {
  return cpp_entry([&] {
    const char *value = *newval ? *newval : "";
    if (strcmp(value, jwt_claims_fixed) == 0) return true;
    pg_call([] {
      GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
      GUC_check_errmsg("request.jwt.claims cannot be changed in a pg_orch sql task");
      GUC_check_errdetail("The task runs with the JWT claims of the process's creator.");
    });
    return false;
  });
}

void fix_jwt_claims(const std::string &claims) {
  jwt_claims_fixed = strdup(claims.c_str());
  if (jwt_claims_fixed == nullptr) throw std::bad_alloc();
  pg_call([] {
    DefineCustomStringVariable("request.jwt.claims", "JWT claims of the sql task's creator.", nullptr,
                               &jwt_claims_value, jwt_claims_fixed, PGC_USERSET, GUC_NO_RESET_ALL | GUC_NOT_IN_SAMPLE,
                               check_jwt_claims, nullptr, nullptr);
    MarkGUCPrefixReserved("request");
  });
  // Claims were stored only if they were honoured when the process was made.
  if (!claims.empty()) trust_fixed_jwt_claims();
}

// ---------------------------------------------------------------------------
// The statement's rows, twice: as text, tab-separated columns (NULL as
// nothing), one row per line, of which at most `limit` bytes are kept (the
// head, cut on a character boundary; the rest is only counted); and as the
// task's output, a JSON array of one object per row, which must fit in
// orch.max_output_data. Both hold the rows of every statement that returns
// rows.

struct SqlResult {
  bool ok = false;
  int spi_code = 0;
  std::uint64_t processed = 0;  // SPI_processed of the last statement
  bool returned_rows = false;   // some statement returned rows (maybe none)
  std::uint64_t rows = 0;
  std::string output;
  bool truncated = false;
  std::string rows_json;  // the rows as JSON objects, comma-separated
  bool rows_json_too_large = false;
  std::string error;
  int sqlstate = 0;
};

// A DestReceiver with C layout: DestReceiver first, nothing with a destructor.
struct RowReceiver {
  DestReceiver pub;
  SqlResult *result;
  std::size_t limit;
  std::size_t json_limit;
  int columns;
  FmgrInfo *output_functions;
  TupleDesc json_desc;  // a blessed copy of the rows' descriptor: row_to_json needs a known row type
  MemoryContext row_context;  // reset for every row
};

// Inside pg_call: appends what fits and marks the rest dropped.
void append_limited(SqlResult &result, std::size_t limit, const char *bytes, std::size_t length) {
  std::size_t room = limit > result.output.size() ? limit - result.output.size() : 0;
  if (length <= room) {
    result.output.append(bytes, length);
    return;
  }
  result.output.append(bytes, pg_mbcliplen(bytes, static_cast<int>(length), static_cast<int>(room)));
  result.truncated = true;
}

void receiver_startup(DestReceiver *self, int, TupleDesc desc) {
  cpp_entry([&] {
    auto *receiver = reinterpret_cast<RowReceiver *>(self);
    receiver->result->returned_rows = true;
    pg_call([&] {
      receiver->columns = desc->natts;
      receiver->json_desc = BlessTupleDesc(CreateTupleDescCopy(desc));
      receiver->output_functions = static_cast<FmgrInfo *>(palloc0(sizeof(FmgrInfo) * std::max(1, desc->natts)));
      for (int i = 0; i < desc->natts; ++i) {
        Form_pg_attribute column = TupleDescAttr(desc, i);
        if (column->attisdropped) continue;
        Oid function;
        bool is_varlena;
        getTypeOutputInfo(column->atttypid, &function, &is_varlena);
        fmgr_info(function, &receiver->output_functions[i]);
      }
      if (receiver->row_context == nullptr)
        receiver->row_context =
            AllocSetContextCreate(CurrentMemoryContext, "pg_orch sql task row", ALLOCSET_SMALL_SIZES);
    });
  });
}

bool receiver_receive(TupleTableSlot *slot, DestReceiver *self) {
  return cpp_entry([&] {
    auto *receiver = reinterpret_cast<RowReceiver *>(self);
    SqlResult &result = *receiver->result;
    ++result.rows;
    // Past both limits rows are only counted: never stop the statement early.
    if (result.truncated && result.rows_json_too_large) return true;
    pg_call([&] {
      MemoryContext caller = MemoryContextSwitchTo(receiver->row_context);
      slot_getallattrs(slot);
      if (!result.truncated) {
        if (result.rows > 1) append_limited(result, receiver->limit, "\n", 1);
        for (int i = 0; i < receiver->columns && !result.truncated; ++i) {
          if (TupleDescAttr(slot->tts_tupleDescriptor, i)->attisdropped) continue;
          if (i > 0) append_limited(result, receiver->limit, "\t", 1);
          if (slot->tts_isnull[i]) continue;
          char *text = OutputFunctionCall(&receiver->output_functions[i], slot->tts_values[i]);
          append_limited(result, receiver->limit, text, strlen(text));
        }
      }
      if (!result.rows_json_too_large) {
        HeapTuple row = heap_form_tuple(receiver->json_desc, slot->tts_values, slot->tts_isnull);
        text *json = DatumGetTextPP(DirectFunctionCall1(row_to_json, HeapTupleGetDatum(row)));
        std::size_t length = VARSIZE_ANY_EXHDR(json);
        if (result.rows_json.size() + length + 1 > receiver->json_limit) {
          result.rows_json_too_large = true;
        } else {
          if (!result.rows_json.empty()) result.rows_json += ',';
          result.rows_json.append(VARDATA_ANY(json), length);
        }
      }
      MemoryContextSwitchTo(caller);
      MemoryContextReset(receiver->row_context);
    });
    return true;
  });
}

void receiver_shutdown(DestReceiver *) {}
void receiver_destroy(DestReceiver *) {}

// $1 (the run's input) and $2 (the outputs of the task's ancestors) of the
// user's SQL are jsonb, for every statement of it.
void declare_jsonb_parameters(ParseState *pstate, void *) {
  static const Oid types[2] = {JSONBOID, JSONBOID};
  cpp_entry([&] { pg_call([&] { setup_parse_fixed_parameters(pstate, types, 2); }); });
}

// ---------------------------------------------------------------------------
// Running the SQL as the process's creator.

const char *spi_refusal(int code) {
  switch (code) {
    case SPI_ERROR_TRANSACTION:
      return "transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, ...) is not allowed in an sql task: "
             "the task runs in the transaction that records it";
    case SPI_ERROR_COPY: return "COPY to or from the client is not allowed in an sql task";
    default: return nullptr;
  }
}

// For the rest of this worker's life, the session is the creator's: its
// session user and current user. SECURITY_LOCAL_USERID_CHANGE, as in a
// SECURITY DEFINER function, refuses SET ROLE and SET SESSION AUTHORIZATION,
// so nothing the user's statement does can bring the worker's own identity
// back; transactions end (commit, abort) as the creator too.
void become_creator(Oid role) {
  pg_call([&] {
    SetSessionAuthorization(role, false);
    SetUserIdAndSecContext(role, SECURITY_LOCAL_USERID_CHANGE);
    // pg_stat_activity shows the creator, who may then see and cancel it
    // (pg_cancel_backend asks the PGPROC's role).
    MyProc->roleId = role;
    if (MyBEEntry != nullptr) {
      PGSTAT_BEGIN_WRITE_ACTIVITY(MyBEEntry);
      MyBEEntry->st_userid = role;
      PGSTAT_END_WRITE_ACTIVITY(MyBEEntry);
    }
  });
}

// Inside a transaction: the creator's settings (ALTER ROLE ... [IN DATABASE
// ...] SET), as a session of theirs would have them, over those the worker
// connected with: statement_timeout, temp_file_limit, log_statement...
void apply_creator_settings(Oid role) {
  pg_call([&] {
    Relation settings_table = table_open(DbRoleSettingRelationId, AccessShareLock);
    Snapshot snapshot = RegisterSnapshot(GetCatalogSnapshot(DbRoleSettingRelationId));
    ApplySetting(snapshot, MyDatabaseId, role, settings_table, PGC_S_DATABASE_USER);
    ApplySetting(snapshot, InvalidOid, role, settings_table, PGC_S_USER);
    UnregisterSnapshot(snapshot);
    table_close(settings_table, AccessShareLock);
  });
}

// Runs `body` with search_path pinned to pg_catalog, pg_temp: for the
// worker's own statements, whatever the user's statement set.
template <typename F>
void with_pinned_search_path(F &&body) {
  int level = pg_call([] {
    int nest = NewGUCNestLevel();
    (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
                            ERROR, false);
    return nest;
  });
  try {
    body();
  } catch (...) {
    pg_call([&] { AtEOXact_GUC(false, level); });
    throw;
  }
  pg_call([&] { AtEOXact_GUC(true, level); });
}

// In a subtransaction: runs `sql` with $1 = input, then fires the deferred
// triggers it queued and closes the cursors it left open, so that all of
// its work is done here, as the creator, and counted as the task's. On error
// the subtransaction is rolled back (with every setting made in it) and the
// error is returned in the result.
SqlResult run_statement(const std::string &sql, const std::string &input, const std::string &outputs,
                        long long timeout_ms) {
  SqlResult result;
  MemoryContext context = nullptr;
  ResourceOwner owner = nullptr;
  bool in_subtransaction = false;
  RowReceiver receiver{};
  receiver.pub.receiveSlot = receiver_receive;
  receiver.pub.rStartup = receiver_startup;
  receiver.pub.rShutdown = receiver_shutdown;
  receiver.pub.rDestroy = receiver_destroy;
  receiver.pub.mydest = DestDebug;  // neither DestNone nor DestSPI, which SPI treats specially
  receiver.result = &result;
  receiver.limit = static_cast<std::size_t>(std::max(0, settings.max_output));
  // Room for the brackets of the array around the rows.
  receiver.json_limit = static_cast<std::size_t>(std::max(2, settings.max_output_data)) - 2;
  char timeout_text[32];
  snprintf(timeout_text, sizeof(timeout_text), "%lld", timeout_ms);
  try {
    pg_call([&] {
      context = CurrentMemoryContext;
      owner = CurrentResourceOwner;
      BeginInternalSubTransaction(nullptr);
      in_subtransaction = true;
      MemoryContextSwitchTo(context);

      // The shorter of the task's timeout and the creator's statement_timeout.
      long long armed_ms = timeout_ms;
      if (StatementTimeout > 0 && (armed_ms == 0 || StatementTimeout < armed_ms)) armed_ms = StatementTimeout;
      int guc_level = NewGUCNestLevel();
      if (timeout_ms > 0)
        (void)set_config_option("statement_timeout", timeout_text, PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
                                ERROR, false);

      ParamListInfo params = makeParamList(2);
      const std::string *values[2] = {&input, &outputs};
      for (int i = 0; i < 2; ++i) {
        params->params[i].value = DirectFunctionCall1(jsonb_in, CStringGetDatum(values[i]->c_str()));
        params->params[i].isnull = false;
        params->params[i].pflags = PARAM_FLAG_CONST;
        params->params[i].ptype = JSONBOID;
      }
      params->parserSetup = declare_jsonb_parameters;
      params->parserSetupArg = nullptr;
      SPIExecuteOptions options = {};
      options.params = params;
      options.read_only = false;
      options.dest = &receiver.pub;

      pgstat_report_activity(STATE_RUNNING, sql.c_str());
      // SPI does not arm statement_timeout (only the client protocol does).
      if (armed_ms > 0)
        enable_timeout_after(STATEMENT_TIMEOUT, static_cast<int>(std::min<long long>(armed_ms, INT_MAX)));
      int code = SPI_execute_extended(sql.c_str(), &options);
      if (code < 0) {
        const char *refusal = spi_refusal(code);
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("%s", refusal ? refusal : SPI_result_code_string(code))));
      }
      result.spi_code = code;
      result.processed = SPI_processed;
      // Nothing of the statement's may run after it: deferred triggers fire
      // now (their errors are the task's), WITH HOLD cursors are closed.
      if (SPI_execute("SET CONSTRAINTS ALL IMMEDIATE", false, 0) < 0 || SPI_execute("CLOSE ALL", false, 0) < 0)
        elog(ERROR, "pg_orch: could not finish the sql task's deferred work");
      if (armed_ms > 0) disable_timeout(STATEMENT_TIMEOUT, false);

      AtEOXact_GUC(false, guc_level);
      ReleaseCurrentSubTransaction();
      in_subtransaction = false;
      MemoryContextSwitchTo(context);
      CurrentResourceOwner = owner;
    });
    result.ok = true;
  } catch (const PgError &e) {
    result.error = e.what();
    result.sqlstate = e.sqlstate();
  } catch (const std::exception &e) {
    result.error = e.what();
  }
  if (!result.ok && in_subtransaction) {
    pg_call([&] {
      disable_timeout(STATEMENT_TIMEOUT, false);
      RollbackAndReleaseCurrentSubTransaction();
      MemoryContextSwitchTo(context);
      CurrentResourceOwner = owner;
    });
  }
  return result;
}

std::string rows_affected(const SqlResult &result) {
  switch (result.spi_code) {
    case SPI_OK_INSERT:
    case SPI_OK_UPDATE:
    case SPI_OK_DELETE:
    case SPI_OK_SELINTO:
#ifdef SPI_OK_MERGE
    case SPI_OK_MERGE:
#endif
      return std::to_string(result.processed) + (result.processed == 1 ? " row affected" : " rows affected");
    default: return "";
  }
}

// As the worker's own identity, before the creator's statement runs.
void record_finished(const Json &record) {
  query("SELECT orch._tasks_finished($1::pg_catalog.jsonb)", {Json::array({record}).dump()});
}

// As the creator, after the statement: through the one entry point that
// lets the worker of a running sql task record it, in the statement's
// transaction.
void record_as_creator(std::uint64_t task_id, const Json &record) {
  with_pinned_search_path([&] {
    recording_task = static_cast<std::int64_t>(task_id);
    try {
      query("SELECT orch._sql_task_finished($1::pg_catalog.jsonb)", {record.dump()});
    } catch (...) {
      recording_task = 0;
      throw;
    }
    recording_task = 0;
  });
}

// What the first transaction found: the creator and what to run.
struct Context {
  Oid role = InvalidOid;
  std::string sql, input, outputs, claims;  // claims: "" for none
  long long timeout_ms = 0;  // 0: none
};

// Two transactions. The first, as the worker's own identity and before any
// of the user's SQL exists in this session, takes the attempt and records
// it RUNNING, so that a long statement shows as running. Then the session
// becomes the creator's for good, and the second transaction runs the
// statement and records its outcome, so that its effects and the task's
// completion commit together. A crash in between leaves the task RUNNING
// for recovery.
void run_sql_task(std::uint64_t task_id, int attempt) {
  Context context;
  in_transaction([&] {
    with_pinned_search_path([&] {
      bool found = false, run_in_progress = false;
      std::string role;
      Context found_context;
      for_each_row(kContextQuery, {std::to_string(task_id), std::to_string(attempt)}, [&](const Row &row) {
        found = true;
        run_in_progress = row.boolean("run_in_progress");
        role = row.text("role");
        found_context.sql = row.text("sql");
        found_context.input = row.text("input");
        found_context.claims = row.text("claims");
        found_context.outputs = row.text("outputs");
        found_context.timeout_ms = row.int8_or_null("timeout_ms").value_or(0);
      });
      if (!found) return;  // recorded or taken back already: nothing to do
      std::string refusal;
      Oid role_oid = pg_call([&] { return get_role_oid(role.c_str(), true); });
      if (!run_in_progress) {
        // Stopped before it could start: no SQL runs.
        record_finished(finished_record(task_id, Ending::Stopped, std::nullopt, "", false, "stopped"));
        return;
      }
      if (!OidIsValid(role_oid))
        refusal = "the role that created the process, " + orch::quote(role) + ", no longer exists";
      else if (pg_call([&] { return superuser_arg(role_oid); }))
        refusal = "sql tasks never run as a superuser, and the process was created by superuser " + orch::quote(role) +
                  "; create the process as an ordinary role, for example after SET ROLE";
      if (!refusal.empty()) {
        record_finished(finished_record(task_id, Ending::SpawnFailed, std::nullopt, "", false, refusal));
        return;
      }
      int pid = pg_call([] { return MyProcPid; });
      query("SELECT orch._tasks_started($1::pg_catalog.jsonb)", {Json::array({started_record(task_id, pid)}).dump()});
      found_context.role = role_oid;
      context = std::move(found_context);
    });
  });
  if (!OidIsValid(context.role)) return;

  fix_jwt_claims(context.claims);
  become_creator(context.role);

  in_transaction([&] {
    apply_creator_settings(context.role);
    long long timeout_ms = context.timeout_ms;
    auto started = steady_clock::now();
    SqlResult result = run_statement(context.sql, context.input, context.outputs, timeout_ms);
    if (result.ok) {
      std::string output = result.returned_rows ? result.output : rows_affected(result);
      AttemptEnd end;
      end.id = task_id;
      end.exit_code = 0;
      end.output = output;
      end.output_truncated = result.truncated;
      if (result.rows_json_too_large)
        end.output_error = "the rows it returned are more than orch.max_output_data (" +
                           std::to_string(settings.max_output_data) + " bytes) as JSON";
      else if (result.returned_rows)
        end.output_data = "[" + result.rows_json + "]";
      record_as_creator(task_id, finished_record(end));
    } else {
      // A failed statement is an exit without a code. A cancel after the
      // timeout is the timeout's (a user's cancel comes sooner); the margin
      // absorbs the timer's wall clock against ours.
      bool timed_out = timeout_ms > 0 && result.sqlstate == ERRCODE_QUERY_CANCELED &&
                       steady_clock::now() - started >= milliseconds(timeout_ms) - milliseconds(20);
      std::string error = timed_out ? "timed out after " + format_interval(milliseconds(timeout_ms)) : result.error;
      Ending ending = timed_out ? Ending::TimedOut : Ending::Exited;
      record_as_creator(task_id, finished_record(task_id, ending, std::nullopt, "", false, error));
    }
  });
}

}  // namespace

std::int64_t recording_task_id() { return recording_task; }

BackgroundWorkerHandle *start_sql_task_worker(std::uint64_t task_id, int attempt) {
  SqlTaskArgs args{static_cast<std::int64_t>(task_id), static_cast<std::int32_t>(attempt)};
  return start_worker("orch_sql_task_main", "pg_orch sql task " + std::to_string(args.task_id), "pg_orch sql task",
                      MyDatabaseId, &args, sizeof(args));
}

}  // namespace orch::pg

// orch._sql_task_recording(): the task whose outcome this worker is
// recording right now, else NULL.
extern "C" Datum orch_sql_task_recording(PG_FUNCTION_ARGS) {
  std::int64_t id = orch::pg::recording_task_id();
  if (id == 0) PG_RETURN_NULL();
  PG_RETURN_INT64(id);
}

extern "C" void orch_sql_task_main(Datum database_oid) {
  using namespace orch::pg;
  // SIGTERM (orch.stop, a timeout, shutdown) ends the statement at its next
  // interrupt check, like pg_terminate_backend: the transaction is aborted,
  // nothing of the attempt is recorded, and the scheduler records it.
  pqsignal(SIGTERM, die);
  BackgroundWorkerUnblockSignals();
  BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(database_oid), InvalidOid, 0);
  SqlTaskArgs args;
  memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
  cpp_entry([&] { run_sql_task(static_cast<std::uint64_t>(args.task_id), args.attempt); });
  proc_exit(0);
}
