// SQL-callable C functions. Each converts its arguments to C++ values, calls
// the core, and converts back; every body runs inside cpp_entry and every
// PostgreSQL call inside pg_call.
#include <string>

#include "core/input_data.hpp"
#include "core/lifecycle.hpp"
#include "core/run_plan.hpp"
#include "core/task_spec.hpp"
#include "pg/guards.hpp"
#include "pg/shared_state.hpp"

extern "C" {
PG_FUNCTION_INFO_V1(orch_input_data);
PG_FUNCTION_INFO_V1(orch_parse_process_type);
PG_FUNCTION_INFO_V1(orch_materialize_tasks);
PG_FUNCTION_INFO_V1(orch_wake_scheduler_at_commit);
PG_FUNCTION_INFO_V1(orch_enforce_lifecycle);
}

namespace orch::pg {
namespace {

std::string text_arg(FunctionCallInfo fcinfo, int n) {
  std::string result;
  pg_call([&] {
    text *value = PG_GETARG_TEXT_PP(n);
    result.assign(VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value));
  });
  return result;
}

std::string jsonb_arg(FunctionCallInfo fcinfo, int n) {
  std::string result;
  pg_call([&] {
    Jsonb *value = PG_GETARG_JSONB_P(n);
    char *json = JsonbToCString(nullptr, &value->root, VARSIZE(value));
    result.assign(json);
    pfree(json);
  });
  return result;
}

Datum jsonb_result(const std::string &json) {
  return pg_call([&] { return DirectFunctionCall1(jsonb_in, CStringGetDatum(json.c_str())); });
}

}  // namespace
}  // namespace orch::pg

using namespace orch::pg;

extern "C" Datum orch_input_data(PG_FUNCTION_ARGS) {
  return cpp_entry([&] { return jsonb_result(orch::input_data_to_json(text_arg(fcinfo, 0))); });
}

extern "C" Datum orch_parse_process_type(PG_FUNCTION_ARGS) {
  return cpp_entry([&] {
    return jsonb_result(orch::normalized_tasks_json(orch::parse_process_type(jsonb_arg(fcinfo, 0))));
  });
}

extern "C" Datum orch_materialize_tasks(PG_FUNCTION_ARGS) {
  return cpp_entry([&] { return jsonb_result(orch::materialize_run(jsonb_arg(fcinfo, 0), jsonb_arg(fcinfo, 1))); });
}

extern "C" Datum orch_wake_scheduler_at_commit(PG_FUNCTION_ARGS) {
  return cpp_entry([&] {
    wake_scheduler_at_commit(PG_GETARG_BOOL(0));
    return Datum(0);
  });
}

// BEFORE UPDATE OF status trigger on processes, runs and tasks: refuses any
// move the lifecycle (src/core/lifecycle) does not allow.
extern "C" Datum orch_enforce_lifecycle(PG_FUNCTION_ARGS) {
  return cpp_entry([&] {
    bool is_task = false;
    std::string from, to;
    HeapTuple new_tuple = nullptr;
    pg_call([&] {
      if (!CALLED_AS_TRIGGER(fcinfo)) elog(ERROR, "orch._enforce_lifecycle() must be called as a trigger");
      auto *trigger = reinterpret_cast<TriggerData *>(fcinfo->context);
      TupleDesc desc = trigger->tg_relation->rd_att;
      int column = SPI_fnumber(desc, "status");
      is_task = strcmp(RelationGetRelationName(trigger->tg_relation), "tasks") == 0;
      from = SPI_getvalue(trigger->tg_trigtuple, desc, column);
      to = SPI_getvalue(trigger->tg_newtuple, desc, column);
      new_tuple = trigger->tg_newtuple;
    });
    bool legal = is_task ? orch::is_legal(*orch::parse_task_status(from), *orch::parse_task_status(to))
                         : orch::is_legal(*orch::parse_run_status(from), *orch::parse_run_status(to));
    if (!legal) {
      std::string message = is_task ? orch::describe_illegal(*orch::parse_task_status(from), *orch::parse_task_status(to))
                                    : orch::describe_illegal(*orch::parse_run_status(from), *orch::parse_run_status(to));
      pg_call([&] { ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("%s", message.c_str()))); });
    }
    return PointerGetDatum(new_tuple);
  });
}
