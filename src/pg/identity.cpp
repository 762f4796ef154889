// Who is calling: see identity.hpp.
#include <cstring>

#include "pg/guards.hpp"
#include "pg/identity.hpp"
#include "pg/settings.hpp"

extern "C" {
#include "catalog/pg_proc.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

PG_FUNCTION_INFO_V1(orch_api);
PG_FUNCTION_INFO_V1(orch_caller);
PG_FUNCTION_INFO_V1(orch_jwt_claims);
PG_FUNCTION_INFO_V1(orch_current_owner);
PG_FUNCTION_INFO_V1(orch_is_admin);
PG_FUNCTION_INFO_V1(orch_can_write);
}

namespace orch::pg {
namespace {

// The caller captured by orch_api while an API function's body runs.
Oid api_caller = InvalidOid;
bool jwt_claims_fixed = false;

Oid caller() { return OidIsValid(api_caller) ? api_caller : GetUserId(); }

// Is `name` one of the identifiers of `list` (a setting checked when set)?
bool listed(const char *list, const char *name) {
  char *copy = pstrdup(list ? list : "");
  List *names = nullptr;
  bool found = false;
  if (SplitIdentifierString(copy, ',', &names)) {
    ListCell *cell;
    foreach (cell, names)
      found = found || strcmp(static_cast<const char *>(lfirst(cell)), name) == 0;
  }
  list_free(names);
  pfree(copy);
  return found;
}

// The SECURITY DEFINER body of an API function: orch._api_<name>, with the
// same arguments. Looked up once per call site.
FmgrInfo *body_of(FunctionCallInfo fcinfo) {
  FmgrInfo *flinfo = fcinfo->flinfo;
  if (flinfo->fn_extra != nullptr) return static_cast<FmgrInfo *>(flinfo->fn_extra);
  HeapTuple tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(flinfo->fn_oid));
  if (!HeapTupleIsValid(tuple)) elog(ERROR, "cache lookup failed for function %u", flinfo->fn_oid);
  auto *proc = reinterpret_cast<Form_pg_proc>(GETSTRUCT(tuple));
  List *name = list_make2(makeString(get_namespace_name(proc->pronamespace)),
                          makeString(psprintf("_api_%s", NameStr(proc->proname))));
  Oid body = LookupFuncName(name, proc->pronargs, proc->proargtypes.values, false);
  ReleaseSysCache(tuple);
  tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(body));
  if (!HeapTupleIsValid(tuple)) elog(ERROR, "cache lookup failed for function %u", body);
  bool definer = reinterpret_cast<Form_pg_proc>(GETSTRUCT(tuple))->prosecdef;
  ReleaseSysCache(tuple);
  if (!definer) elog(ERROR, "pg_orch: function %u must be SECURITY DEFINER", body);
  auto *info = static_cast<FmgrInfo *>(MemoryContextAllocZero(flinfo->fn_mcxt, sizeof(FmgrInfo)));
  fmgr_info_cxt(body, info, flinfo->fn_mcxt);
  flinfo->fn_extra = info;
  return info;
}

// The request's JWT claims (text; "{}" when none are set) when they are
// honoured, else nullptr. Plain C: called inside pg_call.
const char *honoured_jwt_claims() {
  if (!listed(settings.jwt_roles, GetUserNameFromId(caller(), false))) return nullptr;
  if (!jwt_claims_fixed && !listed(settings.jwt_authenticators, GetUserNameFromId(GetSessionUserId(), false)))
    return nullptr;
  const char *value = GetConfigOption("request.jwt.claims", true, false);
  return value && value[0] != '\0' ? value : "{}";
}

// Who owns what the caller makes (see orch.current_owner() in
// sql/00_statuses_and_identity.sql), or nullptr for no one. Plain C.
const char *current_owner_name() {
  const char *claims = honoured_jwt_claims();
  if (claims != nullptr) {
    LOCAL_FCINFO(call, 2);
    InitFunctionCallInfoData(*call, nullptr, 2, InvalidOid, nullptr, nullptr);
    call->args[0].value = DirectFunctionCall1(jsonb_in, CStringGetDatum(claims));
    call->args[0].isnull = false;
    call->args[1].value = CStringGetTextDatum("sub");
    call->args[1].isnull = false;
    Datum sub = jsonb_object_field_text(call);  // claims ->> 'sub'
    if (call->isnull) return nullptr;
    char *name = TextDatumGetCString(sub);
    return name[0] == '\0' ? nullptr : psprintf("jwt:%s", name);
  }
  const char *role = GetUserNameFromId(caller(), false);
  return strncmp(role, "jwt:", 4) == 0 ? nullptr : role;
}

// Is the caller a member of the role named `role` (superusers are members
// of every role)? A missing role has no members.
bool caller_is_member_of(const char *role) {
  Oid role_id = get_role_oid(role, true);
  return superuser_arg(caller()) || (OidIsValid(role_id) && is_member_of_role(caller(), role_id));
}

}  // namespace

void trust_fixed_jwt_claims() { jwt_claims_fixed = true; }

}  // namespace orch::pg

using namespace orch::pg;

// The entry point of every API function that changes something. It refuses
// to run inside a security-restricted operation (ANALYZE, VACUUM, REINDEX,
// CREATE INDEX or REFRESH MATERIALIZED VIEW evaluating a user's expression),
// captures the caller, and calls the function's SECURITY DEFINER body.
//
// Plain C on purpose: no C++ object lives in this frame, so the body's
// errors pass through unchanged (with their context) and PG_FINALLY puts
// the previous caller back, for nested calls.
extern "C" Datum orch_api(PG_FUNCTION_ARGS) {
  if (InSecurityRestrictedOperation())
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                    errmsg("pg_orch functions cannot be called within a security-restricted operation"),
                    errdetail("ANALYZE, VACUUM, REINDEX, CREATE INDEX and REFRESH MATERIALIZED VIEW run index "
                              "and view expressions as the table's owner in a restricted context.")));
  FmgrInfo *body = body_of(fcinfo);
  LOCAL_FCINFO(call, FUNC_MAX_ARGS);
  InitFunctionCallInfoData(*call, body, fcinfo->nargs, fcinfo->fncollation, fcinfo->context, fcinfo->resultinfo);
  for (int i = 0; i < fcinfo->nargs; ++i) call->args[i] = fcinfo->args[i];

  Oid saved = api_caller;
  volatile Datum result = 0;
  api_caller = GetUserId();
  PG_TRY();
  {
    result = FunctionCallInvoke(call);
  }
  PG_FINALLY();
  {
    api_caller = saved;
  }
  PG_END_TRY();
  fcinfo->isnull = call->isnull;
  return result;
}

// orch._caller(): the calling role's name.
extern "C" Datum orch_caller(PG_FUNCTION_ARGS) {
  return cpp_entry([&] { return pg_call([] { return CStringGetTextDatum(GetUserNameFromId(caller(), false)); }); });
}

// orch._jwt_claims(): the request's JWT claims ('{}' when none are set) when
// they are honoured, else NULL.
extern "C" Datum orch_jwt_claims(PG_FUNCTION_ARGS) {
  return cpp_entry([&] {
    return pg_call([&] {
      const char *claims = honoured_jwt_claims();
      if (claims == nullptr) fcinfo->isnull = true;
      return claims == nullptr ? Datum(0) : DirectFunctionCall1(jsonb_in, CStringGetDatum(claims));
    });
  });
}

// orch.current_owner(): who owns what the caller makes, or NULL for no one.
// C, like the two below, because every API call and every row level
// security check asks: as PL/pgSQL they were a fifth of a start.
extern "C" Datum orch_current_owner(PG_FUNCTION_ARGS) {
  return cpp_entry([&] {
    return pg_call([&] {
      const char *owner = current_owner_name();
      if (owner == nullptr) fcinfo->isnull = true;
      return owner == nullptr ? Datum(0) : CStringGetTextDatum(owner);
    });
  });
}

// orch._is_admin(): is the caller a superuser or a member of orch_admin?
extern "C" Datum orch_is_admin(PG_FUNCTION_ARGS) {
  return cpp_entry([&] { return pg_call([] { return BoolGetDatum(caller_is_member_of("orch_admin")); }); });
}

// orch._can_write(): may the caller create and change (it is someone, and
// an admin or a member of orch_user)? orch_viewer only reads.
extern "C" Datum orch_can_write(PG_FUNCTION_ARGS) {
  return cpp_entry([&] {
    return pg_call([] {
      return BoolGetDatum(current_owner_name() != nullptr &&
                          (caller_is_member_of("orch_admin") || caller_is_member_of("orch_user")));
    });
  });
}
