-- pg_orch: roles, row level security and privileges. Users read the tables
-- (row level security decides which rows) and change anything only through
-- the API functions, whose bodies are SECURITY DEFINER, pin search_path, and
-- check with 15_access.sql. No table is writable by users.

-- The roles are created when missing and survive DROP EXTENSION, but grant
-- nothing once the schema is gone. Grant them to login roles, or to
-- PostgREST's authenticated role.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'orch_admin') THEN
    CREATE ROLE orch_admin NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'orch_user') THEN
    CREATE ROLE orch_user NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'orch_viewer') THEN
    CREATE ROLE orch_viewer NOLOGIN;
  END IF;
END
$$;

-- Row level security: the owner's rows, rows shared with one of the
-- caller's identities, or everything for admins. Forced, so that even the
-- tables' owner goes through it unless it is a superuser.
--
-- Each policy spells the rule out rather than calling one shared function:
-- a policy's expression is bound to its objects when it is created, while
-- an SQL function that the planner could inline would be parsed again
-- under the reader's search_path, and one it cannot inline (SET clause)
-- runs its query for every row.
ALTER TABLE orch.process_types ENABLE ROW LEVEL SECURITY;
ALTER TABLE orch.process_types FORCE ROW LEVEL SECURITY;
CREATE POLICY read_usable ON orch.process_types FOR SELECT USING (
  owner = (SELECT orch.current_owner()) OR (SELECT orch._is_admin())
  OR EXISTS (SELECT 1 FROM orch.process_type_grants g
             WHERE g.type = process_types.name AND g.grantee = ANY ((SELECT orch._identities())::text[])));

ALTER TABLE orch.process_type_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE orch.process_type_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY read_usable ON orch.process_type_versions FOR SELECT USING (
  owner = (SELECT orch.current_owner()) OR (SELECT orch._is_admin())
  OR EXISTS (SELECT 1 FROM orch.process_type_grants g
             WHERE g.type = process_type_versions.type AND g.grantee = ANY ((SELECT orch._identities())::text[])));

ALTER TABLE orch.process_type_tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE orch.process_type_tasks FORCE ROW LEVEL SECURITY;
CREATE POLICY read_usable ON orch.process_type_tasks FOR SELECT USING (
  owner = (SELECT orch.current_owner()) OR (SELECT orch._is_admin())
  OR EXISTS (SELECT 1 FROM orch.process_type_grants g
             WHERE g.type = process_type_tasks.type AND g.grantee = ANY ((SELECT orch._identities())::text[])));

ALTER TABLE orch.process_type_grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE orch.process_type_grants FORCE ROW LEVEL SECURITY;
CREATE POLICY read_own ON orch.process_type_grants FOR SELECT USING (
  type_owner = (SELECT orch.current_owner()) OR grantee = ANY ((SELECT orch._identities())::text[])
  OR (SELECT orch._is_admin()));

ALTER TABLE orch.process_permissions ENABLE ROW LEVEL SECURITY;
ALTER TABLE orch.process_permissions FORCE ROW LEVEL SECURITY;
CREATE POLICY read_own ON orch.process_permissions FOR SELECT USING (
  owner = (SELECT orch.current_owner()) OR grantee = ANY ((SELECT orch._identities())::text[])
  OR (SELECT orch._is_admin()));

ALTER TABLE orch.processes ENABLE ROW LEVEL SECURITY;
ALTER TABLE orch.processes FORCE ROW LEVEL SECURITY;
CREATE POLICY read_own_or_shared ON orch.processes FOR SELECT USING (
  owner = (SELECT orch.current_owner()) OR (SELECT orch._is_admin())
  OR EXISTS (SELECT 1 FROM orch.process_permissions pp
             WHERE pp.process_id = processes.id AND pp.grantee = ANY ((SELECT orch._identities())::text[])));

ALTER TABLE orch.event_subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE orch.event_subscriptions FORCE ROW LEVEL SECURITY;
CREATE POLICY read_own_or_shared ON orch.event_subscriptions FOR SELECT USING (
  owner = (SELECT orch.current_owner()) OR (SELECT orch._is_admin())
  OR EXISTS (SELECT 1 FROM orch.process_permissions pp
             WHERE pp.process_id = event_subscriptions.process_id
               AND pp.grantee = ANY ((SELECT orch._identities())::text[])));

-- A creator's JWT claims: never shown to those the process is shared with.
ALTER TABLE orch.process_claims ENABLE ROW LEVEL SECURITY;
ALTER TABLE orch.process_claims FORCE ROW LEVEL SECURITY;
CREATE POLICY read_own ON orch.process_claims FOR SELECT USING (
  owner = (SELECT orch.current_owner()) OR (SELECT orch._is_admin()));

ALTER TABLE orch.runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE orch.runs FORCE ROW LEVEL SECURITY;
CREATE POLICY read_own_or_shared ON orch.runs FOR SELECT USING (
  owner = (SELECT orch.current_owner()) OR (SELECT orch._is_admin())
  OR EXISTS (SELECT 1 FROM orch.process_permissions pp
             WHERE pp.process_id = runs.process_id AND pp.grantee = ANY ((SELECT orch._identities())::text[])));

ALTER TABLE orch.tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE orch.tasks FORCE ROW LEVEL SECURITY;
CREATE POLICY read_own_or_shared ON orch.tasks FOR SELECT USING (
  owner = (SELECT orch.current_owner()) OR (SELECT orch._is_admin())
  OR EXISTS (SELECT 1 FROM orch.process_permissions pp
             WHERE pp.process_id = tasks.process_id AND pp.grantee = ANY ((SELECT orch._identities())::text[])));

ALTER TABLE orch.events ENABLE ROW LEVEL SECURITY;
ALTER TABLE orch.events FORCE ROW LEVEL SECURITY;
-- Events outlive their process, and a process id may be used again: a
-- share shows the events of the process it was made for, not those of an
-- earlier process with the same id.
CREATE POLICY read_own_or_shared ON orch.events FOR SELECT USING (
  owner = (SELECT orch.current_owner()) OR (SELECT orch._is_admin())
  OR EXISTS (SELECT 1 FROM orch.process_permissions pp JOIN orch.processes p ON p.id = pp.process_id
             WHERE pp.process_id = events.process_id AND pp.grantee = ANY ((SELECT orch._identities())::text[])
               AND p.owner = events.owner AND events.at >= p.created_at));

-- Statistics: owners see their own processes' (they sum in the views).
ALTER TABLE orch.task_totals ENABLE ROW LEVEL SECURITY;
ALTER TABLE orch.task_totals FORCE ROW LEVEL SECURITY;
CREATE POLICY read_own ON orch.task_totals FOR SELECT USING (
  owner = (SELECT orch.current_owner()) OR (SELECT orch._is_admin()));
ALTER TABLE orch.task_days ENABLE ROW LEVEL SECURITY;
ALTER TABLE orch.task_days FORCE ROW LEVEL SECURITY;
CREATE POLICY read_own ON orch.task_days FOR SELECT USING (
  owner = (SELECT orch.current_owner()) OR (SELECT orch._is_admin()));

-- Archives hold every owner's rows: only admins see where they are.
ALTER TABLE orch.archives ENABLE ROW LEVEL SECURITY;
ALTER TABLE orch.archives FORCE ROW LEVEL SECURITY;
CREATE POLICY read_admin ON orch.archives FOR SELECT USING ((SELECT orch._is_admin()));

-- Privileges: nothing for PUBLIC; reading for the three roles; changing
-- through functions for orch_user and orch_admin.
REVOKE ALL ON ALL TABLES IN SCHEMA orch FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA orch FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA orch FROM PUBLIC;
GRANT USAGE ON SCHEMA orch TO orch_admin, orch_user, orch_viewer;
GRANT SELECT ON ALL TABLES IN SCHEMA orch TO orch_admin, orch_user, orch_viewer;
-- ... but not the partitions of orch.events: read directly, a partition
-- would show every owner's events (its parent's policies do not apply).
-- The month partitions are made later, with no grant.
REVOKE ALL ON orch.events_default FROM orch_admin, orch_user, orch_viewer;

-- What reading needs, including the functions the policies call.
GRANT EXECUTE ON FUNCTION
  orch.current_owner(), orch._caller(), orch._jwt_claims(), orch._is_admin(), orch._identities(),
  orch.input_data(text), orch.next_runs(text, text, timestamptz, integer), orch._effective_time_zone(text),
  orch._next_run_times(text, text, timestamptz, integer),
  orch.process_state(text), orch.history(text), orch.wait(text, interval),
  orch._duration_percentile(bigint[], float8), orch._duration_histogram_merge(bigint[], bigint[]),
  orch._duration_histogram_sum(bigint[])
TO orch_admin, orch_user, orch_viewer;

-- The sql task worker's entry point checks its caller itself.
GRANT EXECUTE ON FUNCTION orch._sql_task_finished(jsonb), orch._sql_task_recording() TO PUBLIC;

GRANT EXECUTE ON FUNCTION
  orch.define_process_type(text, jsonb, text, integer), orch.drop_process_type(text), orch.upgrade_process(text),
  orch.grant_process_type(text, text), orch.revoke_process_type(text, text),
  orch.create_process(text, text, jsonb, text, text, text, text), orch.start(text, text), orch.stop(text),
  orch.delete_process(text), orch.retry(bigint), orch.share_process(text, text, boolean),
  orch.unshare_process(text, text), orch.set_schedule(text, text, text, text, text), orch.pause(text),
  orch.resume(text), orch.on_event(text, text), orch.off_event(text, text), orch.emit(text, jsonb)
TO orch_admin, orch_user;
GRANT EXECUTE ON FUNCTION orch.prune_history() TO orch_admin;
