// The two guards between C++ and PostgreSQL, one per direction. Every
// crossing goes through one of them:
//
//   cpp_entry(f)  PostgreSQL -> C++. Wraps the body of every extern "C"
//                 entry point (SQL functions, the workers' main functions).
//                 Catches every C++ exception, leaves the catch block, and
//                 only then raises a PostgreSQL ERROR, so the longjmp never
//                 crosses a live C++ frame or exception.
//
//   pg_call(f)    C++ -> PostgreSQL. Runs f under PG_TRY; a PostgreSQL ERROR
//                 becomes a PgError exception after the memory context is
//                 restored and the error copied. The caller must then either
//                 let it reach cpp_entry (which raises it again, with its
//                 SQLSTATE, message, detail and hint) or abort the
//                 transaction (the workers do).
//
// Rule for code inside pg_call: an ERROR longjmps out of f, so f's own frame
// must not own C++ objects with destructors while it calls PostgreSQL; it may
// write into objects owned by its caller. A C++ exception thrown inside f is
// carried out of the PG_TRY region and re-thrown after it.
#pragma once

#include <exception>
#include <string>
#include <type_traits>
#include <utility>

#include "pg/postgres_headers.hpp"

namespace orch::pg {

class PgError : public std::exception {
 public:
  // Everything is copied: the ErrorData lives in the memory context of the
  // failed call, which aborting the transaction frees.
  explicit PgError(const ErrorData *edata)
      : message_(edata->message ? edata->message : "error"),
        detail_(edata->detail ? edata->detail : ""),
        hint_(edata->hint ? edata->hint : ""),
        sqlstate_(edata->sqlerrcode) {}
  const char *what() const noexcept override { return message_.c_str(); }
  const std::string &detail() const { return detail_; }
  const std::string &hint() const { return hint_; }
  int sqlstate() const { return sqlstate_; }

 private:
  std::string message_, detail_, hint_;
  int sqlstate_;
};

void pg_call_impl(void (*fn)(void *), void *arg);

template <typename F>
auto pg_call(F &&f) -> decltype(f()) {
  using Result = decltype(f());
  if constexpr (std::is_void_v<Result>) {
    pg_call_impl([](void *p) { (*static_cast<std::remove_reference_t<F> *>(p))(); }, &f);
  } else {
    Result result{};
    auto body = [&]() { result = f(); };
    pg_call_impl([](void *p) { (*static_cast<decltype(body) *>(p))(); }, &body);
    return result;
  }
}

// Raises the ERROR for an exception caught by cpp_entry. Never returns.
[[noreturn]] void raise_caught(std::exception_ptr caught);

template <typename F>
auto cpp_entry(F &&f) -> decltype(f()) {
  // The exception is copied out of the catch block before raising: raising
  // inside the handler would longjmp over the C++ runtime's exception state.
  std::exception_ptr caught;
  try {
    return f();
  } catch (...) {
    caught = std::current_exception();
  }
  raise_caught(std::move(caught));
}

}  // namespace orch::pg
