// Core headers come first: they refuse to be included after postgres.h.
#include "core/interval.hpp"
#include "core/task_outcome.hpp"
#include "core/task_records.hpp"

#include <algorithm>
#include <climits>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pg/guards.hpp"
#include "pg/settings.hpp"
#include "pg/spi.hpp"
#include "pg/sql_task_runner.hpp"

extern "C" {
#include "mb/pg_wchar.h"
#include "nodes/params.h"
#include "parser/parse_param.h"
#include "tcop/dest.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/timeout.h"
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
  SELECT jsonb_build_object(
           'run_in_progress', r.status = 'IN_PROGRESS', 'sql', c.sql, 'input', c.input_data::text,
           'role', c.role_name, 'claims', c.jwt_claims::text, 'timeout_ms', c.timeout_ms,
           'attempt', c.attempt, 'max_retries', c.max_retries, 'retry_delay_ms', c.retry_delay_ms,
           'retry_backoff', c.retry_backoff)::text
  FROM orch.tasks t JOIN orch.runs r ON r.id = t.run_id CROSS JOIN LATERAL orch._sql_task_context(t.id) c
  WHERE t.id = $1::bigint AND t.status = 'DISPATCHED' AND t.attempt = $2::integer
  FOR UPDATE OF t
)SQL";

// The attempt, RUNNING as the first transaction left it, locked.
constexpr const char *kStillRunningQuery = R"SQL(
  SELECT t.id::text FROM orch.tasks t
  WHERE t.id = $1::bigint AND t.status = 'RUNNING' AND t.attempt = $2::integer
  FOR UPDATE
)SQL";

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
}

// ---------------------------------------------------------------------------
// The statement's rows as text: tab-separated columns (NULL as nothing), one
// row per line, the rows of every statement that returns rows. At most
// `limit` bytes are kept: the head (the first rows), cut on a character
// boundary; the rest is only counted.

struct SqlResult {
  bool ok = false;
  int spi_code = 0;
  std::uint64_t processed = 0;  // SPI_processed of the last statement
  bool returned_rows = false;  // some statement returned rows (maybe none)
  std::uint64_t rows = 0;
  std::string output;
  bool truncated = false;
  std::string error;
  int sqlstate = 0;
};

// A DestReceiver with C layout: DestReceiver first, nothing with a destructor.
struct RowReceiver {
  DestReceiver pub;
  SqlResult *result;
  std::size_t limit;
  int columns;
  FmgrInfo *output_functions;
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
    if (result.truncated) return true;  // only counted; never stop the statement early
    pg_call([&] {
      MemoryContext caller = MemoryContextSwitchTo(receiver->row_context);
      if (result.rows > 1) append_limited(result, receiver->limit, "\n", 1);
      slot_getallattrs(slot);
      for (int i = 0; i < receiver->columns && !result.truncated; ++i) {
        if (TupleDescAttr(slot->tts_tupleDescriptor, i)->attisdropped) continue;
        if (i > 0) append_limited(result, receiver->limit, "\t", 1);
        if (slot->tts_isnull[i]) continue;
        char *text = OutputFunctionCall(&receiver->output_functions[i], slot->tts_values[i]);
        append_limited(result, receiver->limit, text, strlen(text));
      }
      MemoryContextSwitchTo(caller);
      MemoryContextReset(receiver->row_context);
    });
    return true;
  });
}

void receiver_shutdown(DestReceiver *) {}
void receiver_destroy(DestReceiver *) {}

// $1 of the user's SQL is jsonb, for every statement of it.
void declare_jsonb_parameter(ParseState *pstate, void *) {
  static const Oid types[1] = {JSONBOID};
  cpp_entry([&] { pg_call([&] { setup_parse_fixed_parameters(pstate, types, 1); }); });
}

// ---------------------------------------------------------------------------
// Running the SQL as the process's creator.

struct Saved {
  MemoryContext context = nullptr;
  ResourceOwner owner = nullptr;
  Oid user = InvalidOid;
  int security_context = 0;
  bool in_subtransaction = false;
};

const char *spi_refusal(int code) {
  switch (code) {
    case SPI_ERROR_TRANSACTION:
      return "transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, ...) is not allowed in an sql task: "
             "the task runs in the transaction that records it";
    case SPI_ERROR_COPY: return "COPY to or from the client is not allowed in an sql task";
    default: return nullptr;
  }
}

// In a subtransaction of the caller's transaction: becomes `role` the way a
// SECURITY DEFINER function becomes its owner (SET ROLE and SET SESSION
// AUTHORIZATION are then refused), runs `sql` with $1 = input, and comes
// back. On error the subtransaction is rolled back (which also restores the
// user id and every setting) and the error is returned in the result.
SqlResult run_as_creator(const std::string &sql, const std::string &input, const std::string &role,
                         long long timeout_ms) {
  SqlResult result;
  Saved saved;
  RowReceiver receiver{};
  receiver.pub.receiveSlot = receiver_receive;
  receiver.pub.rStartup = receiver_startup;
  receiver.pub.rShutdown = receiver_shutdown;
  receiver.pub.rDestroy = receiver_destroy;
  receiver.pub.mydest = DestDebug;  // neither DestNone nor DestSPI, which SPI treats specially
  receiver.result = &result;
  receiver.limit = static_cast<std::size_t>(std::max(0, settings.max_output));
  char timeout_text[32];
  snprintf(timeout_text, sizeof(timeout_text), "%lld", timeout_ms);
  try {
    pg_call([&] {
      saved.context = CurrentMemoryContext;
      saved.owner = CurrentResourceOwner;
      GetUserIdAndSecContext(&saved.user, &saved.security_context);
      BeginInternalSubTransaction(nullptr);
      saved.in_subtransaction = true;
      MemoryContextSwitchTo(saved.context);

      Oid role_oid = get_role_oid(role.c_str(), false);
      if (superuser_arg(role_oid))
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("sql tasks never run as a superuser, and the process was created by superuser \"%s\"",
                               role.c_str()),
                        errhint("Create the process as an ordinary role, for example after SET ROLE.")));
      int guc_level = NewGUCNestLevel();
      (void)set_config_option("role", role.c_str(), PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, ERROR, false);
      if (timeout_ms > 0)
        (void)set_config_option("statement_timeout", timeout_text, PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
                                ERROR, false);
      SetUserIdAndSecContext(role_oid, saved.security_context | SECURITY_LOCAL_USERID_CHANGE);

      Datum input_value = DirectFunctionCall1(jsonb_in, CStringGetDatum(input.c_str()));
      ParamListInfo params = makeParamList(1);
      params->params[0].value = input_value;
      params->params[0].isnull = false;
      params->params[0].pflags = PARAM_FLAG_CONST;
      params->params[0].ptype = JSONBOID;
      params->parserSetup = declare_jsonb_parameter;
      params->parserSetupArg = nullptr;
      SPIExecuteOptions options = {};
      options.params = params;
      options.read_only = false;
      options.dest = &receiver.pub;

      pgstat_report_activity(STATE_RUNNING, sql.c_str());
      // SPI does not arm statement_timeout (only the client protocol does).
      if (timeout_ms > 0)
        enable_timeout_after(STATEMENT_TIMEOUT, static_cast<int>(std::min<long long>(timeout_ms, INT_MAX)));
      int code = SPI_execute_extended(sql.c_str(), &options);
      if (timeout_ms > 0) disable_timeout(STATEMENT_TIMEOUT, false);
      if (code < 0) {
        const char *refusal = spi_refusal(code);
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("%s", refusal ? refusal : SPI_result_code_string(code))));
      }
      result.spi_code = code;
      result.processed = SPI_processed;

      // Back to the worker's own identity, then every setting the SQL or we
      // made is undone (as after an index function: see index_build()).
      SetUserIdAndSecContext(saved.user, saved.security_context);
      AtEOXact_GUC(false, guc_level);
      ReleaseCurrentSubTransaction();
      saved.in_subtransaction = false;
      MemoryContextSwitchTo(saved.context);
      CurrentResourceOwner = saved.owner;
    });
    result.ok = true;
  } catch (const PgError &e) {
    result.error = e.what();
    result.sqlstate = e.sqlstate();
  } catch (const std::exception &e) {
    result.error = e.what();
  }
  if (!result.ok && saved.in_subtransaction) {
    pg_call([&] {
      disable_timeout(STATEMENT_TIMEOUT, false);
      RollbackAndReleaseCurrentSubTransaction();
      MemoryContextSwitchTo(saved.context);
      CurrentResourceOwner = saved.owner;
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

void record_finished(const Json &record) {
  Json finished = Json::array();
  finished.push_back(record);
  query("SELECT orch._tasks_finished($1::jsonb)", {finished.dump()});
}

// Two transactions: the first takes the attempt and records it RUNNING, so
// that a long statement shows as running; the second runs the statement and
// records its outcome, so that its effects and the task's completion commit
// together. A crash in between leaves the task RUNNING for recovery.
void run_sql_task(std::uint64_t task_id, int attempt) {
  Json context;
  in_transaction([&] {
    std::vector<std::string> rows = query(kContextQuery, {std::to_string(task_id), std::to_string(attempt)});
    if (rows.empty()) return;  // recorded or taken back already: nothing to do
    context = Json::parse(rows[0]);
    if (!context.at("run_in_progress").get<bool>()) {
      // Stopped before it could start: no SQL runs.
      record_finished(finished_record(task_id, {Outcome::Stopped}, std::nullopt, "", false, "stopped"));
      context = nullptr;
      return;
    }
    int pid = pg_call([] { return MyProcPid; });
    query("SELECT orch._tasks_started($1::jsonb)", {Json::array({started_record(task_id, pid)}).dump()});
  });
  if (context.is_null()) return;

  in_transaction([&] {
    // Still ours: the scheduler records an attempt only after this worker exits.
    if (query(kStillRunningQuery, {std::to_string(task_id), std::to_string(attempt)}).empty()) return;
    TaskSpec policy = retry_policy_of(context);
    long long timeout_ms = context.at("timeout_ms").is_null() ? 0 : context.at("timeout_ms").get<long long>();
    fix_jwt_claims(context.at("claims").is_null() ? "" : context.at("claims").get<std::string>());

    auto started = steady_clock::now();
    SqlResult result = run_as_creator(context.at("sql").get<std::string>(), context.at("input").get<std::string>(),
                                      context.at("role").get<std::string>(), timeout_ms);
    if (result.ok) {
      std::string output = result.returned_rows ? result.output : rows_affected(result);
      record_finished(finished_record(task_id, decide_outcome(Ending::Exited, 0, attempt, policy), 0, output,
                                      result.truncated, ""));
    } else {
      // A cancel after the timeout is the timeout's (a user's cancel comes
      // sooner); the margin absorbs the timer's wall clock against ours.
      bool timed_out = timeout_ms > 0 && result.sqlstate == ERRCODE_QUERY_CANCELED &&
                       steady_clock::now() - started >= milliseconds(timeout_ms) - milliseconds(20);
      std::string error = timed_out ? "timed out after " + format_interval(milliseconds(timeout_ms)) : result.error;
      Ending ending = timed_out ? Ending::TimedOut : Ending::Exited;
      record_finished(finished_record(task_id, decide_outcome(ending, 1, attempt, policy), std::nullopt, "", false, error));
    }
  });
}

}  // namespace

BackgroundWorkerHandle *start_sql_task_worker(std::uint64_t task_id, int attempt) {
  SqlTaskArgs args{static_cast<std::int64_t>(task_id), static_cast<std::int32_t>(attempt)};
  return pg_call([&] {
    BackgroundWorker worker = {};
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = BGW_NEVER_RESTART;
    strlcpy(worker.bgw_library_name, "pg_orch", BGW_MAXLEN);
    strlcpy(worker.bgw_function_name, "orch_sql_task_main", BGW_MAXLEN);
    snprintf(worker.bgw_name, BGW_MAXLEN, "pg_orch sql task %lld", static_cast<long long>(args.task_id));
    strlcpy(worker.bgw_type, "pg_orch sql task", BGW_MAXLEN);
    worker.bgw_main_arg = ObjectIdGetDatum(MyDatabaseId);
    memcpy(worker.bgw_extra, &args, sizeof(args));
    worker.bgw_notify_pid = MyProcPid;
    BackgroundWorkerHandle *handle = nullptr;
    MemoryContext caller = MemoryContextSwitchTo(TopMemoryContext);
    bool registered = RegisterDynamicBackgroundWorker(&worker, &handle);
    MemoryContextSwitchTo(caller);
    return registered ? handle : static_cast<BackgroundWorkerHandle *>(nullptr);
  });
}

}  // namespace orch::pg

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
