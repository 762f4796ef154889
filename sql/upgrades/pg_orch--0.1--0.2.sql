-- pg_orch 0.1 -> 0.2. Brings a 0.1 catalog to exactly what a fresh 0.2
-- install makes (test/sql/upgrade.sql compares the two), keeping the data.
-- Each part says which file of sql/ it follows.
\echo Use "ALTER EXTENSION pg_orch UPDATE" to load this file. \quit

-- 10_tables.sql: orch.events becomes partitioned by month. The 0.1 table
-- steps aside, its rows move into the new one (into events_default; the
-- scheduler moves the current month's into their partition), and it goes.
ALTER TABLE orch.events RENAME TO events_0_1;
ALTER SEQUENCE orch.events_id_seq RENAME TO events_0_1_id_seq;
ALTER INDEX orch.events_pkey RENAME TO events_0_1_pkey;
ALTER INDEX orch.events_process_id_id_idx RENAME TO events_0_1_process_id_id_idx;
-- Append-only record of what happened to processes and runs, partitioned
-- by month (UTC) so that orch.events_retention drops a month at a time
-- (75_history.sql adds the partitions events_YYYY_MM as months come).
CREATE TABLE orch.events (
  id         bigint GENERATED ALWAYS AS IDENTITY,
  at         timestamptz NOT NULL DEFAULT clock_timestamp(),
  actor      text NOT NULL DEFAULT orch.current_owner(),  -- who did it
  owner      text,  -- whose process it concerns
  process_id text,  -- no foreign keys: events outlive what they describe
  run_id     bigint,
  kind       orch.event_kind NOT NULL,
  detail     jsonb,
  PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
-- Whatever no month's partition takes (before the scheduler first adds them).
CREATE TABLE orch.events_default PARTITION OF orch.events DEFAULT;
CREATE INDEX ON orch.events (process_id, id);

INSERT INTO orch.events OVERRIDING SYSTEM VALUE SELECT * FROM orch.events_0_1;
SELECT pg_catalog.setval('orch.events_id_seq', coalesce((SELECT max(id) FROM orch.events_0_1), 0) + 1, false);
DROP TABLE orch.events_0_1;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON orch.events
  FOR EACH ROW EXECUTE FUNCTION orch._refuse_event_change();

-- 10_tables.sql:
-- Pruning takes the oldest finished runs first (75_history.sql).
CREATE INDEX runs_completed_at_idx ON orch.runs (completed_at) WHERE completed_at IS NOT NULL;

-- 10_tables.sql: http tasks, and each attempt's execution_name.
ALTER DOMAIN orch.task_kind DROP CONSTRAINT task_kind_check;
ALTER DOMAIN orch.task_kind ADD CONSTRAINT task_kind_check CHECK (VALUE IN ('command', 'shell', 'sql', 'http'));
ALTER TABLE orch.process_type_tasks DROP CONSTRAINT process_type_tasks_kind_check,
  ADD CONSTRAINT process_type_tasks_kind_check CHECK (kind IN ('command', 'shell', 'sql', 'http'));
ALTER TABLE orch.process_type_tasks ADD COLUMN slurm jsonb;
ALTER TABLE orch.tasks ADD COLUMN execution_name text, ADD COLUMN slurm jsonb;

-- 10_tables.sql: room for a second version of every process row (HOT
-- updates through a burst of starts).
ALTER TABLE orch.processes SET (fillfactor = 40);

-- 10_tables.sql: a process carries its type version's task count and
-- fan-out flag, so that a start reads no row but the process's.
ALTER TABLE orch.processes ADD COLUMN task_count integer, ADD COLUMN has_fan_out boolean;
UPDATE orch.processes p SET task_count = v.task_count, has_fan_out = v.has_fan_out
FROM orch.process_type_versions v WHERE v.type = p.type AND v.version = p.type_version;
ALTER TABLE orch.processes ALTER COLUMN task_count SET NOT NULL, ALTER COLUMN has_fan_out SET NOT NULL;

-- 20_c_functions.sql: substitution takes the task's kind (an http request
-- encodes what it substitutes); orch._http_host; orch._write_run.
DROP FUNCTION orch._substitute_placeholders(text[], jsonb, text, boolean);
DROP FUNCTION orch._substitute_item(text[], jsonb, integer, text);
DROP FUNCTION orch._substitute_outputs(text[], jsonb, text);
-- A command's arguments with {{key}} placeholders replaced by input values,
-- each inside its one argument; raises for a placeholder without a value.
-- For kind http, the values are encoded for where they go (percent-encoded
-- in the url, escaped in a JSON body: src/core/http_request.hpp); so too
-- with the two functions below.
CREATE FUNCTION orch._substitute_placeholders(command text[], input jsonb, task text, fan_out boolean DEFAULT false,
                                              kind text DEFAULT 'command')
RETURNS text[] LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'orch_substitute_placeholders';

-- The host an http task's request (its command array) calls, lower case.
CREATE FUNCTION orch._http_host(command text[]) RETURNS text
LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'orch_http_host';

CREATE FUNCTION orch._substitute_item(command text[], item jsonb, item_index integer, task text,
                                      kind text DEFAULT 'command') RETURNS text[]
LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'orch_substitute_item';

-- A command's arguments with {{tasks.NAME.output[.PATH]}} placeholders
-- replaced by its ancestors' outputs (outputs: {"NAME": output}), each inside
-- its one argument; raises for a PATH that is not there.
CREATE FUNCTION orch._substitute_outputs(command text[], outputs jsonb, task text, kind text DEFAULT 'command')
RETURNS text[]
LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'orch_substitute_outputs';

-- Writes a started run's row and its tasks (from its type version's tasks,
-- placeholders substituted from input) the way COPY writes rows, without
-- an executor; returns how many tasks it wrote (src/pg/run_rows.cpp). Only
-- orch._start_run calls it: it checks no permission and no policy.
CREATE FUNCTION orch._write_run(run_id bigint, process_id text, owner text, type text, type_version integer,
                                input jsonb, triggered_by text, catch_up boolean, total_tasks integer,
                                has_fan_out boolean, started_at timestamptz)
RETURNS integer LANGUAGE c AS 'MODULE_PATHNAME', 'orch_write_run';

-- 30_process_types.sql: http tasks to hosts outside orch.http_allowed_hosts
-- need the command privilege.
-- Defines a type, or a new version of one's own type. Processes keep the
-- version they run (see orch.upgrade_process).
CREATE OR REPLACE FUNCTION orch._api_define_process_type(name text, tasks jsonb, description text, max_concurrent integer)
RETURNS orch.process_types
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  owner text;
  normalized jsonb;
  os_commands boolean;
  outside_hosts text[];
  result orch.process_types;
BEGIN
  IF name IS NULL OR tasks IS NULL THEN
    RAISE EXCEPTION 'process type name and tasks must not be null' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF name !~ '^[A-Za-z0-9_.-]{1,63}$' THEN
    RAISE EXCEPTION 'invalid process type name "%"', name
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Use 1 to 63 letters, digits, "_", "." or "-".';
  END IF;
  IF max_concurrent < 1 THEN
    RAISE EXCEPTION 'max_concurrent must be at least 1, not %', max_concurrent
      USING ERRCODE = 'invalid_parameter_value', HINT = 'Leave it NULL for no limit.';
  END IF;
  owner := orch._writer('define process types');
  normalized := orch._parse_process_type(tasks);
  SELECT bool_or(t ->> 'kind' IN ('command', 'shell')) INTO os_commands
    FROM jsonb_array_elements(normalized) AS t;
  -- The hosts of its http tasks that orch.http_allowed_hosts does not list.
  SELECT array_agg(DISTINCT h.host ORDER BY h.host) INTO outside_hosts
  FROM jsonb_array_elements(normalized) AS t
  CROSS JOIN LATERAL (SELECT orch._http_host(ARRAY(SELECT jsonb_array_elements_text(t -> 'command')))) AS h(host)
  WHERE t ->> 'kind' = 'http'
    AND h.host NOT IN (SELECT lower(btrim(a)) FROM unnest(string_to_array(current_setting('orch.http_allowed_hosts'), ',')) AS a);
  -- Running OS commands is as powerful as COPY ... TO PROGRAM; so is calling
  -- any host the server can reach.
  IF (os_commands OR outside_hosts IS NOT NULL)
     AND NOT (orch._is_admin() OR pg_catalog.pg_has_role(orch._caller(), 'pg_execute_server_program', 'MEMBER')) THEN
    RAISE EXCEPTION 'permission denied to define process type "%"', name
      USING ERRCODE = 'insufficient_privilege',
            DETAIL = CASE WHEN os_commands THEN 'Its tasks run operating system commands.'
                          ELSE format('Its http tasks call %s, not in orch.http_allowed_hosts.',
                                      array_to_string(outside_hosts, ', ')) END,
            HINT = 'Only superusers, members of pg_execute_server_program and orch_admin may define command or shell '
                   'tasks, or http tasks to hosts outside orch.http_allowed_hosts.';
  END IF;
  -- A name belongs to its first definer: no one else, admins included, may
  -- make a version of it that its users would then run. Checked by the
  -- upsert itself, which waits for a concurrent first definition to commit
  -- and then finds it someone else's.
  INSERT INTO orch.process_types AS pt (name, owner, version, description, tasks, runs_os_commands, max_concurrent)
  VALUES (_api_define_process_type.name, owner, 1, description, tasks, os_commands, max_concurrent)
  ON CONFLICT ON CONSTRAINT process_types_pkey DO UPDATE
    SET version = pt.version + 1, description = EXCLUDED.description, tasks = EXCLUDED.tasks,
        runs_os_commands = EXCLUDED.runs_os_commands, max_concurrent = EXCLUDED.max_concurrent, updated_at = now()
    WHERE pt.owner = EXCLUDED.owner
  RETURNING * INTO result;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'permission denied for process type "%"', name USING ERRCODE = 'insufficient_privilege',
      DETAIL = 'The name belongs to the owner who first defined it.',
      HINT = 'Choose another name; orch_admin may drop the type once no process uses it.';
  END IF;
  INSERT INTO orch.process_type_versions (type, version, owner, description, tasks, runs_os_commands,
                                          max_concurrent, task_count, has_fan_out)
  VALUES (result.name, result.version, result.owner, result.description, result.tasks, result.runs_os_commands,
          result.max_concurrent, jsonb_array_length(normalized),
          EXISTS (SELECT 1 FROM jsonb_array_elements(normalized) AS t WHERE t -> 'fan_out' <> 'null'));
  INSERT INTO orch.process_type_tasks (type, version, owner, task_index, name, kind, command, has_placeholders,
                                       uses_outputs, fan_out, max_parallel, shell, sql, working_directory, env,
                                       timeout, max_retries, retry_delay, retry_backoff, depends_on, slurm)
  SELECT result.name, result.version, result.owner, t.task_index, t.name, t.kind, t.command,
         coalesce(EXISTS (SELECT 1 FROM unnest(t.command) AS a WHERE strpos(a, '{{') > 0), false), t.uses_outputs,
         t.fan_out, t.max_parallel,
         t.shell, t.sql, t.working_directory, coalesce(t.env, '{}'), t.timeout_ms * interval '1 millisecond',
         t.max_retries, t.retry_delay_ms * interval '1 millisecond', t.retry_backoff, t.depends_on, t.slurm
  FROM jsonb_to_recordset(normalized) AS t(task_index int, name text, kind text, command text[], shell text,
                                           sql text, working_directory text, env jsonb, timeout_ms bigint,
                                           max_retries int, retry_delay_ms bigint, retry_backoff float8,
                                           depends_on int[], uses_outputs boolean, fan_out jsonb, max_parallel int,
                                           slurm jsonb);
  PERFORM orch._log('type_defined', result.owner, NULL, NULL,
                    jsonb_build_object('type', name, 'version', result.version, 'runs_os_commands', os_commands));
  RETURN result;
END
$$;

-- 15_access.sql:
-- The one error for a process type the caller may not use
-- (orch._may_use_type). Like orch._refuse_process, it does not say whether
-- the type exists; only admins are told that it does not.
CREATE FUNCTION orch._refuse_type_use(type text, found boolean) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT found AND orch._is_admin() THEN
    RAISE EXCEPTION 'process type "%" does not exist', type USING ERRCODE = 'undefined_object';
  END IF;
  RAISE EXCEPTION 'permission denied for process type "%"', type
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'Process types are usable by their owner, by roles and owners they are granted to '
                 '(orch.grant_process_type), and by orch_admin.';
END
$$;

-- 40_processes.sql: substitution by kind; execution_name; the task count
-- and fan-out flag kept with the process; the type refusal above.
CREATE OR REPLACE FUNCTION orch._api_create_process(id text, type text, input_data jsonb, schedule text, timezone text,
                                         overlap text, misfire text)
RETURNS orch.processes
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  owner text := orch._writer('create processes');
  claims jsonb := orch._jwt_claims();
  result orch.processes;
  zone text;
  process_type orch.process_types;
  version_row orch.process_type_versions;
BEGIN
  IF id IS NULL OR type IS NULL THEN
    RAISE EXCEPTION 'process id and type must not be null' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF length(id) NOT BETWEEN 1 AND 255 THEN
    RAISE EXCEPTION 'process id must be 1 to 255 characters long' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF input_data IS NULL THEN
    input_data := '{}';
  ELSIF jsonb_typeof(input_data) <> 'object' THEN
    RAISE EXCEPTION 'input data must be a JSON object, not %', jsonb_typeof(input_data)
      USING ERRCODE = 'invalid_parameter_value';
  ELSIF octet_length(input_data::text) > pg_size_bytes(current_setting('orch.max_input_size')) THEN
    RAISE EXCEPTION 'input data is % bytes, more than orch.max_input_size (%)', octet_length(input_data::text),
      current_setting('orch.max_input_size') USING ERRCODE = 'program_limit_exceeded';
  END IF;
  zone := orch._check_schedule(schedule, timezone, overlap, misfire);
  SELECT * INTO process_type FROM orch.process_types pt WHERE pt.name = _api_create_process.type;
  IF FOUND AND orch._may_use_type(process_type) THEN  -- checked before the row is locked
    SELECT * INTO process_type FROM orch.process_types pt WHERE pt.name = _api_create_process.type FOR KEY SHARE;
  END IF;
  IF NOT FOUND OR NOT orch._may_use_type(process_type) THEN
    PERFORM orch._refuse_type_use(type, FOUND);
  END IF;
  -- The input is fixed for the process's life: checked once that commands can
  -- get it as ORCH_INPUT_* variables.
  IF process_type.runs_os_commands THEN
    PERFORM orch._check_input_environment(_api_create_process.input_data);
  END IF;
  SELECT * INTO version_row FROM orch.process_type_versions v
  WHERE v.type = process_type.name AND v.version = process_type.version;
  BEGIN
    INSERT INTO orch.processes (id, type, type_version, input_data, owner, created_by_role, schedule, timezone,
                                overlap_policy, misfire_policy, next_run_at, task_count, has_fan_out)
    VALUES (_api_create_process.id, process_type.name, process_type.version, _api_create_process.input_data, owner,
            orch._caller(), schedule, zone, overlap, misfire, orch._next_run_at(schedule, zone, clock_timestamp()),
            version_row.task_count, version_row.has_fan_out)
    RETURNING * INTO result;
  EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'process "%" already exists', id USING ERRCODE = 'duplicate_object';
  END;
  IF claims IS NOT NULL THEN
    INSERT INTO orch.process_claims (process_id, owner, claims) VALUES (result.id, result.owner, claims);
  END IF;
  IF schedule IS NOT NULL THEN
    PERFORM orch._wake_scheduler_at_commit(false);
  END IF;
  PERFORM orch._log('created', result.owner, result.id, NULL, jsonb_build_object('type', type, 'version', result.type_version,
                                                                      'schedule', schedule));
  RETURN result;
END
$$;

-- Starts a run of process `id` if it belongs to `owner` (and, with
-- only_if_idle, is not in progress): makes the run from the version of its
-- type that it runs, with `input` (NULL: the process's), makes it the
-- process's current run and logs `event`.
-- Returns the run's id, or NULL when the process did not qualify (the
-- caller then says why). The least a start must do: the UPDATE locks the
-- row, and only if it qualifies, so a caller who may not start the process
-- never holds it up; orch._write_run writes the run and its tasks from the
-- UPDATE's values (through INSERT, the executor's set-up for a task's 37
-- columns was a third of a start: bench/README.md); the event is logged.
-- Callers check that the caller may.
-- No SET clause (a sixth of a start): only orch._api_start and
-- orch._start_scheduled_run call it, and both pin search_path.
CREATE OR REPLACE FUNCTION orch._start_run(id text, owner text, only_if_idle boolean, triggered_by text, catch_up boolean,
                                event orch.event_kind, event_detail jsonb, input jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
  new_run_id bigint;
  run_type text;
  run_version integer;
  run_input jsonb;
  run_tasks integer;
  fans_out boolean;
  -- One instant: the process's last run, the run's start, its tasks' ready_at.
  start_time timestamptz := clock_timestamp();
BEGIN
  UPDATE orch.processes p
  SET status = 'IN_PROGRESS', current_run_id = nextval('orch.runs_id_seq'::regclass),
      last_run_at = start_time, updated_at = start_time
  WHERE p.id = _start_run.id AND p.owner = _start_run.owner AND NOT (only_if_idle AND p.status = 'IN_PROGRESS')
  RETURNING p.current_run_id, p.type, p.type_version, coalesce(_start_run.input, p.input_data), p.task_count,
            p.has_fan_out
  INTO new_run_id, run_type, run_version, run_input, run_tasks, fans_out;
  IF new_run_id IS NULL THEN
    RETURN NULL;
  END IF;
  -- What runs is fixed here: placeholders substituted from the input, so a
  -- run never changes, whatever happens to its type.
  IF orch._write_run(new_run_id, _start_run.id, _start_run.owner, run_type, run_version, run_input, triggered_by,
                     catch_up, run_tasks, fans_out, start_time) <> run_tasks THEN
    RAISE EXCEPTION 'pg_orch: process "%" has % tasks, but version % of type "%" has another number',
      _start_run.id, run_tasks, run_version, run_type;
  END IF;
  INSERT INTO orch.events (owner, process_id, run_id, kind, detail)
  VALUES (_start_run.owner, _start_run.id, new_run_id, event, event_detail);
  -- A fan-out with nothing to wait for makes its instances now. (fans_out
  -- is read with the process: a query of orch.runs here, planned in a
  -- session's first start while the table was empty, scanned it at every
  -- start.)
  IF fans_out THEN
    PERFORM orch._advance_runs(ARRAY[new_run_id], false, wait => true);
  END IF;
  PERFORM orch._wake_scheduler_at_commit(false);
  RETURN new_run_id;
END
$$;

-- Resumes a FAILED or STOPPED run where it stopped: its completed tasks are
-- kept, the others run again with their retries renewed.
CREATE OR REPLACE FUNCTION orch._api_retry(run_id bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  run orch.runs;
  proc orch.processes;
BEGIN
  IF run_id IS NULL THEN
    RAISE EXCEPTION 'run id must not be null' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  SELECT * INTO run FROM orch.runs r WHERE r.id = _api_retry.run_id;
  IF NOT FOUND OR NOT orch._may('edit', run.process_id, run.owner) THEN
    IF NOT FOUND AND orch._is_admin() THEN
      RAISE EXCEPTION 'run % does not exist', run_id USING ERRCODE = 'undefined_object';
    END IF;
    RAISE EXCEPTION 'permission denied for run %', run_id USING ERRCODE = 'insufficient_privilege';
  END IF;
  proc := orch._lock_process(run.process_id);
  IF run.status NOT IN ('FAILED', 'STOPPED') THEN
    RAISE EXCEPTION 'run % is %; only a FAILED or STOPPED run can be retried', run_id, run.status
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  IF proc.current_run_id <> run.id OR proc.status = 'IN_PROGRESS' THEN
    RAISE EXCEPTION 'run % is not the latest run of process "%"', run_id, proc.id
      USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Only the latest run can be retried.';
  END IF;
  IF run.total_tasks = 0 THEN
    RAISE EXCEPTION 'run % never started any task', run_id USING ERRCODE = 'object_not_in_prerequisite_state',
      DETAIL = run.error_message, HINT = 'Start the process again with orch.start().';
  END IF;
  IF EXISTS (SELECT 1 FROM orch.tasks t WHERE t.run_id = run.id AND t.status IN ('DISPATCHED', 'RUNNING')
               AND t.fan_out IS NULL) THEN
    RAISE EXCEPTION 'run % still has a command being stopped', run_id USING ERRCODE = 'object_in_use',
      HINT = 'Wait for it with orch.wait().';
  END IF;
  -- The task of a one-task run is ready now; _advance_runs makes the
  -- others ready as their dependencies allow.
  UPDATE orch.tasks t SET status = 'PENDING', attempt = 0, pid = NULL, execution_name = NULL, started_at = NULL,
         ready_at = CASE WHEN run.total_tasks = 1 AND NOT run.has_fan_out THEN clock_timestamp() END,
         completed_at = NULL, exit_code = NULL, output = NULL, output_truncated = false, output_data = NULL,
         error_message = NULL
  WHERE t.run_id = run.id AND t.status IN ('FAILED', 'STOPPED', 'SKIPPED');
  UPDATE orch.runs r SET status = 'IN_PROGRESS', completed_at = NULL, error_message = NULL, output_data = NULL
  WHERE r.id = run.id;
  UPDATE orch.processes p SET status = 'IN_PROGRESS', last_run_at = clock_timestamp(), updated_at = clock_timestamp()
  WHERE p.id = proc.id;
  PERFORM orch._advance_runs(ARRAY[run.id], false, wait => true);
  PERFORM orch._wake_scheduler_at_commit(false);
  PERFORM orch._log('retried', proc.owner, proc.id, run.id, NULL);
  RETURN run.id;
END
$$;

-- Moves a process to its type's newest version: from its next run on, it
-- runs what the type's owner defined last. Redefining a type never does this
-- by itself, so that no one's processes change under them; and only the
-- process's owner (or an admin) may do it, because its sql tasks run as its
-- creator: an editor who owns the type could otherwise run new code as them.
CREATE OR REPLACE FUNCTION orch._api_upgrade_process(id text) RETURNS orch.processes
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes := orch._lock_process(id, 'own');
  process_type orch.process_types;
  result orch.processes;
BEGIN
  SELECT * INTO process_type FROM orch.process_types pt WHERE pt.name = proc.type FOR KEY SHARE;
  IF NOT FOUND OR NOT orch._may_use_type(process_type) THEN
    PERFORM orch._refuse_type_use(proc.type, FOUND);
  END IF;
  IF process_type.runs_os_commands THEN
    PERFORM orch._check_input_environment(proc.input_data);
  END IF;
  UPDATE orch.processes p SET type_version = v.version, task_count = v.task_count, has_fan_out = v.has_fan_out,
                              updated_at = clock_timestamp()
  FROM orch.process_type_versions v
  WHERE p.id = proc.id AND v.type = process_type.name AND v.version = process_type.version RETURNING p.* INTO result;
  PERFORM orch._log('upgraded', result.owner, result.id, NULL,
                          jsonb_build_object('from_version', proc.type_version, 'to_version', result.type_version));
  RETURN result;
END
$$;

-- 70_scheduler.sql: http and Slurm tasks are claimed, started and finished;
-- running Slurm jobs are adopted after a restart.
DROP FUNCTION orch._claim_tasks(integer, integer);
DROP FUNCTION orch._orphaned_tasks();
-- Marks up to max_count ready tasks DISPATCHED and returns what to launch.
-- Fair share: owners take turns (every owner's k-th running task comes
-- before anyone's k+1-th, then in the order they became ready), no owner
-- has more than per_owner running at once, and no type version more than
-- its max_concurrent. One index probe per owner with ready tasks, not a
-- scan of them.
CREATE FUNCTION orch._claim_tasks(max_count integer, per_owner integer)
RETURNS TABLE (id bigint, run_id bigint, process_id text, name text, kind text, command text[],
               shell text, working_directory text, env jsonb, input_data jsonb, timeout_ms bigint, attempt integer,
               outputs jsonb, item jsonb, item_index integer, slurm jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  -- PL/pgSQL keeps the statement's plan across calls (an SQL function would
  -- plan it every time).
  RETURN QUERY WITH RECURSIVE owners AS (
    (SELECT t.owner FROM orch.tasks t WHERE t.status = 'PENDING' AND t.ready_at IS NOT NULL
     ORDER BY t.owner LIMIT 1)
    UNION ALL
    SELECT (SELECT t.owner FROM orch.tasks t WHERE t.status = 'PENDING' AND t.ready_at IS NOT NULL AND t.owner > o.owner
            ORDER BY t.owner LIMIT 1)
    FROM owners o WHERE o.owner IS NOT NULL),
  running AS (  -- the tasks running now: at most the slots
    SELECT t.owner, t.type, t.type_version, t.run_id, t.task_index, t.max_parallel
    FROM orch.tasks t WHERE t.status IN ('DISPATCHED', 'RUNNING') AND t.fan_out IS NULL),
  busy AS (
    SELECT o.owner, (SELECT count(*) FROM running r WHERE r.owner = o.owner) AS running
    FROM owners o WHERE o.owner IS NOT NULL),
  full_versions AS (  -- type versions at their max_concurrent
    SELECT r.type, r.type_version
    FROM running r JOIN orch.process_type_versions v ON v.type = r.type AND v.version = r.type_version
    WHERE v.max_concurrent IS NOT NULL
    GROUP BY r.type, r.type_version, v.max_concurrent HAVING count(*) >= v.max_concurrent),
  full_fan_outs AS (  -- fan-outs with max_parallel instances running
    SELECT r.run_id, r.task_index FROM running r WHERE r.max_parallel IS NOT NULL
    GROUP BY r.run_id, r.task_index, r.max_parallel HAVING count(*) >= r.max_parallel),
  turns AS (
    SELECT c.id, c.type, c.type_version, c.run_id, c.task_index, c.max_parallel, b.running + c.rank AS turn,
           c.ready_at
    FROM busy b CROSS JOIN LATERAL (
      SELECT t.id, t.type, t.type_version, t.run_id, t.task_index, t.max_parallel, t.ready_at,
             row_number() OVER (ORDER BY t.ready_at, t.id) AS rank
      FROM (SELECT t.id, t.type, t.type_version, t.run_id, t.task_index, t.max_parallel, t.ready_at
            FROM orch.tasks t
            WHERE t.owner = b.owner AND t.status = 'PENDING' AND t.ready_at IS NOT NULL
              AND t.ready_at <= clock_timestamp()
            ORDER BY t.ready_at, t.id
            -- An owner's tasks waiting behind more than this many of a full
            -- type version of theirs wait a turn longer; nobody else does.
            LIMIT 1000) t
      WHERE NOT EXISTS (SELECT 1 FROM full_versions f WHERE f.type = t.type AND f.type_version = t.type_version)
        AND NOT EXISTS (SELECT 1 FROM full_fan_outs f WHERE f.run_id = t.run_id AND f.task_index = t.task_index)
      ORDER BY t.ready_at, t.id
      LIMIT least(greatest(per_owner - b.running, 0), max_count)) c),
  room AS (  -- room left under the max_concurrent of the candidates' type versions
    SELECT v.type, v.version,
           v.max_concurrent - (SELECT count(*) FROM running r WHERE r.type = v.type AND r.type_version = v.version)
             AS room
    FROM orch.process_type_versions v
    WHERE v.max_concurrent IS NOT NULL AND (v.type, v.version) IN (SELECT u.type, u.type_version FROM turns u)),
  fitting AS (  -- of a limited type version or fan-out, no more than its room, in turn order
    SELECT u.id, u.turn, u.ready_at
    FROM (SELECT u.*, row_number() OVER (PARTITION BY u.type, u.type_version ORDER BY u.turn, u.ready_at, u.id) AS nth,
                 row_number() OVER (PARTITION BY u.run_id, u.task_index ORDER BY u.turn, u.ready_at, u.id) AS nth_instance
          FROM turns u) u
    LEFT JOIN room l ON l.type = u.type AND l.version = u.type_version
    WHERE (l.type IS NULL OR u.nth <= l.room)
      AND (u.max_parallel IS NULL
           OR u.nth_instance <= u.max_parallel - (SELECT count(*) FROM running r
                                                  WHERE r.run_id = u.run_id AND r.task_index = u.task_index))),
  ready AS (
    SELECT t.id FROM (SELECT u.id FROM fitting u ORDER BY u.turn, u.ready_at, u.id LIMIT max_count) u
    JOIN orch.tasks t ON t.id = u.id
    WHERE t.status = 'PENDING'
    FOR UPDATE OF t SKIP LOCKED)
  UPDATE orch.tasks t SET status = 'DISPATCHED', attempt = t.attempt + 1, pid = NULL, execution_name = NULL,
                          exit_code = NULL, error_message = NULL
  FROM ready WHERE t.id = ready.id
  RETURNING t.id, t.run_id, t.process_id, t.name, t.kind::text, t.command, t.shell, t.working_directory,
            t.env, CASE WHEN t.kind IN ('command', 'shell')
                        THEN (SELECT r.input_data FROM orch.runs r WHERE r.id = t.run_id) END,
            (extract(epoch FROM t.timeout) * 1000)::bigint, t.attempt,
            CASE WHEN t.kind = 'shell' AND cardinality(t.depends_on) > 0 THEN orch._ancestor_outputs(t.id) END,
            t.item, t.item_index, t.slurm;
END
$$;

-- Tasks a previous scheduler left DISPATCHED or RUNNING (it crashed or the
-- server stopped): the caller kills their process groups and finishes them,
-- or watches again the Slurm jobs that were running (slurm_job: the job id;
-- timeout_left_ms: what is left of its timeout, NULL for none).
CREATE FUNCTION orch._orphaned_tasks()
RETURNS TABLE (id bigint, pid integer, slurm_job text, attempt integer, timeout_left_ms bigint)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
  SELECT t.id, t.pid, CASE WHEN t.slurm IS NOT NULL AND t.status = 'RUNNING' THEN t.execution_name END, t.attempt,
         (extract(epoch FROM t.timeout - (clock_timestamp() - t.started_at)) * 1000)::bigint
  FROM orch.tasks t WHERE t.status IN ('DISPATCHED', 'RUNNING') AND t.fan_out IS NULL ORDER BY t.id
$$;

-- The ids of the scheduler's records ([{"id", ...}, ...]). An update
-- given "t.id = ANY (ids)" besides its join finds each row by key: joined
-- to jsonb_to_recordset alone (guessed at 100 rows), it read the whole
-- primary key of a small orch.tasks.
CREATE FUNCTION orch._record_ids(records jsonb) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN ARRAY(SELECT (r ->> 'id')::bigint FROM jsonb_array_elements(records) AS r);
END
$$;

-- started: [{"id": task id, "pid": pid or null, "execution_name", "started_at": Unix time of the launch}, ...]
CREATE OR REPLACE FUNCTION orch._tasks_started(started jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  ids bigint[] := orch._record_ids(started);
BEGIN
  WITH s AS (
    UPDATE orch.tasks t SET status = 'RUNNING', pid = s.pid, execution_name = s.execution_name,
                            started_at = to_timestamp(s.started_at)
    FROM jsonb_to_recordset(started) AS s(id bigint, pid integer, execution_name text, started_at float8)
    WHERE t.id = ANY (ids) AND t.id = s.id AND t.status = 'DISPATCHED'
    RETURNING t.*)
  INSERT INTO orch.events (actor, owner, process_id, run_id, kind, detail)
  SELECT 'pg_orch scheduler', s.owner, s.process_id, s.run_id, 'task_started',
         jsonb_build_object('task', s.name, 'attempt', s.attempt, 'pid', s.pid, 'execution_name', s.execution_name)
  FROM s;
END
$$;

-- The steps between "its dependencies completed" and "ready to claim" that
-- can fail a task, for runs of more than one task or with a fan-out, until
-- nothing more changes (an empty fan-out completes at once and may make the
-- next ready):
--   * a fan-out whose instances all ended completes, with their outputs in
--     item order, or fails (or stops) with the first that did not complete;
--   * a command using other tasks' outputs gets them
--     ({{tasks.NAME.output.PATH}});
--   * a fan-out makes one instance per item (at most orch.max_fan_out),
--     each with its item in its command; after orch.retry, the instances it
--     has already are run again instead.
-- A task that cannot be made ready FAILs saying why. Returns whether one did.
CREATE OR REPLACE FUNCTION orch._prepare_ready_tasks(run_ids bigint[]) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  task record;
  message text;
  items jsonb;
  new_command text[];
  changed boolean := true;
  any_failed boolean := false;
  completed boolean;
  stopped boolean;
  outputs jsonb;
  max_items integer := current_setting('orch.max_fan_out')::integer;
BEGIN
  WHILE changed LOOP
    changed := false;

    -- Fan-outs whose instances have all ended (an index probe each while
    -- they have not: a fan-out may have thousands).
    FOR task IN
      SELECT t.id, t.name, t.owner, t.process_id, t.run_id, t.attempt, t.task_index
      FROM unnest(run_ids) AS r(id) JOIN orch.tasks t ON t.run_id = r.id
      WHERE t.fan_out IS NOT NULL AND t.status = 'RUNNING'
        AND NOT EXISTS (SELECT 1 FROM orch.tasks i
                        WHERE i.run_id = t.run_id AND i.task_index = t.task_index AND i.item_index IS NOT NULL
                          AND i.status IN ('PENDING', 'DISPATCHED', 'RUNNING'))
    LOOP
      SELECT bool_and(i.status = 'COMPLETED'), bool_or(i.status = 'STOPPED'),
             jsonb_agg(i.output_data ORDER BY i.item_index),
             (array_agg(format('instance %s (item %s): %s', i.item_index, i.item, i.error_message)
                        ORDER BY i.completed_at, i.item_index) FILTER (WHERE i.status <> 'COMPLETED'))[1]
        INTO completed, stopped, outputs, message
      FROM orch.tasks i
      WHERE i.run_id = task.run_id AND i.task_index = task.task_index AND i.item_index IS NOT NULL;
      UPDATE orch.tasks t
      SET status = CASE WHEN completed THEN 'COMPLETED' WHEN stopped THEN 'STOPPED' ELSE 'FAILED' END::orch.task_status,
          completed_at = clock_timestamp(), output_data = CASE WHEN completed THEN outputs END,
          error_message = message
      WHERE t.id = task.id;
      PERFORM orch._log(CASE WHEN completed THEN 'task_completed' WHEN stopped THEN 'task_stopped'
                             ELSE 'task_failed' END,
                        task.owner, task.process_id, task.run_id,
                        jsonb_build_object('task', task.name, 'attempt', task.attempt, 'error', message));
      any_failed := any_failed OR NOT completed;
      changed := true;
    END LOOP;

    -- Tasks whose dependencies completed and that need them: commands using
    -- outputs, and fan-outs.
    FOR task IN
      SELECT t.id, t.name, t.kind, t.command, t.owner, t.process_id, t.run_id, t.attempt, t.task_index, t.fan_out,
             t.uses_outputs, r.input_data
      FROM unnest(run_ids) AS i(id) JOIN orch.runs r ON r.id = i.id JOIN orch.tasks t ON t.run_id = r.id
      WHERE r.status = 'IN_PROGRESS' AND (t.uses_outputs OR t.fan_out IS NOT NULL) AND t.status = 'PENDING'
        AND t.ready_at IS NULL AND t.item_index IS NULL
        AND NOT EXISTS (SELECT 1 FROM orch.tasks d WHERE d.run_id = t.run_id AND d.task_index = ANY (t.depends_on)
                          AND d.status <> 'COMPLETED')
      ORDER BY t.task_index
    LOOP
      BEGIN
        new_command := task.command;
        items := NULL;
        IF task.uses_outputs THEN
          new_command := orch._substitute_outputs(new_command, orch._ancestor_outputs(task.id), task.name, task.kind);
        END IF;
        IF task.fan_out IS NULL THEN
          UPDATE orch.tasks t SET command = new_command, uses_outputs = false,
                                  ready_at = clock_timestamp()
          WHERE t.id = task.id;
        ELSE
          IF NOT EXISTS (SELECT 1 FROM orch.tasks i WHERE i.run_id = task.run_id AND i.task_index = task.task_index
                           AND i.item_index IS NOT NULL) THEN
            items := orch._fan_out_items(task.fan_out, task.input_data, orch._ancestor_outputs(task.id), task.name);
            IF jsonb_array_length(items) > max_items THEN
              RAISE EXCEPTION 'task "%": "for_each" has % items, more than orch.max_fan_out (%)', task.name,
                jsonb_array_length(items), max_items USING ERRCODE = 'program_limit_exceeded';
            END IF;
            -- Each instance holds its own command: bounded, so that a large
            -- input value in a command cannot be copied thousands of times.
            IF octet_length(new_command::text)::bigint * jsonb_array_length(items) > 104857600 THEN
              RAISE EXCEPTION 'task "%": % instances of a % byte command are more than 100MB', task.name,
                jsonb_array_length(items), octet_length(new_command::text) USING ERRCODE = 'program_limit_exceeded';
            END IF;
            -- One set-based insert of every instance.
            INSERT INTO orch.tasks (run_id, process_id, owner, type, type_version, task_index, name, kind, command,
                                    shell, sql, working_directory, env, timeout, max_retries, retry_delay,
                                    retry_backoff, depends_on, max_parallel, slurm, item_index, item, ready_at)
            SELECT t.run_id, t.process_id, t.owner, t.type, t.type_version, t.task_index, t.name, t.kind,
                   CASE WHEN t.kind IN ('command', 'http')
                        THEN orch._substitute_item(new_command, e.item, (e.n - 1)::integer, t.name, t.kind)
                   END,
                   t.shell, t.sql, t.working_directory, t.env, t.timeout, t.max_retries, t.retry_delay,
                   t.retry_backoff, t.depends_on, t.max_parallel, t.slurm, (e.n - 1)::integer, e.item, clock_timestamp()
            FROM orch.tasks t CROSS JOIN jsonb_array_elements(items) WITH ORDINALITY AS e(item, n)
            WHERE t.id = task.id;
          END IF;
          UPDATE orch.tasks t SET command = new_command, uses_outputs = false,
                                  status = 'DISPATCHED', started_at = clock_timestamp()
          WHERE t.id = task.id;
          UPDATE orch.tasks t SET status = 'RUNNING' WHERE t.id = task.id;
          -- No items: done at once, with no outputs.
          IF items IS NOT NULL AND jsonb_array_length(items) = 0 THEN
            UPDATE orch.tasks t SET status = 'COMPLETED', completed_at = clock_timestamp(), output_data = '[]'
            WHERE t.id = task.id;
          END IF;
          PERFORM orch._log('task_started', task.owner, task.process_id, task.run_id,
                            jsonb_build_object('task', task.name, 'instances',
                                               (SELECT count(*) FROM orch.tasks i WHERE i.run_id = task.run_id
                                                  AND i.task_index = task.task_index AND i.item_index IS NOT NULL)));
        END IF;
        changed := true;
      EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS message = MESSAGE_TEXT;
        UPDATE orch.tasks t SET status = 'FAILED', completed_at = clock_timestamp(), error_message = message
        WHERE t.id = task.id;
        PERFORM orch._log('task_failed', task.owner, task.process_id, task.run_id,
                          jsonb_build_object('task', task.name, 'attempt', task.attempt, 'error', message));
        any_failed := true;
        changed := true;
      END;
    END LOOP;
  END LOOP;
  RETURN any_failed;
END
$$;

-- 65_task_stats.sql, whole.
-- pg_orch: task statistics that outlive history (seed 003's AggregateMetrics
-- and StepMetrics). orch._tasks_finished adds each attempt's end as it is
-- recorded; nothing here ever scans orch.tasks, and pruning history leaves
-- them whole. Durations are kept as a log-bucket histogram
-- (src/core/duration_histogram.hpp): percentiles within 5%.

CREATE FUNCTION orch._duration_histogram_add(histogram bigint[], ms float8) RETURNS bigint[]
LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'orch_duration_histogram_add';
CREATE FUNCTION orch._duration_histogram_merge(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'orch_duration_histogram_merge';
CREATE FUNCTION orch._duration_percentile(histogram bigint[], q float8) RETURNS float8
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'orch_duration_percentile';
-- The histogram of a set of durations (ms), and the sum of histograms.
CREATE AGGREGATE orch._duration_histogram(float8) (SFUNC = orch._duration_histogram_add, STYPE = bigint[]);
CREATE AGGREGATE orch._duration_histogram_sum(bigint[]) (SFUNC = orch._duration_histogram_merge, STYPE = bigint[]);

-- Per type, task and owner (row level security shows owners their own):
-- over all time, and per day (UTC). Only the scheduler writes them.
CREATE TABLE orch.task_totals (
  type        text NOT NULL,
  task        text NOT NULL,
  owner       text NOT NULL,
  runs        bigint NOT NULL,  -- attempts that ended: completed, failed, retried or stopped
  completed   bigint NOT NULL,
  failed      bigint NOT NULL,  -- attempts that failed, retried or not
  timed       bigint NOT NULL,  -- attempts with a start time (all but a few recovered after a crash)
  duration_sum_ms float8 NOT NULL,
  duration_max_ms float8,
  durations   bigint[],  -- histogram of the timed attempts' durations
  PRIMARY KEY (type, task, owner)
);
CREATE TABLE orch.task_days (
  day         date NOT NULL,
  type        text NOT NULL,
  task        text NOT NULL,
  owner       text NOT NULL,
  runs        bigint NOT NULL,
  completed   bigint NOT NULL,
  failed      bigint NOT NULL,
  timed       bigint NOT NULL,
  duration_sum_ms float8 NOT NULL,
  duration_max_ms float8,
  durations   bigint[],
  PRIMARY KEY (day, type, task, owner)
);

-- Adds attempts' ends (rows of (type, task, owner, status, started_at,
-- completed_at) as orch.tasks has them just after the end is recorded).
-- PL/pgSQL keeps the statement's plan; an SQL function with a SET clause
-- is parsed and planned at every call (0.45 ms of each scheduler turn).
CREATE FUNCTION orch._count_task_ends(ends jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  WITH e AS (
    SELECT e.type, e.task, e.owner, (e.completed_at AT TIME ZONE 'UTC')::date AS day,
           e.status = 'COMPLETED' AS completed, e.status IN ('FAILED', 'PENDING') AS failed,
           extract(epoch FROM e.completed_at - e.started_at)::float8 * 1000 AS ms
    FROM jsonb_to_recordset(ends) AS e(type text, task text, owner text, status text,
                                       started_at timestamptz, completed_at timestamptz)),
  days AS (
    INSERT INTO orch.task_days AS s
    SELECT day, type, task, owner, count(*), count(*) FILTER (WHERE completed), count(*) FILTER (WHERE failed),
           count(ms), coalesce(sum(ms), 0), max(ms), orch._duration_histogram(ms)
    FROM e GROUP BY day, type, task, owner
    ON CONFLICT (day, type, task, owner) DO UPDATE
    SET runs = s.runs + excluded.runs, completed = s.completed + excluded.completed,
        failed = s.failed + excluded.failed, timed = s.timed + excluded.timed,
        duration_sum_ms = s.duration_sum_ms + excluded.duration_sum_ms,
        duration_max_ms = greatest(s.duration_max_ms, excluded.duration_max_ms),
        durations = orch._duration_histogram_merge(s.durations, excluded.durations))
  INSERT INTO orch.task_totals AS s
  SELECT type, task, owner, count(*), count(*) FILTER (WHERE completed), count(*) FILTER (WHERE failed),
         count(ms), coalesce(sum(ms), 0), max(ms), orch._duration_histogram(ms)
  FROM e GROUP BY type, task, owner
  ON CONFLICT (type, task, owner) DO UPDATE
  SET runs = s.runs + excluded.runs, completed = s.completed + excluded.completed,
      failed = s.failed + excluded.failed, timed = s.timed + excluded.timed,
      duration_sum_ms = s.duration_sum_ms + excluded.duration_sum_ms,
      duration_max_ms = greatest(s.duration_max_ms, excluded.duration_max_ms),
      durations = orch._duration_histogram_merge(s.durations, excluded.durations);
END
$$;

-- What users read. A percentile is at most the longest duration seen.
CREATE VIEW orch.task_stats WITH (security_invoker = true) AS
SELECT type, task, sum(runs)::bigint AS runs, sum(completed)::bigint AS completed, sum(failed)::bigint AS failed,
       round(sum(completed) / nullif(sum(runs), 0), 4) AS success_rate,
       make_interval(secs => sum(duration_sum_ms) / nullif(sum(timed), 0) / 1000) AS avg_duration,
       make_interval(secs => least(orch._duration_percentile(orch._duration_histogram_sum(durations), 0.5),
                                   max(duration_max_ms)) / 1000) AS p50_duration,
       make_interval(secs => least(orch._duration_percentile(orch._duration_histogram_sum(durations), 0.95),
                                   max(duration_max_ms)) / 1000) AS p95_duration,
       make_interval(secs => max(duration_max_ms) / 1000) AS max_duration
FROM orch.task_totals
GROUP BY type, task;

CREATE VIEW orch.task_stats_daily WITH (security_invoker = true) AS
SELECT day, type, task, sum(runs)::bigint AS runs, sum(completed)::bigint AS completed, sum(failed)::bigint AS failed,
       round(sum(completed) / nullif(sum(runs), 0), 4) AS success_rate,
       make_interval(secs => sum(duration_sum_ms) / nullif(sum(timed), 0) / 1000) AS avg_duration,
       make_interval(secs => least(orch._duration_percentile(orch._duration_histogram_sum(durations), 0.5),
                                   max(duration_max_ms)) / 1000) AS p50_duration,
       make_interval(secs => least(orch._duration_percentile(orch._duration_histogram_sum(durations), 0.95),
                                   max(duration_max_ms)) / 1000) AS p95_duration,
       make_interval(secs => max(duration_max_ms) / 1000) AS max_duration
FROM orch.task_days
GROUP BY day, type, task;

-- 70_scheduler.sql: attempts' ends are counted in the statistics.
CREATE OR REPLACE FUNCTION orch._tasks_finished(finished jsonb, wait boolean DEFAULT false)
RETURNS bigint[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  ids bigint[] := orch._record_ids(finished);
  touched bigint[];
  any_failed boolean;
BEGIN
  -- What an attempt's ending means for its task, decided here alone: a
  -- stopped attempt is never retried, an exit with 0 (or an expected http
  -- status) completes it, a rejected request fails it, any other ending
  -- retries it while retries are left.
  -- An output that cannot be stored fails the attempt like a bad exit.
  WITH reported AS MATERIALIZED (  -- (else each reference parses the outputs again)
    SELECT f.*, orch._output_jsonb(f.output_data) AS output_value
    FROM jsonb_to_recordset(finished)
      AS f(id bigint, ending text, exit_code integer, output text, truncated boolean, error text,
           output_data text, output_error text, pid integer, execution_name text, started_at float8)),
  checked AS (
    SELECT r.*, coalesce(r.output_error, CASE WHEN r.output_data IS NOT NULL AND r.output_value IS NULL
                                              THEN 'the output is not valid JSON for jsonb' END) AS output_problem
    FROM reported r),
  f AS (
    SELECT f.*, CASE WHEN f.ending = 'stopped' THEN 'STOPPED'
                     WHEN (f.ending = 'exited' AND f.exit_code = 0 OR f.ending = 'succeeded')
                          AND f.output_problem IS NULL THEN 'COMPLETED'
                     WHEN f.ending = 'rejected' THEN 'FAILED'
                     WHEN t.attempt <= t.max_retries THEN 'RETRY'
                     ELSE 'FAILED' END AS outcome,
           orch._retry_delay_ms((extract(epoch FROM t.retry_delay) * 1000)::bigint, t.retry_backoff, t.attempt)
             AS retry_ms,
           f.started_at IS NOT NULL AND t.status = 'DISPATCHED' AS started_now
    FROM checked f JOIN orch.tasks t ON t.id = f.id),
  done AS (
    UPDATE orch.tasks t
    SET status = CASE WHEN f.outcome <> 'RETRY' THEN f.outcome
                      WHEN r.status = 'IN_PROGRESS' THEN 'PENDING'
                      ELSE 'STOPPED' END::orch.task_status,
        pid = CASE WHEN f.started_now THEN f.pid ELSE t.pid END,
        execution_name = CASE WHEN f.started_now THEN f.execution_name ELSE t.execution_name END,
        started_at = CASE WHEN f.started_now THEN to_timestamp(f.started_at) ELSE t.started_at END,
        ready_at = CASE WHEN f.outcome = 'RETRY' THEN clock_timestamp() + f.retry_ms * interval '1 millisecond' END,
        completed_at = clock_timestamp(),
        exit_code = f.exit_code, output = f.output, output_truncated = coalesce(f.truncated, false),
        output_data = CASE WHEN f.output_problem IS NULL THEN f.output_value END,
        error_message = coalesce(f.output_problem, f.error)
    FROM f, orch.runs r
    WHERE t.id = ANY (ids) AND t.id = f.id AND r.id = t.run_id AND t.status IN ('DISPATCHED', 'RUNNING')
    RETURNING t.*, f.started_now),
  logged AS (
    INSERT INTO orch.events (actor, owner, process_id, run_id, kind, detail)
    SELECT 'pg_orch scheduler', d.owner, d.process_id, d.run_id, e.kind, e.detail
    FROM done d CROSS JOIN LATERAL (VALUES
      (1, 'task_started',
       jsonb_build_object('task', d.name, 'attempt', d.attempt, 'pid', d.pid, 'execution_name', d.execution_name)),
      (2, CASE d.status WHEN 'PENDING' THEN 'task_retrying' WHEN 'COMPLETED' THEN 'task_completed'
                        WHEN 'FAILED' THEN 'task_failed' ELSE 'task_stopped' END,
       jsonb_build_object('task', d.name, 'attempt', d.attempt, 'exit_code', d.exit_code, 'error', d.error_message))
      ) AS e(step, kind, detail)
    WHERE e.step = 2 OR d.started_now
    ORDER BY d.id, e.step),
  counted AS (
    SELECT orch._count_task_ends(jsonb_agg(jsonb_build_object(
             'type', d.type, 'task', d.name, 'owner', d.owner, 'status', d.status,
             'started_at', d.started_at, 'completed_at', d.completed_at))) AS nothing
    FROM done d)
  SELECT array_agg(DISTINCT done.run_id), bool_or(done.status IN ('FAILED', 'STOPPED'))
    INTO touched, any_failed FROM done, counted;  -- (counted is joined so that it runs)

  IF touched IS NULL THEN
    RETURN '{}';
  END IF;
  RETURN orch._advance_runs(touched, any_failed, wait);
END
$$;

-- 75_history.sql, whole.
-- pg_orch: history that stays bounded (seed 003's retention and archive).
-- orch.history_retention prunes finished runs with their tasks, keeping
-- each process's latest run; orch.events_retention prunes events, whose
-- table is partitioned by month so that an expired month goes as a
-- partition. The pruner (src/pg/pruner.hpp), which an idle scheduler
-- starts, prunes batches of at most 1,000 rows, one transaction each;
-- orch.prune_history() prunes everything due now. With
-- orch.archive_directory set, rows are first written there (gzip-compressed
-- JSON lines, one file per batch and kind, or per month of events) and
-- listed in orch.archives; a write that fails keeps the rows (an expired
-- month's in its detached table until it succeeds).

CREATE TABLE orch.archives (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  file        text NOT NULL,  -- its name in orch.archive_directory
  kind        text NOT NULL CHECK (kind IN ('runs', 'tasks', 'events')),
  row_count   bigint NOT NULL,
  bytes       bigint NOT NULL,
  first_at    timestamptz,  -- earliest and latest time of its rows (a run's end, a task's end, an event's time)
  last_at     timestamptz,
  written_at  timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION orch._write_archive(name text, query text) RETURNS bigint
LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'orch_write_archive';
-- Removes NAME.partial files of this database's that a crash left.
CREATE FUNCTION orch._remove_partial_archives(prefix text) RETURNS integer
LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'orch_remove_partial_archives';

-- How this database's archive files begin: its name, safe characters only.
CREATE FUNCTION orch._archive_prefix() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$ SELECT format('pg_orch_%s_', regexp_replace(current_database(), '[^A-Za-z0-9_-]', '_', 'g')) $$;

-- Writes the rows of `query` (row_to_json text first, their time second) as
-- one archive file and lists it; false, with a WARNING in the log saying
-- why, when it cannot (then the caller keeps the rows).
CREATE FUNCTION orch._archive(kind text, query text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  name text := format('%s%s_%s_%s.jsonl.gz', orch._archive_prefix(), kind,
                      to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISSUS'), txid_current());
  size bigint;
  rows bigint;
  first_at timestamptz;
  last_at timestamptz;
BEGIN
  IF current_setting('orch.archive_directory') = '' THEN
    RETURN true;
  END IF;
  EXECUTE format('SELECT count(*), min(at), max(at) FROM (%s) AS q(line, at)', query) INTO rows, first_at, last_at;
  IF rows = 0 THEN
    RETURN true;
  END IF;
  BEGIN
    size := orch._write_archive(name, format('SELECT line FROM (%s) AS q(line, at)', query));
  EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'pg_orch could not archive % pruned %: %; they are kept', rows, kind, SQLERRM;
    RETURN false;
  END;
  INSERT INTO orch.archives (file, kind, row_count, bytes, first_at, last_at)
  VALUES (name, kind, rows, size, first_at, last_at);
  RETURN true;
END
$$;

-- A month's partition of orch.events for the current month and the next,
-- named events_YYYY_MM (UTC); events of other times go to events_default,
-- and rows of the month already there move into the new partition (after
-- an upgrade from 0.1, once). It takes orch.events alone, so that no insert
-- routed before the change lands in the wrong partition (which fails it):
-- it waits at most 100 ms for that, and is tried again at the next prune.
CREATE FUNCTION orch._add_event_partitions() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET session_replication_role = replica
  SET lock_timeout = '100ms'
AS $$
DECLARE
  month timestamp;
  name text;
  low timestamptz;
  high timestamptz;
BEGIN
  FOR month IN SELECT date_trunc('month', now() AT TIME ZONE 'UTC') + m * interval '1 month'
               FROM generate_series(0, 1) AS m LOOP
    name := 'events_' || to_char(month, 'YYYY_MM');
    CONTINUE WHEN to_regclass('orch.' || name) IS NOT NULL;
    low := month AT TIME ZONE 'UTC';
    high := (month + interval '1 month') AT TIME ZONE 'UTC';
    BEGIN
      LOCK TABLE orch.events IN ACCESS EXCLUSIVE MODE;
      CONTINUE WHEN to_regclass('orch.' || name) IS NOT NULL;  -- another pruner (an admin's call) was first
      EXECUTE format('CREATE TABLE orch.%I (LIKE orch.events INCLUDING DEFAULTS)', name);
      EXECUTE format('WITH moved AS (DELETE FROM orch.events_default WHERE at >= %L AND at < %L RETURNING *)
                      INSERT INTO orch.%I SELECT * FROM moved', low, high, name);
      EXECUTE format('ALTER TABLE orch.events ATTACH PARTITION orch.%I FOR VALUES FROM (%L) TO (%L)', name, low, high);
    EXCEPTION WHEN lock_not_available OR duplicate_table THEN
      RAISE LOG 'pg_orch could not add the partition orch.% yet: %', name, SQLERRM;
    END;
  END LOOP;
END
$$;

-- Expired months leave orch.events first, in a transaction of their own:
-- detaching waits (100 ms at most) for the transactions writing to
-- orch.events, and after it nothing writes to the month, so that
-- orch._prune_batch archives exactly what it drops, without holding
-- orch.events meanwhile. Returns how many months it detached.
CREATE FUNCTION orch._detach_expired_months() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET lock_timeout = '100ms'
AS $$
DECLARE
  keep_events interval := current_setting('orch.events_retention')::interval;
  month record;
  detached integer := 0;
BEGIN
  IF keep_events <= interval '0' THEN
    RETURN 0;
  END IF;
  FOR month IN
    SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'orch.events'::regclass AND c.relname ~ '^events_\d{4}_\d{2}$'
      AND (to_date(substr(c.relname, 8), 'YYYY_MM') + interval '1 month') AT TIME ZONE 'UTC' <= now() - keep_events
  LOOP
    BEGIN
      EXECUTE format('ALTER TABLE orch.events DETACH PARTITION orch.%I', month.relname);
      detached := detached + 1;
    EXCEPTION WHEN lock_not_available THEN
      RAISE LOG 'pg_orch could not detach the expired month orch.% yet: %', month.relname, SQLERRM;
    END;
  END LOOP;
  RETURN detached;
END
$$;

-- One batch: at most max_rows rows of runs and tasks, then of events.
-- Triggers are off (session_replication_role) so that the append-only
-- events can be pruned; only this function deletes them. It waits at most
-- 100 ms for any lock (a reader of orch.events, when a month is dropped).
CREATE FUNCTION orch._prune_batch(max_rows integer DEFAULT 1000, OUT runs bigint, OUT tasks bigint, OUT events bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET session_replication_role = replica
  SET lock_timeout = '100ms'
AS $$
DECLARE
  history interval := current_setting('orch.history_retention')::interval;
  keep_events interval := current_setting('orch.events_retention')::interval;
  run_ids bigint[];
  task_ids bigint[];
  event_ids bigint[];
  month record;
BEGIN
  runs := 0; tasks := 0; events := 0;
  PERFORM orch._add_event_partitions();

  IF history > interval '0' THEN
    -- Finished runs, oldest first; not any process's latest.
    run_ids := ARRAY(
      SELECT r.id FROM orch.runs r
      WHERE r.completed_at < now() - history AND r.status IN ('COMPLETED', 'FAILED', 'STOPPED')
        AND NOT EXISTS (SELECT 1 FROM orch.processes p WHERE p.id = r.process_id AND p.current_run_id = r.id)
        -- (a stopped run's command may still be dying: it counts against the limits until it has.
        -- Said as the limits say it, so that it reads the few active tasks by their partial
        -- index: without fan_out, each batch read all of orch.tasks, 97 ms with 1M rows.)
        AND NOT EXISTS (SELECT 1 FROM orch.tasks t
                        WHERE t.run_id = r.id AND t.status IN ('DISPATCHED', 'RUNNING') AND t.fan_out IS NULL)
      ORDER BY r.completed_at LIMIT greatest(max_rows / 10, 1) FOR UPDATE OF r SKIP LOCKED);
    -- Their tasks, as many as fit; a run goes once all its tasks have.
    task_ids := ARRAY(SELECT t.id FROM orch.tasks t WHERE t.run_id = ANY (run_ids)
                      ORDER BY t.run_id, t.id LIMIT max_rows - cardinality(run_ids));
    run_ids := ARRAY(SELECT r FROM unnest(run_ids) AS r
                     WHERE NOT EXISTS (SELECT 1 FROM orch.tasks t WHERE t.run_id = r AND t.id <> ALL (task_ids)));
    IF orch._archive('tasks', format('SELECT row_to_json(t)::text, t.completed_at FROM orch.tasks t WHERE t.id = ANY (%L::bigint[])', task_ids))
       AND orch._archive('runs', format('SELECT row_to_json(r)::text, r.completed_at FROM orch.runs r WHERE r.id = ANY (%L::bigint[])', run_ids)) THEN
      DELETE FROM orch.tasks WHERE id = ANY (task_ids);
      GET DIAGNOSTICS tasks = ROW_COUNT;
      DELETE FROM orch.runs WHERE id = ANY (run_ids);
      GET DIAGNOSTICS runs = ROW_COUNT;
    END IF;
  END IF;

  IF keep_events > interval '0' THEN
    -- A detached month first (orch._detach_expired_months): archived as one
    -- file, then dropped.
    FOR month IN
      SELECT c.relname FROM pg_class c
      WHERE c.relnamespace = 'orch'::regnamespace AND c.relkind = 'r' AND NOT c.relispartition
        AND c.relname ~ '^events_\d{4}_\d{2}$'
      ORDER BY c.relname LIMIT 1
    LOOP
      IF orch._archive('events', format('SELECT row_to_json(e)::text, e.at FROM orch.%I e ORDER BY e.id', month.relname)) THEN
        EXECUTE format('SELECT count(*) FROM orch.%I', month.relname) INTO events;
        EXECUTE format('DROP TABLE orch.%I', month.relname);
      END IF;
      RETURN;
    END LOOP;
    -- Then rows, in events_default and the months not wholly expired (an
    -- expired month goes whole once it is detached): chosen once, so that
    -- what is archived is what is deleted.
    IF runs + tasks < max_rows THEN
      event_ids := ARRAY(
        SELECT id FROM orch.events
        WHERE at < now() - keep_events
          AND (tableoid = 'orch.events_default'::regclass
               OR at >= date_trunc('month', (now() - keep_events) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')
        ORDER BY id LIMIT max_rows - runs - tasks);
      IF orch._archive('events', format(
           'SELECT row_to_json(e)::text, e.at FROM orch.events e WHERE e.id = ANY (%L::bigint[]) AND e.at < %L',
           event_ids, now() - keep_events)) THEN
        DELETE FROM orch.events WHERE id = ANY (event_ids) AND at < now() - keep_events;
        GET DIAGNOSTICS events = ROW_COUNT;
      END IF;
    END IF;
  END IF;
END
$$;

-- orch.prune_history(): every batch due now, in this transaction (admins).
-- A month it detaches keeps orch.events locked until the caller commits.
CREATE FUNCTION orch._api_prune_history(OUT runs bigint, OUT tasks bigint, OUT events bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  batch record;
BEGIN
  IF NOT orch._is_admin() THEN
    RAISE EXCEPTION 'permission denied to prune history' USING ERRCODE = 'insufficient_privilege',
      HINT = 'Members of orch_admin may prune history.';
  END IF;
  runs := 0; tasks := 0; events := 0;
  PERFORM orch._detach_expired_months();
  LOOP
    batch := orch._prune_batch();
    runs := runs + batch.runs;
    tasks := tasks + batch.tasks;
    events := events + batch.events;
    EXIT WHEN batch.runs + batch.tasks + batch.events = 0;
  END LOOP;
END
$$;

-- 80_api.sql: orch.prune_history.
CREATE FUNCTION orch.prune_history(OUT runs bigint, OUT tasks bigint, OUT events bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';

-- 90_security.sql: the new orch.events's policy, the new tables' policies,
-- then all privileges again (they are idempotent).
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
