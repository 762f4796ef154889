-- pg_orch's SQL, in files by concept; the Makefile joins sql/*.sql in name
-- order into the versioned install script (sql/pg_orch--X.Y.sql).
\echo Use "CREATE EXTENSION pg_orch" to load this file. \quit

-- The schema belongs to the extension, so DROP EXTENSION takes it, and every
-- privilege granted on it, along.
CREATE SCHEMA orch;

-- Statuses (README, "Statuses"). Legal moves are checked by one trigger function that
-- asks src/core/lifecycle, so no code path can take an illegal step.
CREATE TYPE orch.status AS ENUM ('PENDING', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'STOPPED');
CREATE TYPE orch.task_status AS ENUM
  ('PENDING', 'DISPATCHED', 'RUNNING', 'COMPLETED', 'FAILED', 'STOPPED', 'SKIPPED');

-- Who is calling (src/pg/identity.hpp): the effective role when an API
-- function was called, captured in C before the function's SECURITY DEFINER
-- body runs; elsewhere (row level security, reads) current_user. Never
-- session_user.
CREATE FUNCTION orch._caller() RETURNS text
LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'orch_caller';

-- The request's JWT claims ('{}' if none) when they are honoured: the caller
-- is one of orch.jwt_roles and the session user one of
-- orch.jwt_authenticators (PostgREST's login role), or an sql task runs
-- with its creator's claims. Otherwise NULL.
CREATE FUNCTION orch._jwt_claims() RETURNS jsonb
LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'orch_jwt_claims';

-- Who owns what the caller makes: "jwt:" and the token's "sub" when claims
-- are honoured, else the caller's role name. The two never collide: a role
-- whose name starts with "jwt:" owns nothing, and a token without "sub" is
-- no one (it can read what is shared with its role, and write nothing).
--
-- C (src/pg/identity.cpp): every API call and row level security check asks.
CREATE FUNCTION orch.current_owner() RETURNS text
LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'orch_current_owner';
