-- pg_orch: the scheduler's side (called by the background worker only)
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
  WITH s AS (
    UPDATE orch.tasks t SET status = 'RUNNING', pid = s.pid, started_at = to_timestamp(s.started_at)
    FROM jsonb_to_recordset(started) AS s(id bigint, pid integer, started_at float8)
    WHERE t.id = s.id AND t.status = 'DISPATCHED'
    RETURNING t.*)
  INSERT INTO orch.events (actor, owner, process_id, run_id, kind, detail)
  SELECT 'pg_orch scheduler', s.owner, s.process_id, s.run_id, 'task_started',
         jsonb_build_object('task', s.name, 'attempt', s.attempt, 'pid', s.pid)
  FROM s;
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
    RETURNING t.*),
  logged AS (
    INSERT INTO orch.events (actor, owner, process_id, run_id, kind, detail)
    SELECT 'pg_orch scheduler', d.owner, d.process_id, d.run_id,
           CASE WHEN d.status = 'PENDING' THEN 'task_retrying' ELSE 'task_' || lower(d.status::text) END,
           jsonb_build_object('task', d.name, 'attempt', d.attempt, 'exit_code', d.exit_code, 'error', d.error_message)
    FROM done d)
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
    WITH s AS (
      UPDATE orch.tasks t SET status = 'SKIPPED', completed_at = clock_timestamp(),
             error_message = 'a task it depends on did not complete'
      FROM orch.runs r
      WHERE r.id = t.run_id AND r.id = ANY (run_ids) AND r.status = 'IN_PROGRESS'
        AND t.status = 'PENDING'
        AND EXISTS (SELECT 1 FROM orch.tasks d WHERE d.run_id = t.run_id AND d.task_index = ANY (t.depends_on)
                      AND d.status IN ('FAILED', 'SKIPPED', 'STOPPED'))
      RETURNING t.*)
    INSERT INTO orch.events (actor, owner, process_id, run_id, kind, detail)
    SELECT 'pg_orch scheduler', s.owner, s.process_id, s.run_id, 'task_skipped', jsonb_build_object('task', s.name)
    FROM s;
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
    RETURNING r.id, r.process_id, r.owner, r.status, r.error_message),
  logged AS (
    INSERT INTO orch.events (actor, owner, process_id, run_id, kind, detail)
    SELECT 'pg_orch scheduler', e.owner, e.process_id, e.id, 'run_' || lower(e.status::text),
           jsonb_build_object('error', e.error_message)
    FROM ended e)
  UPDATE orch.processes p SET status = e.status, updated_at = clock_timestamp()
  FROM ended e WHERE p.id = e.process_id AND p.current_run_id = e.id;

  IF EXISTS (SELECT 1 FROM orch.runs r JOIN orch.processes p ON p.id = r.process_id
             WHERE r.id = ANY (run_ids) AND p.run_queued) THEN
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
  SELECT t.sql, r.input_data, p.created_by_role, c.claims, (extract(epoch FROM t.timeout) * 1000)::bigint,
         t.attempt, t.max_retries, (extract(epoch FROM t.retry_delay) * 1000)::bigint, t.retry_backoff
  FROM orch.tasks t JOIN orch.runs r ON r.id = t.run_id JOIN orch.processes p ON p.id = r.process_id
  LEFT JOIN orch.process_claims c ON c.process_id = p.id
  WHERE t.id = task_id AND t.kind = 'sql'
$$;

-- The task whose outcome this session's sql task worker is recording right
-- now, else NULL (src/pg/sql_task_runner.cpp).
CREATE FUNCTION orch._sql_task_recording() RETURNS bigint
LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'orch_sql_task_recording';

-- How an sql task's worker, which runs as the process's creator, records
-- the attempt's outcome in the transaction of its statement. Anyone may
-- call it; it acts only for that worker, at that moment, on that task.
CREATE FUNCTION orch._sql_task_finished(finished jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF orch._sql_task_recording() IS DISTINCT FROM (finished ->> 'id')::bigint
     OR NOT EXISTS (SELECT 1 FROM orch.tasks t
                    WHERE t.id = (finished ->> 'id')::bigint AND t.kind = 'sql' AND t.status = 'RUNNING'
                      AND t.pid = pg_backend_pid()) THEN
    RAISE EXCEPTION 'only the worker of a running sql task may record its outcome'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  PERFORM orch._tasks_finished(jsonb_build_array(finished));
END
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

REVOKE ALL ON FUNCTION orch._fire_due_schedules(integer), orch._start_queued_runs(bigint[]),
  orch._start_scheduled_run(orch.processes, boolean), orch._claim_tasks(integer), orch._ms_until_next_ready(),
  orch._tasks_started(jsonb), orch._stopped_tasks(bigint[]), orch._tasks_finished(jsonb),
  orch._advance_runs(bigint[], boolean), orch._orphaned_tasks(), orch._sql_task_context(bigint) FROM PUBLIC;
