// Core headers come first: they refuse to be included after postgres.h.
#include "core/error.hpp"

#include <cstring>
#include <new>
#include <string>

#include "pg/guards.hpp"

namespace orch::pg {

namespace {

struct Call {
  void (*fn)(void *);
  void *arg;
  std::exception_ptr thrown;
};

void run_catching_cpp(Call *call) {
  try {
    call->fn(call->arg);
  } catch (...) {
    call->thrown = std::current_exception();
  }
}

}  // namespace

void pg_call_impl(void (*fn)(void *), void *arg) {
  Call call{fn, arg, nullptr};
  MemoryContext volatile context = CurrentMemoryContext;
  ErrorData *volatile edata = nullptr;
  PG_TRY();
  {
    run_catching_cpp(&call);
  }
  PG_CATCH();
  {
    MemoryContextSwitchTo(context);
    edata = CopyErrorData();
    FlushErrorState();
  }
  PG_END_TRY();
  if (edata != nullptr) throw PgError(edata);
  if (call.thrown) std::rethrow_exception(call.thrown);
}

void raise_caught(std::exception_ptr caught) {
  // Everything the ERROR needs is copied into plain storage first, so that
  // no C++ object is alive in this frame when ereport longjmps.
  int sqlstate = ERRCODE_INTERNAL_ERROR;
  char message[2048] = "unknown C++ exception";
  char detail[2048] = "";
  char hint[1024] = "";
  try {
    std::rethrow_exception(caught);
  } catch (const PgError &e) {
    sqlstate = e.sqlstate();
    strlcpy(message, e.what(), sizeof(message));
    strlcpy(detail, e.detail().c_str(), sizeof(detail));
    strlcpy(hint, e.hint().c_str(), sizeof(hint));
  } catch (const orch::InvalidInput &e) {
    sqlstate = ERRCODE_INVALID_PARAMETER_VALUE;
    strlcpy(message, e.what(), sizeof(message));
  } catch (const std::bad_alloc &) {
    sqlstate = ERRCODE_OUT_OF_MEMORY;
    strlcpy(message, "out of memory in pg_orch", sizeof(message));
  } catch (const std::exception &e) {
    strlcpy(message, e.what(), sizeof(message));
  } catch (...) {
  }
  caught = nullptr;
  ereport(ERROR, (errcode(sqlstate), errmsg("%s", message), detail[0] ? errdetail("%s", detail) : 0,
                  hint[0] ? errhint("%s", hint) : 0));
  pg_unreachable();
}

}  // namespace orch::pg
