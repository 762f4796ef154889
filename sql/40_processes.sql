-- pg_orch: processes
CREATE FUNCTION orch._api_create_process(id text, type text, input_data jsonb, schedule text, timezone text,
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

-- Locks a process the caller may change (need 'edit') or owns ('own', see
-- _may), or raises the one error every API function gives for a process
-- that is not theirs or does not exist.
CREATE FUNCTION orch._lock_process(id text, need text DEFAULT 'edit') RETURNS orch.processes
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  result orch.processes;
BEGIN
  IF id IS NULL THEN
    RAISE EXCEPTION 'process id must not be null' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  -- Checked before the row is locked: a caller who may not change the
  -- process must not hold up those who may, or the scheduler.
  SELECT * INTO result FROM orch.processes p WHERE p.id = _lock_process.id;
  IF NOT FOUND OR NOT orch._may(need, result.id, result.owner) THEN
    PERFORM orch._refuse_process(id, FOUND);
  END IF;
  SELECT * INTO result FROM orch.processes p WHERE p.id = _lock_process.id FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM orch._refuse_process(id, false);
  END IF;
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
CREATE FUNCTION orch._start_run(id text, owner text, only_if_idle boolean, triggered_by text, catch_up boolean,
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

CREATE FUNCTION orch._api_start(id text, triggered_by text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes;
  new_run_id bigint;
BEGIN
  -- SCHEDULED, RETRY and event: runs are made by pg_orch alone.
  IF triggered_by IS NULL OR triggered_by NOT IN ('MANUAL', 'API') THEN
    RAISE EXCEPTION 'invalid triggered_by "%"', triggered_by
      USING ERRCODE = 'invalid_parameter_value', HINT = 'Use MANUAL or API; other labels are set by pg_orch itself.';
  END IF;
  -- The common case in one statement: the caller's own idle process.
  IF orch._can_write() THEN
    new_run_id := orch._start_run(id, orch.current_owner(), true, triggered_by, false, 'started',
                                  jsonb_build_object('triggered_by', triggered_by));
  END IF;
  IF new_run_id IS NULL THEN
    -- Anyone else's, or not startable: lock it if the caller may, and say why not.
    proc := orch._lock_process(id);
    IF proc.status = 'IN_PROGRESS' THEN
      RAISE EXCEPTION 'process "%" is already in progress', id
        USING ERRCODE = 'object_in_use', DETAIL = format('Run %s has not finished.', proc.current_run_id),
              HINT = 'Wait for it with orch.wait() or stop it with orch.stop().';
    END IF;
    new_run_id := orch._start_run(proc.id, proc.owner, true, triggered_by, false, 'started',
                                  jsonb_build_object('triggered_by', triggered_by));
  END IF;
  RETURN new_run_id;
END
$$;

CREATE FUNCTION orch._api_stop(id text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes;
BEGIN
  proc := orch._lock_process(id);
  -- Every run in progress stops: with overlap 'parallel', earlier runs too.
  UPDATE orch.runs r SET status = 'STOPPED', completed_at = now(),
         error_message = format('stopped by %s', orch.current_owner())
  WHERE r.process_id = proc.id AND r.status = 'IN_PROGRESS';
  IF NOT FOUND THEN
    RAISE EXCEPTION 'process "%" is not running', id
      USING ERRCODE = 'object_not_in_prerequisite_state', DETAIL = format('Its status is %s.', proc.status);
  END IF;
  -- Tasks not yet dispatched stop here; the scheduler kills the running ones
  -- (their run is STOPPED) and records them as STOPPED.
  UPDATE orch.tasks t SET status = 'STOPPED', completed_at = now(), error_message = 'stopped before it ran'
  FROM orch.runs r
  WHERE r.id = t.run_id AND r.process_id = proc.id AND r.status = 'STOPPED' AND t.status = 'PENDING';
  -- A fan-out stops with its run; its running instances are killed as any task.
  UPDATE orch.tasks t SET status = 'STOPPED', completed_at = now(), error_message = 'stopped'
  FROM orch.runs r
  WHERE r.id = t.run_id AND r.process_id = proc.id AND r.status = 'STOPPED' AND t.status = 'RUNNING'
    AND t.fan_out IS NOT NULL;
  UPDATE orch.processes p
  SET status = CASE WHEN p.status = 'IN_PROGRESS' THEN 'STOPPED' ELSE p.status END, run_queued = false,
      queued_event = NULL, queued_input = NULL,
      updated_at = now()
  WHERE p.id = proc.id;
  PERFORM orch._wake_scheduler_at_commit(true);
  PERFORM orch._log('stopped', proc.owner, proc.id, proc.current_run_id, NULL);
  RETURN proc.current_run_id;
END
$$;

-- Deleting a process takes its history along: its owner's (or an admin's)
-- decision alone, not an editor's.
CREATE FUNCTION orch._api_delete_process(id text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes;
BEGIN
  proc := orch._lock_process(id, 'own');
  -- Any run in progress (with overlap 'parallel', an earlier one too) keeps
  -- it: its tasks' rows are how the scheduler finds, counts and stops them.
  IF EXISTS (SELECT 1 FROM orch.runs r WHERE r.process_id = proc.id AND r.status = 'IN_PROGRESS') THEN
    RAISE EXCEPTION 'cannot delete process "%" while it is in progress', id
      USING ERRCODE = 'object_in_use', HINT = 'Stop it first with orch.stop().';
  END IF;
  -- A stopped run may still have a command being killed; keep its rows until then.
  IF EXISTS (SELECT 1 FROM orch.tasks t WHERE t.owner = proc.owner AND t.process_id = proc.id
               AND t.status IN ('DISPATCHED', 'RUNNING') AND t.fan_out IS NULL) THEN
    RAISE EXCEPTION 'cannot delete process "%" while its stopped command is still being killed', id
      USING ERRCODE = 'object_in_use', HINT = 'Try again in a moment, or wait with orch.wait().';
  END IF;
  DELETE FROM orch.tasks t USING orch.runs r WHERE r.process_id = proc.id AND t.run_id = r.id;
  DELETE FROM orch.runs r WHERE r.process_id = proc.id;
  DELETE FROM orch.processes p WHERE p.id = proc.id;
  PERFORM orch._log('deleted', proc.owner, proc.id, NULL, NULL);
END
$$;

-- Resumes a FAILED or STOPPED run where it stopped: its completed tasks are
-- kept, the others run again with their retries renewed.
CREATE FUNCTION orch._api_retry(run_id bigint) RETURNS bigint
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

-- Shares a process with another owner name or role: can_view lets them see
-- it, its runs, tasks and events; can_edit lets them start, stop, retry,
-- schedule and upgrade it as well. Deleting and sharing stay the owner's.
CREATE FUNCTION orch._api_share_process(id text, grantee text, can_edit boolean) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes := orch._lock_process(id, 'own');
BEGIN
  IF grantee IS NULL OR grantee = '' THEN
    RAISE EXCEPTION 'grantee must not be empty' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  INSERT INTO orch.process_permissions AS pp (process_id, grantee, owner, can_view, can_edit)
  VALUES (proc.id, grantee, proc.owner, true, coalesce(can_edit, false))
  ON CONFLICT ON CONSTRAINT process_permissions_pkey DO UPDATE SET can_view = true, can_edit = EXCLUDED.can_edit;
  PERFORM orch._log('shared', proc.owner, proc.id, NULL, jsonb_build_object('grantee', grantee, 'can_edit', can_edit));
END
$$;

CREATE FUNCTION orch._api_unshare_process(id text, grantee text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes := orch._lock_process(id, 'own');
BEGIN
  IF grantee IS NULL THEN
    RAISE EXCEPTION 'grantee must not be null' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  DELETE FROM orch.process_permissions pp WHERE pp.process_id = proc.id AND pp.grantee = _api_unshare_process.grantee;
  PERFORM orch._log('unshared', proc.owner, proc.id, NULL, jsonb_build_object('grantee', grantee));
END
$$;

-- Moves a process to its type's newest version: from its next run on, it
-- runs what the type's owner defined last. Redefining a type never does this
-- by itself, so that no one's processes change under them; and only the
-- process's owner (or an admin) may do it, because its sql tasks run as its
-- creator: an editor who owns the type could otherwise run new code as them.
CREATE FUNCTION orch._api_upgrade_process(id text) RETURNS orch.processes
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
