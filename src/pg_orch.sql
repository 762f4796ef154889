-- pg_orch: the SQL surface. The Makefile copies this file to the versioned
-- install script (pg_orch--X.Y.sql); later versions add upgrade scripts.
\echo Use "CREATE EXTENSION pg_orch" to load this file. \quit

-------------------------------------------------------------------------------
-- Statuses (DESIGN.md). Legal moves are checked by one trigger function that
-- asks src/core/lifecycle, so no code path can take an illegal step.
-------------------------------------------------------------------------------
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

-------------------------------------------------------------------------------
-- Tables
-------------------------------------------------------------------------------
CREATE TABLE orch.process_types (
  name        text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,63}$'),
  description text,
  tasks       jsonb NOT NULL,  -- as the user wrote it; validated by define_process_type
  runs_os_commands boolean NOT NULL,
  owner       text NOT NULL DEFAULT orch.current_owner(),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orch.processes (
  id          text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 255),
  type        text NOT NULL REFERENCES orch.process_types (name),
  input_data  jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(input_data) = 'object'),
  owner       text NOT NULL DEFAULT orch.current_owner(),
  -- sql tasks run as this role with these claims: the creator's, never more.
  created_by_role text NOT NULL DEFAULT orch._caller(),
  jwt_claims  jsonb DEFAULT orch._jwt_claims(),
  -- Schedule (NULL: manual only). timezone is fixed when the schedule is set.
  schedule    text,
  timezone    text,
  overlap_policy text NOT NULL DEFAULT 'skip' CHECK (overlap_policy IN ('skip', 'queue', 'parallel')),
  misfire_policy text NOT NULL DEFAULT 'run_once' CHECK (misfire_policy IN ('run_once', 'skip')),
  is_active   boolean NOT NULL DEFAULT true,  -- false: the schedule is paused
  next_run_at timestamptz,  -- the next tick; NULL when there is none (no schedule, or paused)
  last_run_at timestamptz,  -- when a run of this process last started
  run_queued  boolean NOT NULL DEFAULT false,  -- overlap 'queue': a tick waits for the current run
  -- Denormalised from the current run (same transaction) so that listing by
  -- status and the start/stop checks need no join. PENDING until a first run.
  status      orch.status NOT NULL DEFAULT 'PENDING',
  current_run_id bigint,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON orch.processes (type);
CREATE INDEX ON orch.processes (status);
-- The scheduler sleeps until the earliest tick: one index probe, never a scan.
CREATE INDEX processes_next_run_idx ON orch.processes (next_run_at) WHERE next_run_at IS NOT NULL;

CREATE TABLE orch.runs (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  process_id   text NOT NULL REFERENCES orch.processes (id) ON DELETE CASCADE,
  owner        text NOT NULL,  -- copied from the process for row level security without a join
  status       orch.status NOT NULL,
  triggered_by text NOT NULL
    CHECK (triggered_by IN ('MANUAL', 'API', 'SCHEDULED', 'RETRY') OR triggered_by ~ '^event:.+'),
  catch_up     boolean NOT NULL DEFAULT false,  -- a scheduled run for ticks missed during downtime
  input_data   jsonb NOT NULL DEFAULT '{}',  -- the process's input when the run was made
  total_tasks  integer NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz,
  error_message text
);
CREATE INDEX ON orch.runs (process_id, id);

CREATE TABLE orch.tasks (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id       bigint NOT NULL REFERENCES orch.runs (id) ON DELETE CASCADE,
  process_id   text NOT NULL,  -- copied from the run, for listing and row level security
  owner        text NOT NULL,
  task_index   integer NOT NULL,  -- 0-based position in the type's task array
  name         text NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('command', 'shell', 'sql')),
  -- What runs, fixed when the run was created: placeholders already
  -- substituted, so redefining the type never changes a run.
  command      text[],
  shell        text,
  sql          text,
  working_directory text,
  env          jsonb NOT NULL DEFAULT '{}',
  timeout      interval,
  max_retries  integer NOT NULL DEFAULT 0,
  retry_delay  interval NOT NULL DEFAULT '0',
  retry_backoff float8 NOT NULL DEFAULT 1,
  depends_on   integer[] NOT NULL DEFAULT '{}',  -- task_index values
  status       orch.task_status NOT NULL DEFAULT 'PENDING',
  ready_at     timestamptz,  -- NULL while dependencies are unfinished
  attempt      integer NOT NULL DEFAULT 0,  -- attempts dispatched so far
  pid          integer,  -- also the process group id of the command
  started_at   timestamptz,
  completed_at timestamptz,
  exit_code    integer,
  output       text,
  output_truncated boolean NOT NULL DEFAULT false,
  error_message text,
  UNIQUE (run_id, task_index)
);
-- The scheduler's claim: ready tasks in the order they became ready.
CREATE INDEX tasks_ready_idx ON orch.tasks (ready_at, id) WHERE status = 'PENDING' AND ready_at IS NOT NULL;

-- Append-only record of what happened to processes and runs.
CREATE TABLE orch.events (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT clock_timestamp(),
  actor      text NOT NULL DEFAULT orch.current_owner(),  -- who did it
  owner      text,  -- whose process it concerns
  process_id text,  -- no foreign keys: events outlive what they describe
  run_id     bigint,
  kind       text NOT NULL,
  detail     jsonb
);
CREATE INDEX ON orch.events (process_id, id);

-------------------------------------------------------------------------------
-- C functions
-------------------------------------------------------------------------------
CREATE FUNCTION orch.input_data(text) RETURNS jsonb
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'orch_input_data';
COMMENT ON FUNCTION orch.input_data(text) IS
  'turns the key:value;key:value input format into a jsonb object';

-- Validates a task array; returns it normalised (intervals in ms, dependencies as indexes).
CREATE FUNCTION orch._parse_process_type(jsonb) RETURNS jsonb
LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'orch_parse_process_type';

-- The rows of a new run's tasks: a type's tasks with the input substituted.
CREATE FUNCTION orch._materialize_tasks(tasks jsonb, input jsonb) RETURNS jsonb
LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'orch_materialize_tasks';

-- The next `count` times a cron schedule fires strictly after `after`, in a time zone.
CREATE FUNCTION orch._next_run_times(schedule text, timezone text, after timestamptz, count integer)
RETURNS timestamptz[]
LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'orch_next_run_times';

-- Wakes this database's scheduler when the calling transaction commits.
CREATE FUNCTION orch._wake_scheduler_at_commit(stop_requested boolean) RETURNS void
LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'orch_wake_scheduler_at_commit';

CREATE FUNCTION orch._enforce_lifecycle() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'orch_enforce_lifecycle';

CREATE TRIGGER processes_lifecycle BEFORE UPDATE OF status ON orch.processes
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION orch._enforce_lifecycle();
CREATE TRIGGER runs_lifecycle BEFORE UPDATE OF status ON orch.runs
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION orch._enforce_lifecycle();
CREATE TRIGGER tasks_lifecycle BEFORE UPDATE OF status ON orch.tasks
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION orch._enforce_lifecycle();

-------------------------------------------------------------------------------
-- Process types
-------------------------------------------------------------------------------
CREATE FUNCTION orch.define_process_type(name text, tasks jsonb, description text DEFAULT NULL)
RETURNS orch.process_types
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  normalized jsonb;
  os_commands boolean;
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
  normalized := orch._parse_process_type(tasks);
  SELECT bool_or(t ->> 'kind' IN ('command', 'shell')) INTO os_commands
    FROM jsonb_array_elements(normalized) AS t;
  -- Running OS commands is as powerful as COPY ... TO PROGRAM.
  IF os_commands AND NOT (
       (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
       OR pg_catalog.pg_has_role(current_user, 'pg_execute_server_program', 'USAGE')) THEN
    RAISE EXCEPTION 'permission denied to define process type "%"', name
      USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'Its tasks run operating system commands.',
            HINT = 'Only superusers and members of pg_execute_server_program may define command or shell tasks.';
  END IF;
  INSERT INTO orch.process_types AS pt (name, description, tasks, runs_os_commands)
  VALUES (define_process_type.name, description, tasks, os_commands)
  ON CONFLICT ON CONSTRAINT process_types_pkey DO UPDATE
    SET description = EXCLUDED.description, tasks = EXCLUDED.tasks,
        runs_os_commands = EXCLUDED.runs_os_commands, updated_at = now()
  RETURNING * INTO result;
  RETURN result;
END
$$;

CREATE FUNCTION orch.drop_process_type(name text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  users bigint;
BEGIN
  PERFORM 1 FROM orch.process_types pt WHERE pt.name = drop_process_type.name FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'process type "%" does not exist', name USING ERRCODE = 'undefined_object';
  END IF;
  SELECT count(*) INTO users FROM orch.processes p WHERE p.type = drop_process_type.name;
  IF users > 0 THEN
    RAISE EXCEPTION 'cannot drop process type "%" because % process(es) use it', name, users
      USING ERRCODE = 'dependent_objects_still_exist',
            HINT = 'Delete those processes first with orch.delete_process().';
  END IF;
  DELETE FROM orch.process_types pt WHERE pt.name = drop_process_type.name;
END
$$;

-------------------------------------------------------------------------------
-- Processes
-------------------------------------------------------------------------------
CREATE FUNCTION orch.create_process(id text, type text, input_data jsonb DEFAULT '{}',
                                    schedule text DEFAULT NULL, timezone text DEFAULT NULL,
                                    overlap text DEFAULT 'skip', misfire text DEFAULT 'run_once')
RETURNS orch.processes
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  result orch.processes;
  zone text;
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
  END IF;
  zone := orch._check_schedule(schedule, timezone, overlap, misfire);
  PERFORM 1 FROM orch.process_types pt WHERE pt.name = create_process.type FOR KEY SHARE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'process type "%" does not exist', type USING ERRCODE = 'undefined_object';
  END IF;
  BEGIN
    INSERT INTO orch.processes (id, type, input_data, schedule, timezone, overlap_policy, misfire_policy,
                                next_run_at)
    VALUES (create_process.id, create_process.type, create_process.input_data, schedule, zone, overlap, misfire,
            orch._next_run_at(schedule, zone, clock_timestamp()))
    RETURNING * INTO result;
  EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'process "%" already exists', id USING ERRCODE = 'duplicate_object';
  END;
  IF schedule IS NOT NULL THEN
    PERFORM orch._wake_scheduler_at_commit(false);
  END IF;
  RETURN result;
END
$$;

-- Locks a process row for a state change, or raises the error every API
-- function gives for an unknown process.
CREATE FUNCTION orch._lock_process(id text) RETURNS orch.processes
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  result orch.processes;
BEGIN
  SELECT * INTO result FROM orch.processes p WHERE p.id = _lock_process.id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'process "%" does not exist', id USING ERRCODE = 'undefined_object';
  END IF;
  RETURN result;
END
$$;

-- Creates a run of a locked process from its type as it is now, and makes
-- it the process's current run. Callers check whether it may start.
CREATE FUNCTION orch._start_run(proc orch.processes, triggered_by text, catch_up boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  type_tasks jsonb;
  rows jsonb;
  new_run_id bigint;
BEGIN
  SELECT pt.tasks INTO type_tasks FROM orch.process_types pt WHERE pt.name = proc.type;
  rows := orch._materialize_tasks(type_tasks, proc.input_data);

  INSERT INTO orch.runs (process_id, owner, status, triggered_by, catch_up, input_data, total_tasks, started_at)
  VALUES (proc.id, proc.owner, 'IN_PROGRESS', triggered_by, catch_up, proc.input_data, jsonb_array_length(rows),
          clock_timestamp())
  RETURNING runs.id INTO new_run_id;

  INSERT INTO orch.tasks (run_id, process_id, owner, task_index, name, kind, command, shell, sql,
                          working_directory, env, timeout, max_retries, retry_delay, retry_backoff,
                          depends_on, ready_at)
  SELECT new_run_id, proc.id, proc.owner, t.task_index, t.name, t.kind, t.command, t.shell, t.sql,
         t.working_directory, coalesce(t.env, '{}'), t.timeout_ms * interval '1 millisecond',
         t.max_retries, t.retry_delay_ms * interval '1 millisecond', t.retry_backoff,
         t.depends_on, CASE WHEN cardinality(t.depends_on) = 0 THEN clock_timestamp() END
  FROM jsonb_to_recordset(rows) AS t(task_index int, name text, kind text, command text[], shell text,
                                     sql text, working_directory text, env jsonb, timeout_ms bigint,
                                     max_retries int, retry_delay_ms bigint, retry_backoff float8,
                                     depends_on int[]);

  UPDATE orch.processes p SET status = 'IN_PROGRESS', current_run_id = new_run_id,
                              last_run_at = clock_timestamp(), updated_at = clock_timestamp()
  WHERE p.id = proc.id;
  PERFORM orch._wake_scheduler_at_commit(false);
  RETURN new_run_id;
END
$$;

CREATE FUNCTION orch.start(id text, triggered_by text DEFAULT 'MANUAL') RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes;
BEGIN
  proc := orch._lock_process(id);
  IF proc.status = 'IN_PROGRESS' THEN
    RAISE EXCEPTION 'process "%" is already in progress', id
      USING ERRCODE = 'object_in_use', DETAIL = format('Run %s has not finished.', proc.current_run_id),
            HINT = 'Wait for it with orch.wait() or stop it with orch.stop().';
  END IF;
  IF triggered_by IS NULL OR NOT (triggered_by IN ('MANUAL', 'API', 'SCHEDULED', 'RETRY') OR triggered_by ~ '^event:.+') THEN
    RAISE EXCEPTION 'invalid triggered_by "%"', triggered_by
      USING ERRCODE = 'invalid_parameter_value', HINT = 'Use MANUAL, API, SCHEDULED, RETRY or event:<name>.';
  END IF;
  RETURN orch._start_run(proc, triggered_by);
END
$$;

CREATE FUNCTION orch.stop(id text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes;
BEGIN
  proc := orch._lock_process(id);
  IF proc.status <> 'IN_PROGRESS' THEN
    RAISE EXCEPTION 'process "%" is not running', id
      USING ERRCODE = 'object_not_in_prerequisite_state', DETAIL = format('Its status is %s.', proc.status);
  END IF;
  UPDATE orch.runs r SET status = 'STOPPED', completed_at = now(),
         error_message = format('stopped by %s', orch.current_owner())
  WHERE r.id = proc.current_run_id;
  -- Tasks not yet dispatched stop here; the scheduler kills the running ones
  -- (their run is STOPPED) and records them as STOPPED.
  UPDATE orch.tasks t SET status = 'STOPPED', completed_at = now(), error_message = 'stopped before it ran'
  WHERE t.run_id = proc.current_run_id AND t.status = 'PENDING';
  UPDATE orch.processes p SET status = 'STOPPED', run_queued = false, updated_at = now() WHERE p.id = proc.id;
  PERFORM orch._wake_scheduler_at_commit(true);
  RETURN proc.current_run_id;
END
$$;

CREATE FUNCTION orch.delete_process(id text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes;
BEGIN
  proc := orch._lock_process(id);
  IF proc.status = 'IN_PROGRESS' THEN
    RAISE EXCEPTION 'cannot delete process "%" while it is in progress', id
      USING ERRCODE = 'object_in_use', HINT = 'Stop it first with orch.stop().';
  END IF;
  -- A stopped run may still have a command being killed; keep its rows until then.
  IF EXISTS (SELECT 1 FROM orch.tasks t WHERE t.run_id = proc.current_run_id
               AND t.status IN ('DISPATCHED', 'RUNNING')) THEN
    RAISE EXCEPTION 'cannot delete process "%" while its stopped command is still being killed', id
      USING ERRCODE = 'object_in_use', HINT = 'Try again in a moment, or wait with orch.wait().';
  END IF;
  DELETE FROM orch.processes p WHERE p.id = proc.id;
END
$$;

-------------------------------------------------------------------------------
-- Schedules
-------------------------------------------------------------------------------

-- A schedule's zone: the one given, else orch.timezone, else the session's TimeZone.
CREATE FUNCTION orch._effective_time_zone(timezone text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(timezone, nullif(current_setting('orch.timezone'), ''), current_setting('TimeZone'))
$$;

-- The first tick strictly after `after`, or NULL (no schedule, or none left).
CREATE FUNCTION orch._next_run_at(schedule text, timezone text, after timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
  SELECT (orch._next_run_times(schedule, timezone, after, 1))[1]
$$;

-- Validates a schedule and its policies; returns the zone to store (NULL
-- without a schedule).
CREATE FUNCTION orch._check_schedule(schedule text, timezone text, overlap text, misfire text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  zone text := orch._effective_time_zone(timezone);
BEGIN
  IF overlap IS NULL OR overlap NOT IN ('skip', 'queue', 'parallel') THEN
    RAISE EXCEPTION 'invalid overlap policy "%"', overlap
      USING ERRCODE = 'invalid_parameter_value', HINT = 'Use skip, queue or parallel.';
  END IF;
  IF misfire IS NULL OR misfire NOT IN ('run_once', 'skip') THEN
    RAISE EXCEPTION 'invalid misfire policy "%"', misfire
      USING ERRCODE = 'invalid_parameter_value', HINT = 'Use run_once or skip.';
  END IF;
  IF schedule IS NULL THEN
    RETURN NULL;
  END IF;
  -- Raises for a bad expression or zone, naming the field and why.
  PERFORM orch._next_run_times(schedule, zone, clock_timestamp(), 0);
  RETURN zone;
END
$$;

-- The next `count` times a schedule fires after `from`: to check an
-- expression before using it.
CREATE FUNCTION orch.next_runs(schedule text, timezone text DEFAULT NULL, "from" timestamptz DEFAULT now(),
                               count integer DEFAULT 5)
RETURNS SETOF timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
  SELECT unnest(orch._next_run_times(schedule, orch._effective_time_zone(timezone), "from", count))
$$;

-- Sets or changes a process's schedule; it takes effect at once. A NULL
-- schedule makes the process manual only; NULL policies keep the current ones.
CREATE FUNCTION orch.set_schedule(id text, schedule text, timezone text DEFAULT NULL, overlap text DEFAULT NULL,
                                  misfire text DEFAULT NULL)
RETURNS orch.processes
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes := orch._lock_process(id);
  zone text;
  result orch.processes;
BEGIN
  overlap := coalesce(overlap, proc.overlap_policy);
  misfire := coalesce(misfire, proc.misfire_policy);
  zone := orch._check_schedule(schedule, timezone, overlap, misfire);
  UPDATE orch.processes p
  SET schedule = set_schedule.schedule, timezone = zone, overlap_policy = overlap, misfire_policy = misfire,
      next_run_at = CASE WHEN p.is_active THEN orch._next_run_at(set_schedule.schedule, zone, clock_timestamp()) END,
      run_queued = p.run_queued AND set_schedule.schedule IS NOT NULL, updated_at = clock_timestamp()
  WHERE p.id = proc.id
  RETURNING * INTO result;
  PERFORM orch._log_event('schedule_changed', result, NULL,
                          jsonb_build_object('schedule', schedule, 'timezone', zone));
  PERFORM orch._wake_scheduler_at_commit(false);
  RETURN result;
END
$$;

-- Turns the schedule off; manual starts still work.
CREATE FUNCTION orch.pause(id text) RETURNS orch.processes
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  result orch.processes;
BEGIN
  PERFORM orch._lock_process(id);
  UPDATE orch.processes p SET is_active = false, next_run_at = NULL, run_queued = false,
                              updated_at = clock_timestamp()
  WHERE p.id = pause.id RETURNING * INTO result;
  PERFORM orch._log_event('paused', result, NULL, NULL);
  RETURN result;
END
$$;

-- Turns the schedule on again; the next tick is the first one from now.
CREATE FUNCTION orch.resume(id text) RETURNS orch.processes
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  result orch.processes;
BEGIN
  PERFORM orch._lock_process(id);
  UPDATE orch.processes p SET is_active = true,
         next_run_at = orch._next_run_at(p.schedule, p.timezone, clock_timestamp()), updated_at = clock_timestamp()
  WHERE p.id = resume.id RETURNING * INTO result;
  PERFORM orch._log_event('resumed', result, NULL, NULL);
  PERFORM orch._wake_scheduler_at_commit(false);
  RETURN result;
END
$$;

CREATE FUNCTION orch._log_event(kind text, proc orch.processes, run_id bigint, detail jsonb) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$
  INSERT INTO orch.events (owner, process_id, run_id, kind, detail) VALUES (proc.owner, proc.id, run_id, kind, detail)
$$;

-- A scheduled start. A run that cannot be made (say, the type was redefined
-- with a placeholder the input lacks) is recorded as a FAILED run saying why,
-- instead of failing the scheduler's transaction.
CREATE FUNCTION orch._start_scheduled_run(proc orch.processes, catch_up boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  new_run_id bigint;
  message text;
BEGIN
  BEGIN
    new_run_id := orch._start_run(proc, 'SCHEDULED', catch_up);
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS message = MESSAGE_TEXT;
    INSERT INTO orch.runs (process_id, owner, status, triggered_by, catch_up, total_tasks, completed_at, error_message)
    VALUES (proc.id, proc.owner, 'FAILED', 'SCHEDULED', catch_up, 0, clock_timestamp(),
            'the scheduled run could not start: ' || message)
    RETURNING id INTO new_run_id;
    IF proc.status <> 'IN_PROGRESS' THEN
      UPDATE orch.processes p SET status = 'FAILED', current_run_id = new_run_id, last_run_at = clock_timestamp()
      WHERE p.id = proc.id;
    END IF;
  END;
  PERFORM orch._log_event(CASE WHEN catch_up THEN 'catch_up_run' ELSE 'scheduled_run' END, proc, new_run_id, NULL);
END
$$;

-- Fires every due tick (up to 1000 a call) by the process's policies and
-- returns the milliseconds until the next tick, or NULL if there is none.
-- A tick is missed (downtime) when a later tick has passed too, or when it
-- is more than a minute late: misfire 'skip' then drops it, 'run_once'
-- starts one catch-up run for all the missed ticks.
CREATE FUNCTION orch._fire_due_schedules() RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes;
  now_ timestamptz := clock_timestamp();
  tick timestamptz;
  missed boolean;
BEGIN
  FOR proc IN SELECT * FROM orch.processes p WHERE p.next_run_at <= now_
              ORDER BY p.next_run_at LIMIT 1000 FOR UPDATE SKIP LOCKED LOOP
    tick := proc.next_run_at;
    missed := orch._next_run_at(proc.schedule, proc.timezone, tick) <= now_ OR now_ - tick > interval '1 minute';
    UPDATE orch.processes p SET next_run_at = orch._next_run_at(proc.schedule, proc.timezone, now_)
    WHERE p.id = proc.id;
    IF missed AND proc.misfire_policy = 'skip' THEN
      PERFORM orch._log_event('tick_missed', proc, NULL, jsonb_build_object('tick', tick));
    ELSIF proc.status = 'IN_PROGRESS' AND proc.overlap_policy = 'skip' THEN
      PERFORM orch._log_event('tick_skipped', proc, proc.current_run_id,
                              jsonb_build_object('tick', tick, 'reason', 'a run is in progress'));
    ELSIF proc.status = 'IN_PROGRESS' AND proc.overlap_policy = 'queue' THEN
      IF proc.run_queued THEN
        PERFORM orch._log_event('tick_skipped', proc, proc.current_run_id,
                                jsonb_build_object('tick', tick, 'reason', 'a run is already queued'));
      ELSE
        UPDATE orch.processes p SET run_queued = true WHERE p.id = proc.id;
        PERFORM orch._log_event('tick_queued', proc, proc.current_run_id, jsonb_build_object('tick', tick));
      END IF;
    ELSE
      PERFORM orch._start_scheduled_run(proc, missed);
    END IF;
  END LOOP;
  RETURN (SELECT ceil(extract(epoch FROM min(p.next_run_at) - clock_timestamp()) * 1000)::bigint
          FROM orch.processes p WHERE p.next_run_at IS NOT NULL);
END
$$;

-- Starts the queued run of processes whose run just ended (overlap 'queue').
CREATE FUNCTION orch._start_queued_runs(run_ids bigint[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes;
BEGIN
  FOR proc IN SELECT p.* FROM orch.processes p
              WHERE p.run_queued AND p.status <> 'IN_PROGRESS' AND p.current_run_id = ANY (run_ids)
              FOR UPDATE LOOP
    UPDATE orch.processes p SET run_queued = false WHERE p.id = proc.id;
    PERFORM orch._start_scheduled_run(proc, false);
  END LOOP;
END
$$;

-------------------------------------------------------------------------------
-- Watching
-------------------------------------------------------------------------------
CREATE VIEW orch.process_overview AS
SELECT p.id, p.type, p.status, p.owner, p.schedule, p.timezone, p.is_active, p.next_run_at, p.last_run_at,
       p.current_run_id AS run_id, r.triggered_by,
       -- 1-based position of the latest task started (derived, not stored)
       (SELECT max(t.task_index) + 1 FROM orch.tasks t WHERE t.run_id = r.id AND t.started_at IS NOT NULL)
         AS current_task_index,
       coalesce(r.total_tasks, pt.total_tasks) AS total_tasks,
       r.started_at, r.completed_at, r.error_message, p.created_at, p.updated_at
FROM orch.processes p
LEFT JOIN orch.runs r ON r.id = p.current_run_id
LEFT JOIN LATERAL (SELECT jsonb_array_length(t.tasks) AS total_tasks
                   FROM orch.process_types t WHERE t.name = p.type) pt ON true;

-- Per process type: how many processes are in each status, and their runs.
CREATE VIEW orch.stats AS
SELECT p.type,
       count(*) AS processes,
       count(*) FILTER (WHERE p.status = 'PENDING') AS pending,
       count(*) FILTER (WHERE p.status = 'IN_PROGRESS') AS in_progress,
       count(*) FILTER (WHERE p.status = 'COMPLETED') AS completed,
       count(*) FILTER (WHERE p.status = 'FAILED') AS failed,
       count(*) FILTER (WHERE p.status = 'STOPPED') AS stopped,
       sum(r.runs) AS runs,
       avg(r.average_duration) AS average_run_duration
FROM orch.processes p
LEFT JOIN LATERAL (SELECT count(*) AS runs,
                          avg(completed_at - started_at) FILTER (WHERE status = 'COMPLETED') AS average_duration
                   FROM orch.runs WHERE process_id = p.id) r ON true
GROUP BY p.type;

CREATE FUNCTION orch.process_state(id text)
RETURNS TABLE (process_id text, type text, status orch.status, run_id bigint, triggered_by text,
               current_task_index integer, total_tasks integer, started_at timestamptz,
               completed_at timestamptz, error_message text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN QUERY
    SELECT o.id, o.type, o.status, o.run_id, o.triggered_by, o.current_task_index, o.total_tasks,
           o.started_at, o.completed_at, o.error_message
    FROM orch.process_overview o WHERE o.id = process_state.id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'process "%" does not exist', id USING ERRCODE = 'undefined_object';
  END IF;
END
$$;

CREATE FUNCTION orch.history(id text) RETURNS SETOF orch.runs
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM 1 FROM orch.processes p WHERE p.id = history.id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'process "%" does not exist', id USING ERRCODE = 'undefined_object';
  END IF;
  RETURN QUERY SELECT * FROM orch.runs r WHERE r.process_id = history.id ORDER BY r.id DESC;
END
$$;

-- Blocks until the process's current run has ended (or the timeout passes)
-- and returns the process status: IN_PROGRESS means the timeout passed.
CREATE FUNCTION orch.wait(id text, timeout interval DEFAULT '1 minute') RETURNS orch.status
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  deadline timestamptz := clock_timestamp() + timeout;
  current orch.status;
  busy boolean;
BEGIN
  LOOP
    SELECT p.status, EXISTS (SELECT 1 FROM orch.tasks t WHERE t.run_id = p.current_run_id
                                AND t.status IN ('DISPATCHED', 'RUNNING'))
      INTO current, busy
      FROM orch.processes p WHERE p.id = wait.id;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'process "%" does not exist', id USING ERRCODE = 'undefined_object';
    END IF;
    -- A stopped run has ended once its commands are gone too.
    IF current <> 'IN_PROGRESS' AND NOT busy THEN
      RETURN current;
    END IF;
    IF clock_timestamp() >= deadline THEN
      RETURN current;
    END IF;
    PERFORM pg_sleep(0.005);
  END LOOP;
END
$$;

-------------------------------------------------------------------------------
-- The scheduler's side (called by the background worker only)
-------------------------------------------------------------------------------

-- Marks up to max_count ready tasks DISPATCHED and returns what to launch.
CREATE FUNCTION orch._claim_tasks(max_count integer)
RETURNS TABLE (id bigint, run_id bigint, process_id text, name text, kind text, command text[],
               shell text, working_directory text, env jsonb, timeout_ms bigint, attempt integer,
               max_retries integer, retry_delay_ms bigint, retry_backoff float8)
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$
  WITH ready AS (
    SELECT t.id FROM orch.tasks t
    WHERE t.status = 'PENDING' AND t.ready_at IS NOT NULL AND t.ready_at <= clock_timestamp()
    ORDER BY t.ready_at, t.id
    LIMIT max_count
    FOR UPDATE SKIP LOCKED)
  UPDATE orch.tasks t SET status = 'DISPATCHED', attempt = t.attempt + 1, pid = NULL,
                          exit_code = NULL, error_message = NULL
  FROM ready WHERE t.id = ready.id
  RETURNING t.id, t.run_id, t.process_id, t.name, t.kind, t.command, t.shell, t.working_directory,
            t.env, (extract(epoch FROM t.timeout) * 1000)::bigint, t.attempt, t.max_retries,
            (extract(epoch FROM t.retry_delay) * 1000)::bigint, t.retry_backoff
$$;

-- Milliseconds until the next waiting task becomes ready (a retry delay), or NULL.
CREATE FUNCTION orch._ms_until_next_ready() RETURNS bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
  SELECT ceil(extract(epoch FROM min(t.ready_at) - clock_timestamp()) * 1000)::bigint
  FROM orch.tasks t WHERE t.status = 'PENDING' AND t.ready_at IS NOT NULL
$$;

-- started: [{"id": task id, "pid": pid, "started_at": Unix time of the spawn}, ...]
CREATE FUNCTION orch._tasks_started(started jsonb) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$
  UPDATE orch.tasks t SET status = 'RUNNING', pid = s.pid, started_at = to_timestamp(s.started_at)
  FROM jsonb_to_recordset(started) AS s(id bigint, pid integer, started_at float8)
  WHERE t.id = s.id AND t.status = 'DISPATCHED';
$$;

-- Of the given tasks, those whose run was stopped: the scheduler kills them.
CREATE FUNCTION orch._stopped_tasks(ids bigint[]) RETURNS SETOF bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
  SELECT t.id FROM orch.tasks t JOIN orch.runs r ON r.id = t.run_id
  WHERE t.id = ANY (ids) AND r.status <> 'IN_PROGRESS'
$$;

-- Records finished attempts and moves their runs on. finished: [{"id",
-- "outcome", "retry_ms", "exit_code", "output", "truncated", "error"}, ...]
-- where outcome is COMPLETED, FAILED (no attempts left), STOPPED, or RETRY
-- (back to PENDING after retry_ms). A stopped run retries nothing.
CREATE FUNCTION orch._tasks_finished(finished jsonb)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  touched bigint[];
  any_failed boolean;
BEGIN
  WITH f AS (
    SELECT * FROM jsonb_to_recordset(finished)
      AS f(id bigint, outcome text, retry_ms bigint, exit_code integer, output text, truncated boolean,
           error text)),
  done AS (
    UPDATE orch.tasks t
    SET status = CASE WHEN f.outcome <> 'RETRY' THEN f.outcome
                      WHEN r.status = 'IN_PROGRESS' THEN 'PENDING'
                      ELSE 'STOPPED' END::orch.task_status,
        ready_at = CASE WHEN f.outcome = 'RETRY' THEN clock_timestamp() + f.retry_ms * interval '1 millisecond' END,
        completed_at = clock_timestamp(),
        exit_code = f.exit_code, output = f.output, output_truncated = coalesce(f.truncated, false),
        error_message = f.error
    FROM f, orch.runs r
    WHERE t.id = f.id AND r.id = t.run_id AND t.status IN ('DISPATCHED', 'RUNNING')
    RETURNING t.run_id, t.status)
  SELECT array_agg(DISTINCT done.run_id), bool_or(done.status IN ('FAILED', 'STOPPED'))
    INTO touched, any_failed FROM done;

  IF touched IS NOT NULL THEN
    PERFORM orch._advance_runs(touched, any_failed);
  END IF;
END
$$;

-- Moves runs on after task changes: skips what depends on a failure (only
-- looked for when a task failed or stopped), makes tasks whose dependencies
-- completed ready, and finishes runs with nothing left to do, together with
-- their process.
CREATE FUNCTION orch._advance_runs(run_ids bigint[], look_for_skips boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  skipped integer;
BEGIN
  WHILE look_for_skips LOOP
    UPDATE orch.tasks t SET status = 'SKIPPED', completed_at = clock_timestamp(),
           error_message = 'a task it depends on did not complete'
    FROM orch.runs r
    WHERE r.id = t.run_id AND r.id = ANY (run_ids) AND r.status = 'IN_PROGRESS'
      AND t.status = 'PENDING'
      AND EXISTS (SELECT 1 FROM orch.tasks d WHERE d.run_id = t.run_id AND d.task_index = ANY (t.depends_on)
                    AND d.status IN ('FAILED', 'SKIPPED', 'STOPPED'));
    GET DIAGNOSTICS skipped = ROW_COUNT;
    look_for_skips := skipped > 0;
  END LOOP;

  UPDATE orch.tasks t SET ready_at = clock_timestamp()
  FROM orch.runs r
  WHERE r.id = t.run_id AND r.id = ANY (run_ids) AND r.status = 'IN_PROGRESS'
    AND t.status = 'PENDING' AND t.ready_at IS NULL
    AND NOT EXISTS (SELECT 1 FROM orch.tasks d WHERE d.run_id = t.run_id AND d.task_index = ANY (t.depends_on)
                      AND d.status <> 'COMPLETED');

  WITH finished AS (
    SELECT r.id,
           bool_and(t.status = 'COMPLETED') AS all_completed,
           (array_agg(format('task "%s" failed: %s', t.name, t.error_message) ORDER BY t.completed_at, t.task_index)
              FILTER (WHERE t.status = 'FAILED'))[1] AS first_error
    FROM orch.runs r JOIN orch.tasks t ON t.run_id = r.id
    WHERE r.id = ANY (run_ids) AND r.status = 'IN_PROGRESS'
    GROUP BY r.id
    HAVING bool_and(t.status NOT IN ('PENDING', 'DISPATCHED', 'RUNNING'))),
  ended AS (
    UPDATE orch.runs r
    SET status = CASE WHEN f.all_completed THEN 'COMPLETED' ELSE 'FAILED' END::orch.status,
        completed_at = clock_timestamp(), error_message = f.first_error
    FROM finished f WHERE r.id = f.id
    RETURNING r.id, r.process_id, r.status)
  UPDATE orch.processes p SET status = e.status, updated_at = clock_timestamp()
  FROM ended e WHERE p.id = e.process_id AND p.current_run_id = e.id;

  IF EXISTS (SELECT 1 FROM orch.processes p WHERE p.run_queued AND p.current_run_id = ANY (run_ids)) THEN
    PERFORM orch._start_queued_runs(run_ids);
  END IF;
END
$$;

-- What a sql task's runner needs: the statement, the run's input (its $1),
-- and the role and JWT claims of the process's creator, as which it runs.
CREATE FUNCTION orch._sql_task_context(task_id bigint)
RETURNS TABLE (sql text, input_data jsonb, role_name text, jwt_claims jsonb, timeout_ms bigint, attempt integer,
               max_retries integer, retry_delay_ms bigint, retry_backoff float8)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
  SELECT t.sql, r.input_data, p.created_by_role, p.jwt_claims, (extract(epoch FROM t.timeout) * 1000)::bigint,
         t.attempt, t.max_retries, (extract(epoch FROM t.retry_delay) * 1000)::bigint, t.retry_backoff
  FROM orch.tasks t JOIN orch.runs r ON r.id = t.run_id JOIN orch.processes p ON p.id = r.process_id
  WHERE t.id = task_id AND t.kind = 'sql'
$$;

-- Tasks a previous scheduler left DISPATCHED or RUNNING (it crashed or the
-- server stopped): the caller kills their process groups and finishes them.
CREATE FUNCTION orch._orphaned_tasks()
RETURNS TABLE (id bigint, pid integer, attempt integer, max_retries integer, retry_delay_ms bigint,
               retry_backoff float8)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
  SELECT t.id, t.pid, t.attempt, t.max_retries, (extract(epoch FROM t.retry_delay) * 1000)::bigint,
         t.retry_backoff
  FROM orch.tasks t WHERE t.status IN ('DISPATCHED', 'RUNNING') ORDER BY t.id
$$;

REVOKE ALL ON FUNCTION orch._fire_due_schedules(), orch._start_queued_runs(bigint[]),
  orch._start_scheduled_run(orch.processes, boolean), orch._claim_tasks(integer), orch._ms_until_next_ready(),
  orch._tasks_started(jsonb), orch._stopped_tasks(bigint[]), orch._tasks_finished(jsonb),
  orch._advance_runs(bigint[], boolean), orch._orphaned_tasks(), orch._sql_task_context(bigint) FROM PUBLIC;
