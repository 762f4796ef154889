// Who is calling (README, "Security": the trust model).
//
// The caller is the effective role at the moment an API function is called:
// GetUserId() captured by orch_api, the C entry point of every function that
// changes something, before the extension's own identity takes over; outside
// an API call, GetUserId() itself. Never session_user: a superuser's ANALYZE
// evaluating a user's index expression must not make that user an admin.
//
// JWT claims (request.jwt.claims, as PostgREST sets them) are honoured only
// when the caller is one of orch.jwt_roles and the session user one of
// orch.jwt_authenticators, or in an sql task's worker whose claims are fixed
// to its creator's (sql_task_runner.hpp).
#pragma once

namespace orch::pg {

// Called by the sql task worker once request.jwt.claims can no longer change.
void trust_fixed_jwt_claims();

}  // namespace orch::pg
