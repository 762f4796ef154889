// SQL-callable C functions. Each converts its arguments to C++ values, calls
// the core, and converts back; every body runs inside cpp_entry and every
// PostgreSQL call inside pg_call.
#include <string>
#include <unordered_map>
#include <vector>

#include "core/fan_out.hpp"
#include "core/http_request.hpp"
#include "core/input_data.hpp"
#include "core/lifecycle.hpp"
#include "core/outputs.hpp"
#include "core/placeholders.hpp"
#include "core/retry_backoff.hpp"
#include "core/run_plan.hpp"
#include "core/task_spec.hpp"
#include "pg/guards.hpp"
#include "pg/shared_state.hpp"

extern "C" {
#include "utils/array.h"
}

extern "C" {
PG_FUNCTION_INFO_V1(orch_input_data);
PG_FUNCTION_INFO_V1(orch_parse_process_type);
PG_FUNCTION_INFO_V1(orch_substitute_placeholders);
PG_FUNCTION_INFO_V1(orch_substitute_outputs);
PG_FUNCTION_INFO_V1(orch_fan_out_items);
PG_FUNCTION_INFO_V1(orch_substitute_item);
PG_FUNCTION_INFO_V1(orch_check_input_environment);
PG_FUNCTION_INFO_V1(orch_http_host);
PG_FUNCTION_INFO_V1(orch_retry_delay_ms);
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

std::vector<std::string> text_array_arg(FunctionCallInfo fcinfo, int n) {
  std::vector<std::string> result;
  pg_call([&] {
    Datum *elements;
    bool *nulls;
    int count;
    deconstruct_array(PG_GETARG_ARRAYTYPE_P(n), TEXTOID, -1, false, TYPALIGN_INT, &elements, &nulls, &count);
    for (int i = 0; i < count; ++i) {
      if (nulls[i]) elog(ERROR, "pg_orch: a command argument is NULL");
      text *element = DatumGetTextPP(elements[i]);
      result.emplace_back(VARDATA_ANY(element), VARSIZE_ANY_EXHDR(element));
    }
  });
  return result;
}

Datum text_array_result(const std::vector<std::string> &values) {
  return pg_call([&] {
    Datum *elements = static_cast<Datum *>(palloc(sizeof(Datum) * (values.size() + 1)));
    for (std::size_t i = 0; i < values.size(); ++i)
      elements[i] = PointerGetDatum(cstring_to_text_with_len(values[i].data(), static_cast<int>(values[i].size())));
    return PointerGetDatum(construct_array(elements, static_cast<int>(values.size()), TEXTOID, -1, false,
                                           TYPALIGN_INT));
  });
}

// Argument n, when given, is the task's kind: an http task's request
// encodes what is substituted into it (core/http_request.hpp). (0.1's SQL
// declarations have no such argument.) The encoder refers to `command`.
orch::ValueEncoder value_encoder(FunctionCallInfo fcinfo, int n, const std::vector<std::string> &command) {
  if (PG_NARGS() <= n || text_arg(fcinfo, n) != "http") return {};
  return [&command](std::size_t index, const std::string &value) {
    return orch::encode_http_value(command, index, value);
  };
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

extern "C" Datum orch_substitute_placeholders(PG_FUNCTION_ARGS) {
  return cpp_entry([&] {
    std::vector<std::string> command = text_array_arg(fcinfo, 0);
    bool fan_out = PG_NARGS() > 3 && PG_GETARG_BOOL(3);
    return text_array_result(orch::substitute_placeholders(command, jsonb_arg(fcinfo, 1), text_arg(fcinfo, 2),
                                                           fan_out, value_encoder(fcinfo, 4, command)));
  });
}

extern "C" Datum orch_fan_out_items(PG_FUNCTION_ARGS) {
  return cpp_entry([&] {
    return jsonb_result(
        orch::fan_out_items(jsonb_arg(fcinfo, 0), jsonb_arg(fcinfo, 1), jsonb_arg(fcinfo, 2), text_arg(fcinfo, 3)));
  });
}

extern "C" Datum orch_substitute_item(PG_FUNCTION_ARGS) {
  return cpp_entry([&] {
    std::vector<std::string> command = text_array_arg(fcinfo, 0);
    return text_array_result(orch::substitute_item(command, jsonb_arg(fcinfo, 1), PG_GETARG_INT32(2),
                                                   text_arg(fcinfo, 3), value_encoder(fcinfo, 4, command)));
  });
}

extern "C" Datum orch_substitute_outputs(PG_FUNCTION_ARGS) {
  return cpp_entry([&] {
    std::vector<std::string> command = text_array_arg(fcinfo, 0);
    return text_array_result(orch::substitute_outputs(command, jsonb_arg(fcinfo, 1), text_arg(fcinfo, 2),
                                                      value_encoder(fcinfo, 3, command)));
  });
}

extern "C" Datum orch_http_host(PG_FUNCTION_ARGS) {
  return cpp_entry([&] {
    std::string host = orch::http_host(orch::http_request_of(text_array_arg(fcinfo, 0)).url);
    return pg_call([&] { return PointerGetDatum(cstring_to_text_with_len(host.data(), static_cast<int>(host.size()))); });
  });
}

extern "C" Datum orch_check_input_environment(PG_FUNCTION_ARGS) {
  return cpp_entry([&] {
    (void)orch::input_environment(jsonb_arg(fcinfo, 0));
    return Datum(0);
  });
}

extern "C" Datum orch_retry_delay_ms(PG_FUNCTION_ARGS) {
  return cpp_entry([&] {
    orch::TaskSpec policy;
    policy.retry_delay = std::chrono::milliseconds(PG_GETARG_INT64(0));
    policy.retry_backoff = PG_GETARG_FLOAT8(1);
    return Int64GetDatum(orch::retry_delay_for(policy, PG_GETARG_INT32(2)).count());
  });
}

extern "C" Datum orch_wake_scheduler_at_commit(PG_FUNCTION_ARGS) {
  return cpp_entry([&] {
    wake_scheduler_at_commit(PG_GETARG_BOOL(0));
    return Datum(0);
  });
}

// The label of a status enum value. Labels of an enum value never change,
// so each is looked up once per session: the trigger runs for every move.
const std::string &status_label(Oid value) {
  static std::unordered_map<Oid, std::string> labels;
  auto found = labels.find(value);
  if (found != labels.end()) return found->second;
  std::string label;
  pg_call([&] { label = DatumGetCString(DirectFunctionCall1(enum_out, ObjectIdGetDatum(value))); });
  return labels.emplace(value, std::move(label)).first->second;
}

// BEFORE UPDATE OF status trigger on processes, runs and tasks: refuses any
// move the lifecycle (src/core/lifecycle) does not allow. Staying is allowed.
extern "C" Datum orch_enforce_lifecycle(PG_FUNCTION_ARGS) {
  return cpp_entry([&] {
    bool is_task = false;
    Oid from = InvalidOid, to = InvalidOid;
    HeapTuple new_tuple = nullptr;
    pg_call([&] {
      if (!CALLED_AS_TRIGGER(fcinfo)) elog(ERROR, "orch._enforce_lifecycle() must be called as a trigger");
      auto *trigger = reinterpret_cast<TriggerData *>(fcinfo->context);
      TupleDesc desc = trigger->tg_relation->rd_att;
      int column = SPI_fnumber(desc, "status");
      bool is_null;
      is_task = strcmp(RelationGetRelationName(trigger->tg_relation), "tasks") == 0;
      from = DatumGetObjectId(heap_getattr(trigger->tg_trigtuple, column, desc, &is_null));
      to = DatumGetObjectId(heap_getattr(trigger->tg_newtuple, column, desc, &is_null));
      new_tuple = trigger->tg_newtuple;
    });
    if (from == to) return PointerGetDatum(new_tuple);
    const std::string &from_label = status_label(from), &to_label = status_label(to);
    std::string refusal;
    if (is_task) {
      auto old_status = *orch::parse_task_status(from_label), new_status = *orch::parse_task_status(to_label);
      if (!orch::is_legal(old_status, new_status)) refusal = orch::describe_illegal(old_status, new_status);
    } else {
      auto old_status = *orch::parse_run_status(from_label), new_status = *orch::parse_run_status(to_label);
      if (!orch::is_legal(old_status, new_status)) refusal = orch::describe_illegal(old_status, new_status);
    }
    if (!refusal.empty())
      pg_call([&] { ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("%s", refusal.c_str()))); });
    return PointerGetDatum(new_tuple);
  });
}
