-- The red-team suite: every way found to act as someone else, reach the
-- OS or become superuser, each asserting that it fails with the expected
-- SQLSTATE and changes nothing (README, "Security"). Add every new hole
-- here. The TAP test t/005_red_team.pl covers what needs several sessions.
\set VERBOSITY terse

-- try(statement): 'ok', or the SQLSTATE and message it failed with.
CREATE FUNCTION public.try(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE statement;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ' ' || SQLERRM;
END $$;
GRANT EXECUTE ON FUNCTION public.try(text) TO PUBLIC;

-- Polls (with a deadline) until the process has an event of this kind.
CREATE FUNCTION public.wait_for_event(process text, wanted text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  deadline timestamptz := clock_timestamp() + interval '30 seconds';
BEGIN
  LOOP
    IF EXISTS (SELECT 1 FROM orch.events e WHERE e.process_id = process AND e.kind = wanted) THEN
      RETURN true;
    ELSIF clock_timestamp() > deadline THEN
      RETURN false;
    END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
END $$;

CREATE ROLE regress_rt_alice LOGIN;
CREATE ROLE regress_rt_bob LOGIN;
CREATE ROLE regress_rt_admin LOGIN IN ROLE orch_admin;
CREATE ROLE regress_rt_authenticated NOLOGIN;
CREATE ROLE regress_rt_authenticator LOGIN NOINHERIT IN ROLE regress_rt_authenticated;
CREATE ROLE regress_rt_member LOGIN IN ROLE regress_rt_authenticated;  -- a login role that may SET ROLE to it
CREATE ROLE "jwt:regress_rt_bob" LOGIN;  -- named like a JWT owner
CREATE ROLE "jwt:regress_rt_carol" LOGIN IN ROLE orch_viewer;  -- named like a JWT user something is shared with
GRANT orch_user TO regress_rt_alice, regress_rt_bob, regress_rt_authenticated, regress_rt_member, "jwt:regress_rt_bob";
SELECT name FROM orch.define_process_type('rt-sql', '[{"name": "q", "sql": "SELECT 1"}]');
SELECT orch.grant_process_type('rt-sql', 'orch_user');
SELECT name FROM orch.define_process_type('rt-command', '[{"name": "c", "command": ["/bin/echo", "{{x}}"]}]');

-- ---------------------------------------------------------------------------
-- 1. Someone else's maintenance must not make a user's code admin. Alice's
-- index expression calls the API; a superuser's ANALYZE, VACUUM, REINDEX,
-- CREATE INDEX and REFRESH run it. Refused: a security-restricted operation.
GRANT CREATE ON SCHEMA public TO regress_rt_alice;
SET ROLE regress_rt_alice;
CREATE TABLE public.rt_indexed (x int);
INSERT INTO public.rt_indexed VALUES (1);
CREATE FUNCTION public.rt_define(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF current_user <> 'regress_rt_alice' OR session_user <> 'regress_rt_alice' THEN
    RAISE NOTICE 'as %: %', session_user,
      public.try($q$SELECT orch.define_process_type('rt-pwn', '[{"name": "x", "shell": "id"}]')$q$);
  END IF;
  RETURN $1;
END $$;
CREATE INDEX rt_indexed_idx ON public.rt_indexed (public.rt_define(x));
CREATE MATERIALIZED VIEW public.rt_view AS SELECT public.rt_define(x) FROM public.rt_indexed;
RESET ROLE;
ANALYZE public.rt_indexed;
VACUUM (ANALYZE) public.rt_indexed;
REINDEX TABLE public.rt_indexed;
CREATE INDEX rt_indexed_idx2 ON public.rt_indexed (public.rt_define(x + 1));
REFRESH MATERIALIZED VIEW public.rt_view;
SELECT count(*) AS pwn_types FROM orch.process_types WHERE name = 'rt-pwn';
-- Outside maintenance, the caller is the effective role, never session_user:
-- inside Alice's SECURITY DEFINER function called by a superuser, it is Alice.
SET ROLE regress_rt_alice;
CREATE FUNCTION public.rt_whoami() RETURNS text LANGUAGE sql SECURITY DEFINER AS $$ SELECT orch.current_owner() $$;
RESET ROLE;
SELECT public.rt_whoami() AS caller_inside_alices_function;
DROP MATERIALIZED VIEW public.rt_view;
DROP TABLE public.rt_indexed;
DROP FUNCTION public.rt_define(int), public.rt_whoami();
REVOKE CREATE ON SCHEMA public FROM regress_rt_alice;

-- ---------------------------------------------------------------------------
-- 2. JWT claims are honoured only for orch.jwt_roles in sessions of
-- orch.jwt_authenticators, and JWT owners never collide with roles.
SHOW orch.jwt_roles;
SHOW orch.jwt_authenticators;
SET orch.jwt_roles = 'regress_rt_authenticated';
SET orch.jwt_authenticators = 'regress_rt_authenticator';
-- The settings are superuser-only, and checked.
SET ROLE regress_rt_alice;
SELECT public.try($$SET orch.jwt_roles = 'orch_user'$$);
SELECT public.try($$SET orch.jwt_authenticators = 'regress_rt_alice'$$);
RESET ROLE;
SELECT public.try($$SET orch.jwt_roles = 'a,,b'$$);
SELECT public.try($$SET orch.jwt_authenticators = '"unterminated'$$);

-- A real request: bob's JWT makes a process owned by "jwt:regress_rt_bob".
SET SESSION AUTHORIZATION regress_rt_authenticator;
SET ROLE regress_rt_authenticated;
SET request.jwt.claims = '{"sub": "regress_rt_bob", "email": "bob@example.com", "phone": "555"}';
SELECT orch.current_owner();
SELECT id, owner FROM orch.create_process('rt-bob-jwt', 'rt-sql');
-- A token without "sub" is no one's: it reads nothing and writes nothing.
SET request.jwt.claims = '{"role": "authenticated"}';
SELECT orch.current_owner() IS NULL AS no_owner, (SELECT count(*) FROM orch.processes) AS sees;
SELECT public.try($$SELECT orch.create_process('rt-nosub', 'rt-sql')$$);
SELECT public.try($$SELECT orch.define_process_type('rt-nosub', '[{"name": "q", "sql": "SELECT 1"}]')$$);
RESET request.jwt.claims;
SELECT public.try($$SELECT orch.create_process('rt-noclaims', 'rt-sql')$$);
RESET ROLE;
RESET SESSION AUTHORIZATION;

-- The role regress_rt_bob is not the JWT user regress_rt_bob.
SET ROLE regress_rt_bob;
SELECT orch.current_owner(), (SELECT count(*) FROM orch.processes) AS sees;
SELECT public.try($$SELECT orch.delete_process('rt-bob-jwt')$$);
RESET ROLE;
-- ... nor is a role named "jwt:regress_rt_bob": it owns nothing and can do nothing.
SET ROLE "jwt:regress_rt_bob";
SELECT orch.current_owner() IS NULL AS no_owner, (SELECT count(*) FROM orch.processes) AS sees;
SELECT public.try($$SELECT orch.start('rt-bob-jwt')$$);
SELECT public.try($$SELECT orch.create_process('rt-fake', 'rt-sql')$$);
RESET ROLE;

-- Forged claims: any member of orch_user, or a login role that may SET ROLE
-- to the JWT role, sets claims naming bob. They are ignored: the session
-- user is not an authenticator.
SET ROLE regress_rt_alice;
SET ROLE orch_user;
SELECT set_config('request.jwt.claims', '{"sub": "regress_rt_bob"}', false) IS NOT NULL AS set;
SELECT orch.current_owner(), (SELECT count(*) FROM orch.processes) AS sees;
SELECT public.try($$SELECT orch.share_process('rt-bob-jwt', 'orch_user', true)$$);
RESET ROLE;
SET SESSION AUTHORIZATION regress_rt_member;
SET ROLE regress_rt_authenticated;
SET request.jwt.claims = '{"sub": "regress_rt_bob"}';
SELECT orch.current_owner(), (SELECT count(*) FROM orch.processes) AS sees;
SELECT public.try($$SELECT orch.set_schedule('rt-bob-jwt', '* * * * *')$$);
SELECT public.try($$SELECT orch.delete_process('rt-bob-jwt')$$);
RESET request.jwt.claims;
RESET ROLE;
RESET SESSION AUTHORIZATION;
SELECT id, owner, schedule FROM orch.processes WHERE id = 'rt-bob-jwt';
SELECT actor, kind FROM orch.events WHERE process_id = 'rt-bob-jwt' ORDER BY id;
RESET orch.jwt_roles;
RESET orch.jwt_authenticators;

-- ---------------------------------------------------------------------------
-- 3. Sharing: an editor may run the process, not delete it or share it on;
-- no sharee reads the creator's JWT claims.
SET orch.jwt_roles = 'regress_rt_authenticated';
SET orch.jwt_authenticators = 'regress_rt_authenticator';
SET SESSION AUTHORIZATION regress_rt_authenticator;
SET ROLE regress_rt_authenticated;
SET request.jwt.claims = '{"sub": "regress_rt_bob", "email": "bob@example.com", "phone": "555"}';
SELECT orch.share_process('rt-bob-jwt', 'regress_rt_alice', can_edit => true);
SELECT orch.share_process('rt-bob-jwt', 'jwt:regress_rt_carol');
SELECT process_id, owner, claims ->> 'email' AS email FROM orch.process_claims;
RESET request.jwt.claims;
RESET ROLE;
RESET SESSION AUTHORIZATION;
RESET orch.jwt_roles;
RESET orch.jwt_authenticators;
-- The role "jwt:regress_rt_carol" is not the JWT user it is shared with.
SET ROLE "jwt:regress_rt_carol";
SELECT count(*) AS role_named_like_jwt_sees FROM orch.processes;
RESET ROLE;
SET ROLE regress_rt_alice;
SELECT id FROM orch.processes;
SELECT count(*) AS claims_seen FROM orch.process_claims;
SELECT public.try($$SELECT orch.delete_process('rt-bob-jwt')$$);
SELECT public.try($$SELECT orch.share_process('rt-bob-jwt', 'regress_rt_alice', true)$$);
SELECT public.try($$SELECT orch.unshare_process('rt-bob-jwt', 'regress_rt_alice')$$);
SELECT (orch.pause('rt-bob-jwt')).is_active AS active_after_editor_paused;
RESET ROLE;
SELECT count(*) AS still_there FROM orch.processes WHERE id = 'rt-bob-jwt';

-- ---------------------------------------------------------------------------
-- 4. Audit events do not leak through a reused process id: Alice's deleted
-- process "rt-reused" had events; Bob makes his own "rt-reused" and shares
-- it with himself.
SET ROLE regress_rt_alice;
SELECT id FROM orch.create_process('rt-reused', 'rt-sql');
SELECT orch.delete_process('rt-reused');
RESET ROLE;
SET ROLE regress_rt_bob;
SELECT public.try($$SELECT orch.create_process('rt-reused', 'rt-sql')$$);
SELECT orch.share_process('rt-reused', 'regress_rt_bob');
SELECT orch.share_process('rt-reused', 'orch_user');
SELECT owner, kind FROM orch.events WHERE process_id = 'rt-reused' ORDER BY id;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 5. Labels: SCHEDULED, RETRY and event: runs are pg_orch's to make.
SET ROLE regress_rt_bob;
SELECT public.try($$SELECT orch.start('rt-reused', 'SCHEDULED')$$);
SELECT public.try($$SELECT orch.start('rt-reused', 'RETRY')$$);
SELECT public.try($$SELECT orch.start('rt-reused', 'event:order_created')$$);
SELECT count(*) AS runs FROM orch.runs WHERE process_id = 'rt-reused';
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 6. Type versions: a process runs the version it was created with. Alice
-- grants her sql type to Bob, Bob creates a process, Alice redefines the
-- SQL to copy Bob's private table into hers: Bob's runs still run the SQL
-- he chose, until he moves to the new version himself.
SET ROLE regress_rt_alice;
SELECT name, version FROM orch.define_process_type('rt-report', '[{"name": "q", "sql": "SELECT ''v1''"}]');
SELECT orch.grant_process_type('rt-report', 'regress_rt_bob');
RESET ROLE;
CREATE TABLE public.rt_bob_secret (secret text);
INSERT INTO public.rt_bob_secret VALUES ('bob''s secret');
ALTER TABLE public.rt_bob_secret OWNER TO regress_rt_bob;
CREATE TABLE public.rt_alice_loot (secret text);
ALTER TABLE public.rt_alice_loot OWNER TO regress_rt_alice;
GRANT INSERT ON public.rt_alice_loot TO PUBLIC;
SET ROLE regress_rt_bob;
SELECT id, type_version FROM orch.create_process('rt-bob-report', 'rt-report');
RESET ROLE;
SET ROLE regress_rt_alice;
SELECT name, version FROM orch.define_process_type('rt-report',
  '[{"name": "q", "sql": "INSERT INTO public.rt_alice_loot SELECT secret FROM public.rt_bob_secret RETURNING ''v2''"}]');
RESET ROLE;
SET ROLE regress_rt_bob;
SELECT orch.start('rt-bob-report') > 0 AS started;
SELECT orch.wait('rt-bob-report', '30 seconds');
SELECT t.output FROM orch.tasks t JOIN orch.processes p ON p.current_run_id = t.run_id WHERE p.id = 'rt-bob-report';
-- Moving on is the owner's choice alone: not even an editor's who owns the
-- type, or Alice could share-and-upgrade her way into running new SQL as Bob.
SELECT orch.share_process('rt-bob-report', 'regress_rt_alice', can_edit => true);
RESET ROLE;
SET ROLE regress_rt_alice;
SELECT public.try($$SELECT orch.upgrade_process('rt-bob-report')$$);
RESET ROLE;
SET ROLE regress_rt_bob;
SELECT id, type_version FROM orch.upgrade_process('rt-bob-report');
RESET ROLE;
-- A type name belongs to its first definer: not even an admin may redefine it.
SET ROLE regress_rt_admin;
SELECT public.try($$SELECT orch.define_process_type('rt-report', '[{"name": "q", "sql": "SELECT 3"}]')$$);
SELECT public.try($$SELECT orch.drop_process_type('rt-report')$$);
RESET ROLE;
SET ROLE regress_rt_bob;
SELECT public.try($$SELECT orch.define_process_type('rt-report', '[{"name": "q", "sql": "SELECT 3"}]')$$);
SELECT orch.delete_process('rt-bob-report');
RESET ROLE;
SELECT count(*) AS looted FROM public.rt_alice_loot;
SELECT name, owner, version FROM orch.process_types WHERE name = 'rt-report';
SELECT version, tasks -> 0 ->> 'sql' AS sql FROM orch.process_type_versions WHERE type = 'rt-report' ORDER BY version;
SET ROLE regress_rt_admin;
SELECT orch.drop_process_type('rt-report');
RESET ROLE;
DROP TABLE public.rt_bob_secret, public.rt_alice_loot;

-- ---------------------------------------------------------------------------
-- 7. Silent acceptance becomes a clear error, with nothing written.
SET ROLE regress_rt_alice;
SELECT public.try($$SELECT orch.create_process('rt-never', 'rt-sql', schedule => '0 0 30 2 *')$$);
SELECT public.try($$SELECT orch.create_process('rt-zone', 'rt-sql', schedule => '@daily', timezone => 'UTC+99')$$);
SELECT public.try($$SELECT orch.create_process('rt-zone', 'rt-sql', schedule => '@daily', timezone => 'AAA-14BBB-16')$$);
SELECT public.try($$SELECT orch.create_process('rt-zone', 'rt-sql', schedule => '@daily', timezone => 'AAA-14BBB-16,J334/23:43,J365/23')$$);
SELECT public.try($$SELECT orch.create_process('rt-zone', 'rt-sql', schedule => '@daily', timezone => 'Nowhere/Land')$$);
SELECT public.try($$SELECT orch.create_process('rt-zone', 'rt-sql', timezone => 'Europe/Paris')$$);
SELECT id FROM orch.create_process('rt-manual', 'rt-sql');
SELECT public.try($$SELECT orch.set_schedule('rt-manual', NULL, timezone => 'Europe/Paris')$$);
SELECT public.try($$SELECT orch.set_schedule('rt-manual', '0 0 31 4 *')$$);
SELECT public.try($$SET orch.timezone = 'UTC+99'$$);
SELECT public.try($$SET orch.timezone = 'Nowhere/Land'$$);
SELECT public.try($$SET orch.timezone = 'AAA-14BBB-16'$$);
SELECT public.try($$SET orch.timezone = 'Asia/Tokyo'$$);
RESET orch.timezone;
SELECT public.try($$SELECT orch.define_process_type('rt-env', '[{"name": "q", "sql": "SELECT 1", "env": {"A": "1"}}]')$$);
SELECT public.try($$SELECT orch.define_process_type('rt-dir', '[{"name": "q", "sql": "SELECT 1", "working_directory": "/tmp"}]')$$);
SELECT name FROM orch.define_process_type('rt-alice', '[{"name": "q", "sql": "SELECT 1"}]');
SELECT public.try($$SELECT orch.define_process_type('rt-mc', '[{"name": "q", "sql": "SELECT 1"}]', max_concurrent => 0)$$);
SELECT public.try($$SELECT orch.revoke_process_type('rt-alice', NULL)$$);
SELECT public.try($$SELECT orch.revoke_process_type(NULL, 'regress_rt_bob')$$);
SELECT public.try($$SELECT orch.unshare_process('rt-manual', NULL)$$);
SELECT public.try($$SELECT orch.unshare_process(NULL, 'regress_rt_bob')$$);
SELECT public.try($$SELECT orch.retry(NULL)$$);
SELECT id, schedule, timezone FROM orch.processes ORDER BY id;
SELECT name FROM orch.process_types ORDER BY name;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 8. An sql task runs as its creator in a session that never holds another
-- identity: nothing its statement sets up runs as anyone else, and its
-- statement cannot take the worker's identity back, change its claims or
-- record anything itself. Each attack tries to make the creator superuser.
RESET ROLE;
GRANT CREATE ON DATABASE contrib_regression TO regress_rt_alice;
SET ROLE regress_rt_alice;
CREATE TEMP TABLE rt_attacks (name text, sql text);
INSERT INTO rt_attacks VALUES
  ('deferred-trigger', $a$CREATE TEMP TABLE t (x int);
     CREATE FUNCTION pg_temp.f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN ALTER ROLE regress_rt_alice SUPERUSER; RETURN NULL; END$$;
     CREATE CONSTRAINT TRIGGER tr AFTER INSERT ON t DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pg_temp.f();
     INSERT INTO t VALUES (1)$a$),
  ('hold-cursor', $a$CREATE FUNCTION pg_temp.g() RETURNS int LANGUAGE plpgsql AS $$BEGIN ALTER ROLE regress_rt_alice SUPERUSER; RETURN 1; END$$;
     DECLARE c CURSOR WITH HOLD FOR SELECT pg_temp.g()$a$),
  ('temp-objects', $a$CREATE FUNCTION pg_temp.h(text) RETURNS boolean LANGUAGE plpgsql AS $$BEGIN ALTER ROLE regress_rt_alice SUPERUSER; RETURN true; END$$;
     CREATE DOMAIN pg_temp.jsonb AS text CHECK (pg_temp.h(VALUE));
     CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.h(VALUE));
     CREATE DOMAIN pg_temp.int8 AS pg_catalog.int8 CHECK (pg_temp.h(VALUE::pg_catalog.text));
     CREATE TEMP TABLE tasks (id int); CREATE TEMP VIEW runs AS SELECT 1 AS id$a$),
  ('search-path', $a$CREATE SCHEMA IF NOT EXISTS rt_evil;
     CREATE FUNCTION rt_evil.jsonb_build_array(jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$BEGIN ALTER ROLE regress_rt_alice SUPERUSER; RETURN '[]'; END$$;
     SET search_path = rt_evil, pg_catalog$a$),
  ('read-only', $a$SET LOCAL transaction_read_only = on; SET default_transaction_read_only = on$a$),
  ('session-authorization', $a$SET SESSION AUTHORIZATION postgres$a$),
  ('reset-role', $a$RESET ROLE$a$),
  ('set-role', $a$SET ROLE orch_user$a$),
  ('claims', $a$SELECT set_config('request.jwt.claims', '{"sub": "regress_rt_bob"}', false)$a$),
  ('self-record', $a$SELECT orch._sql_task_finished(jsonb_build_object('id', (SELECT max(id) FROM orch.tasks), 'outcome', 'COMPLETED'))$a$),
  ('whoami', $a$SELECT current_user, session_user, current_setting('is_superuser')$a$);
SELECT count(orch.define_process_type('rt-' || name, jsonb_build_array(jsonb_build_object('name', name, 'sql', sql))))
  AS attack_types,
  count(orch.create_process('rt-' || name, 'rt-' || name)) AS attack_processes
FROM rt_attacks;
-- One at a time, each committed before it is waited for.
SELECT format('SELECT orch.start(%L) > 0 AS started', 'rt-' || name), format('SELECT orch.wait(%L, ''60 seconds'')', 'rt-' || name)
FROM rt_attacks ORDER BY name \gexec
-- (PostgreSQL 16 reworded the refused ALTER ROLE: shown in 17's words on 15 too.)
SELECT name, status, output, replace(error_message, 'must be superuser to alter superuser roles or change superuser attribute',
                                     'permission denied to alter role') AS error_message
FROM orch.tasks WHERE process_id LIKE 'rt-%' AND name IN (SELECT name FROM rt_attacks)
ORDER BY name;
-- Nor can anyone else record an sql task's outcome.
SELECT public.try($$SELECT orch._sql_task_finished(jsonb_build_object('id', (SELECT max(id) FROM orch.tasks)))$$);
DROP TABLE rt_attacks;
RESET ROLE;
SELECT rolname, rolsuper FROM pg_roles WHERE rolname = 'regress_rt_alice';
DROP SCHEMA rt_evil CASCADE;
REVOKE CREATE ON DATABASE contrib_regression FROM regress_rt_alice;

-- ---------------------------------------------------------------------------
-- 9. A writable public schema: functions named like the built-ins that the
-- scheduler, the sql task worker and the API call, taking any argument.
-- None is ever called.
GRANT CREATE ON SCHEMA public TO regress_rt_alice;
SET ROLE regress_rt_alice;
CREATE TABLE public.rt_hijacked (what text);
GRANT INSERT ON public.rt_hijacked TO PUBLIC;
-- Each is a better match than the built-in it shadows (record against
-- anyelement, fixed arguments against VARIADIC "any"), so an unpinned
-- search_path with public in it would pick it.
CREATE FUNCTION public.to_jsonb(record) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.rt_hijacked VALUES ('to_jsonb as ' || current_user); RETURN '{}'; END $$;
CREATE FUNCTION public.jsonb_build_array(jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.rt_hijacked VALUES ('jsonb_build_array as ' || current_user); RETURN '[]'; END $$;
CREATE FUNCTION public.jsonb_build_object(text, text) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.rt_hijacked VALUES ('jsonb_build_object as ' || current_user); RETURN '{}'; END $$;
CREATE FUNCTION public.jsonb_build_object(text, text, text, text) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.rt_hijacked VALUES ('jsonb_build_object as ' || current_user); RETURN '{}'; END $$;
SET search_path = public, pg_catalog;
-- ... and in the caller's own pg_temp: types and tables named like the API's.
CREATE FUNCTION pg_temp.rt_log(text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.rt_hijacked VALUES ('temporary type as ' || current_user); RETURN true; END $$;
CREATE DOMAIN pg_temp.jsonb AS pg_catalog.text CHECK (pg_temp.rt_log(VALUE));
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.rt_log(VALUE));
CREATE TEMP TABLE processes (id text);
SELECT id FROM orch.create_process('rt-public', 'rt-alice', '{"k": "v"}');
SELECT orch.start('rt-public') > 0 AS started;
SELECT orch.wait('rt-public', '30 seconds');
DROP TABLE pg_temp.processes;
DROP DOMAIN pg_temp.jsonb, pg_temp.text;
DROP FUNCTION pg_temp.rt_log(pg_catalog.text);
RESET search_path;
RESET ROLE;
SELECT id FROM orch.create_process('rt-public-command', 'rt-command', '{"x": "hi"}');
SELECT orch.start('rt-public-command') > 0 AS started;
SELECT orch.wait('rt-public-command', '30 seconds');
SELECT count(*) AS hijacked_calls FROM public.rt_hijacked;
DROP TABLE public.rt_hijacked;
DROP FUNCTION public.to_jsonb(record), public.jsonb_build_array(jsonb), public.jsonb_build_object(text, text),
  public.jsonb_build_object(text, text, text, text);
REVOKE CREATE ON SCHEMA public FROM regress_rt_alice;

-- ---------------------------------------------------------------------------
-- 10. Nothing of one process fails the scheduler's work for the others. A
-- scheduled start that cannot be made (a placeholder its input lacks) is a
-- FAILED run; a schedule that can no longer be computed (its zone vanished
-- from the server) is paused, saying why. Meanwhile another user's run
-- completes.
SELECT name FROM orch.define_process_type('rt-wedge', '[{"name": "say", "command": ["/bin/echo", "{{msg}}"]}]');
SELECT orch.grant_process_type('rt-wedge', 'regress_rt_alice');
SET ROLE regress_rt_alice;
SELECT id FROM orch.create_process('rt-wedge', 'rt-wedge', schedule => '* * * * * *');
SELECT id FROM orch.create_process('rt-lost-zone', 'rt-alice', schedule => '* * * * * *', timezone => 'Europe/Paris');
RESET ROLE;
UPDATE orch.processes SET timezone = 'Nowhere/Land' WHERE id = 'rt-lost-zone';  -- as if the zone file went away
SET ROLE regress_rt_bob;
SELECT id FROM orch.create_process('rt-bystander', 'rt-sql');
SELECT orch.start('rt-bystander') > 0 AS started;
SELECT orch.wait('rt-bystander', '30 seconds');
RESET ROLE;
SELECT wait_for_event('rt-lost-zone', 'schedule_paused') AS lost_zone;
SELECT wait_for_event('rt-wedge', 'scheduled_run') AS wedge;
SELECT (orch.pause('rt-wedge')).is_active AS wedge_active;
SELECT status, triggered_by, total_tasks, error_message FROM orch.runs WHERE process_id = 'rt-wedge' ORDER BY id LIMIT 1;
SELECT status FROM orch.processes WHERE id = 'rt-wedge';
SELECT is_active, next_run_at, detail ->> 'error' AS error
FROM orch.processes p JOIN orch.events e ON e.process_id = p.id AND e.kind = 'schedule_paused' WHERE p.id = 'rt-lost-zone';

-- ---------------------------------------------------------------------------
-- 11. A started run's rows are written without INSERT (orch._write_run):
-- no one else may call it, since it checks no permission and no policy,
-- and what INSERT would do is never skipped in silence. An INSERT trigger
-- or rule an administrator adds makes starts fail, with nothing written,
-- until it is dropped.
SET ROLE regress_rt_alice;
SELECT id FROM orch.create_process('rt-direct', 'rt-sql');
SELECT public.try($$SELECT orch._write_run(1, 'rt-direct', 'regress_rt_bob', 'rt-sql', 1, '{}', 'MANUAL', false, 1,
                                           false, now())$$);
RESET ROLE;
CREATE FUNCTION public.rt_tasks_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER rt_audit AFTER INSERT ON orch.tasks FOR EACH ROW EXECUTE FUNCTION public.rt_tasks_audit();
SET ROLE regress_rt_alice;
SELECT public.try($$SELECT orch.start('rt-direct')$$);
RESET ROLE;
SELECT status, current_run_id IS NULL AS no_run FROM orch.processes WHERE id = 'rt-direct';
SELECT count(*) AS runs FROM orch.runs WHERE process_id = 'rt-direct';
DROP TRIGGER rt_audit ON orch.tasks;
DROP FUNCTION public.rt_tasks_audit();
CREATE RULE rt_rule AS ON INSERT TO orch.runs DO ALSO NOTHING;
SET ROLE regress_rt_alice;
SELECT public.try($$SELECT orch.start('rt-direct')$$);
RESET ROLE;
DROP RULE rt_rule ON orch.runs;
SET ROLE regress_rt_alice;
SELECT orch.start('rt-direct') > 0 AS started;
SELECT orch.wait('rt-direct', '30 seconds');
RESET ROLE;

-- Clean up.
SELECT orch.delete_process(id) FROM orch.processes ORDER BY id;
SELECT orch.drop_process_type(name) FROM orch.process_types ORDER BY name;
DROP FUNCTION public.try(text), public.wait_for_event(text, text);
DROP ROLE regress_rt_alice, regress_rt_bob, regress_rt_admin, regress_rt_authenticator, regress_rt_member,
          regress_rt_authenticated, "jwt:regress_rt_bob", "jwt:regress_rt_carol";
