-- pg_orch's SQL, in files by concept; the Makefile joins src/sql/*.sql in
-- name order into the versioned install script (pg_orch--X.Y.sql).
\echo Use "CREATE EXTENSION pg_orch" to load this file. \quit

-- The schema belongs to the extension, so DROP EXTENSION takes it, and every
-- privilege granted on it, along.
CREATE SCHEMA orch;

-- Statuses (DESIGN.md). Legal moves are checked by one trigger function that
-- asks src/core/lifecycle, so no code path can take an illegal step.
CREATE TYPE orch.status AS ENUM ('PENDING', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'STOPPED');
CREATE TYPE orch.task_status AS ENUM
  ('PENDING', 'DISPATCHED', 'RUNNING', 'COMPLETED', 'FAILED', 'STOPPED', 'SKIPPED');

-- The role acting: the one set with SET ROLE (as PostgREST does for each
-- request), else the session's. Unlike current_user it stays the caller's
-- inside the extension's SECURITY DEFINER functions, and SET ROLE itself
-- checks membership, so it cannot be forged.
CREATE FUNCTION orch._caller() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE WHEN current_setting('role') <> 'none' THEN current_setting('role') ELSE session_user::text END
$$;

-- The JWT claims PostgREST / Supabase set for this request, if any. They are
-- honoured only for roles that cannot log in (authenticated, anon): those
-- are reached through SET ROLE by the API server, while a role that can log
-- in and run SQL could set any claims it likes.
CREATE FUNCTION orch._jwt_claims() RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
  SELECT nullif(current_setting('request.jwt.claims', true), '')::jsonb
  WHERE NOT (SELECT r.rolcanlogin FROM pg_catalog.pg_roles r WHERE r.rolname = orch._caller())
$$;

-- Who owns a row: the JWT "sub" claim when honoured (see _jwt_claims),
-- otherwise the acting role.
CREATE FUNCTION orch.current_owner() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(orch._jwt_claims() ->> 'sub', orch._caller())
$$;
