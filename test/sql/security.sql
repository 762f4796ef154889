-- Many users in one database: row level security, the API's own checks,
-- privileged command types, sharing, PostgREST-style JWT owners, input that
-- cannot inject, search_path hijacking, and the audit trail.
\set VERBOSITY terse

CREATE ROLE regress_alice LOGIN;
CREATE ROLE regress_bob LOGIN;
CREATE ROLE regress_viewer LOGIN;
CREATE ROLE regress_authenticated NOLOGIN;  -- what PostgREST switches to per request
CREATE ROLE regress_authenticator LOGIN NOINHERIT;  -- what PostgREST logs in as
GRANT regress_authenticated TO regress_authenticator;
GRANT orch_user TO regress_alice, regress_bob, regress_authenticated;
GRANT orch_viewer TO regress_viewer;

-- An admin defines the command types and grants one to every orch_user.
SELECT name FROM orch.define_process_type('echo', '[{"name": "say", "command": ["/bin/echo", "{{msg}}"]}]');
SELECT name FROM orch.define_process_type('argv', $$[{"name": "count",
  "command": ["/bin/sh", "-c", "printf '%s|' \"$#\" \"$1\"; test ! -e /tmp/pg_orch_pwned2", "sh", "{{msg}}"]}]$$);
SELECT name FROM orch.define_process_type('secret', '[{"name": "id", "command": ["/usr/bin/id"]}]');
SELECT orch.grant_process_type('echo', 'orch_user');
SELECT orch.grant_process_type('argv', 'orch_user');

-- Ordinary users may not define command or shell types.
SET ROLE regress_alice;
SELECT orch.define_process_type('mine', '[{"name": "x", "shell": "id"}]');
SELECT orch.define_process_type('echo', '[{"name": "x", "sql": "SELECT 1"}]');  -- not hers to redefine
SELECT orch.drop_process_type('echo');
SELECT orch.grant_process_type('echo', 'regress_alice');
-- ... and see only the types they may use.
SELECT name FROM orch.process_types ORDER BY name;
SELECT orch.create_process('a-secret', 'secret');
SELECT orch.create_process('a-nothing', 'no-such-type');  -- the same answer: nothing revealed

-- Alice's process.
SELECT id, owner FROM orch.create_process('a1', 'echo', '{"msg": "from alice"}');
SELECT orch.start('a1') IS NOT NULL AS started;
SELECT orch.wait('a1', '30 seconds');
SELECT name, status, output FROM orch.tasks WHERE process_id = 'a1';
RESET ROLE;

SELECT current_run_id AS a1_run FROM orch.processes WHERE id = 'a1' \gset

-- Bob sees none of it, through tables, views or functions ...
SET ROLE regress_bob;
SELECT (SELECT count(*) FROM orch.processes) AS processes, (SELECT count(*) FROM orch.runs) AS runs,
       (SELECT count(*) FROM orch.tasks) AS tasks, (SELECT count(*) FROM orch.events) AS events,
       (SELECT count(*) FROM orch.process_overview) AS overview, (SELECT count(*) FROM orch.stats) AS stats;
SELECT orch.process_state('a1');
SELECT orch.history('a1');
SELECT orch.wait('a1', '1 second');
-- ... cannot act on it, and is told exactly what he is told for a process that does not exist.
SELECT orch.start('a1');
SELECT orch.start('no-such-process');
SELECT orch.stop('a1');
SELECT orch.delete_process('a1');
\set VERBOSITY sqlstate
SELECT orch.retry(:a1_run);
SELECT orch.retry(999999999);
\set VERBOSITY terse
SELECT orch.pause('a1');
SELECT orch.resume('a1');
SELECT orch.set_schedule('a1', '* * * * *');
SELECT orch.share_process('a1', 'regress_bob', true);
-- ... and cannot write the tables directly.
UPDATE orch.tasks SET command = '{/usr/bin/id}';
INSERT INTO orch.events (kind) VALUES ('forged');
DELETE FROM orch.runs;
RESET ROLE;

-- Even the extension's owner cannot rewrite history.
UPDATE orch.events SET kind = 'deleted' WHERE process_id = 'a1';
DELETE FROM orch.events WHERE process_id = 'a1';

-- Sharing: a viewer sees a shared process and may not act on it.
SET ROLE regress_alice;
SELECT orch.share_process('a1', 'regress_viewer');
RESET ROLE;
SET ROLE regress_viewer;
SELECT id, status FROM orch.processes;
SELECT count(*) > 0 AS sees_runs FROM orch.runs WHERE process_id = 'a1';
SELECT orch.start('a1');
SELECT orch.create_process('v1', 'echo');
RESET ROLE;
-- Shared for editing, Bob may start it, but not share it further.
SET ROLE regress_alice;
SELECT orch.share_process('a1', 'regress_bob', can_edit => true);
RESET ROLE;
SET ROLE regress_bob;
SELECT orch.start('a1') IS NOT NULL AS bob_started;
SELECT orch.wait('a1', '30 seconds');
SELECT orch.share_process('a1', 'regress_viewer', true);
RESET ROLE;
SET ROLE regress_alice;
SELECT orch.unshare_process('a1', 'regress_bob');
RESET ROLE;
SET ROLE regress_bob;
SELECT count(*) AS bob_sees FROM orch.processes;
RESET ROLE;

-- PostgREST / Supabase: the authenticator logs in and switches to one role
-- per request; owners come from the JWT "sub" claim, as "jwt:<sub>".
SET orch.jwt_roles = 'regress_authenticated';
SET orch.jwt_authenticators = 'regress_authenticator';
SET SESSION AUTHORIZATION regress_authenticator;
SET ROLE regress_authenticated;
SET request.jwt.claims = '{"sub": "user-1", "role": "authenticated"}';
SELECT orch.current_owner();
SELECT id, owner FROM orch.create_process('u1-job', 'echo', '{"msg": "user one"}');
SET request.jwt.claims = '{"sub": "user-2", "role": "authenticated"}';
SELECT count(*) AS user2_sees FROM orch.processes;
SELECT orch.start('u1-job');
SELECT orch.delete_process('u1-job');
SET request.jwt.claims = '{"sub": "user-1", "role": "authenticated"}';
SELECT id FROM orch.processes;
RESET request.jwt.claims;
RESET ROLE;
RESET SESSION AUTHORIZATION;
-- A role that can log in cannot pass itself off as a JWT user.
SET ROLE regress_bob;
SET request.jwt.claims = '{"sub": "user-1"}';
SELECT orch.current_owner();
SELECT count(*) AS forged_sees FROM orch.processes WHERE id = 'u1-job';
RESET request.jwt.claims;
RESET ROLE;

-- Type grants to one owner: Bob may use Alice's sql type once she grants it.
SET ROLE regress_alice;
SELECT name, runs_os_commands FROM orch.define_process_type('alice-sql', '[{"name": "q", "sql": "SELECT 1"}]');
RESET ROLE;
SET ROLE regress_bob;
SELECT orch.create_process('b-sql', 'alice-sql');
RESET ROLE;
SET ROLE regress_alice;
SELECT orch.grant_process_type('alice-sql', 'regress_bob');
RESET ROLE;
SET ROLE regress_bob;
SELECT id, owner FROM orch.create_process('b-sql', 'alice-sql');
SELECT orch.delete_process('b-sql');
RESET ROLE;

-- Input cannot inject: a hostile value is one argument, a NUL byte is refused.
SET ROLE regress_alice;
SELECT id FROM orch.create_process('inject', 'argv', jsonb_build_object('msg', E'-rf /\nx; touch /tmp/pg_orch_pwned2 $(id) `id`'));
SELECT orch.start('inject') IS NOT NULL AS started;
SELECT orch.wait('inject', '30 seconds');
SELECT exit_code, output FROM orch.tasks WHERE process_id = 'inject';
SELECT orch.create_process('nul', 'echo', '{"msg": "a\u0000b"}');
SELECT orch.input_data(E'msg:a\\;b;other:x');
RESET ROLE;

-- search_path hijacking: objects in public named like what the functions
-- call (an operator, built-in functions) are never used by them.
GRANT CREATE ON SCHEMA public TO regress_alice;
SET ROLE regress_alice;
CREATE FUNCTION public.hijacked(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hijacked operator called'; END $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.hijacked);
CREATE FUNCTION public.jsonb_build_object(text, text, text, text) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hijacked function called'; END $$;
CREATE FUNCTION public.clock_timestamp() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hijacked function called'; END $$;
SET search_path = public, orch;
SELECT id FROM orch.create_process('hijack', 'echo', '{"msg": "safe"}');
SELECT orch.start('hijack') IS NOT NULL AS started;
SELECT orch.wait('hijack', '30 seconds');
SELECT orch.share_process('hijack', 'regress_viewer');
RESET search_path;
DROP OPERATOR public.= (text, text);
DROP FUNCTION public.hijacked(text, text), public.jsonb_build_object(text, text, text, text), public.clock_timestamp();
RESET ROLE;
REVOKE CREATE ON SCHEMA public FROM regress_alice;

-- The audit trail: who did what, visible under the same rules.
SET ROLE regress_alice;
SELECT actor, kind, detail ->> 'task' AS task FROM orch.events WHERE process_id = 'a1' ORDER BY id;
RESET ROLE;

SELECT orch.delete_process(id) FROM orch.processes ORDER BY id;
SELECT orch.drop_process_type(name) FROM orch.process_types ORDER BY name;

-- DROP EXTENSION leaves nothing that grants anything: the roles remain, but
-- no object in the database refers to them any more.
DROP EXTENSION pg_orch;
SELECT count(*) AS orch_schemas FROM pg_namespace WHERE nspname = 'orch';
SELECT count(*) AS objects_granting_to_orch_roles FROM pg_shdepend d JOIN pg_roles r ON r.oid = d.refobjid
WHERE d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND r.rolname IN ('orch_admin', 'orch_user', 'orch_viewer');
CREATE EXTENSION pg_orch;

DROP ROLE regress_alice, regress_bob, regress_viewer, regress_authenticated, regress_authenticator;
