-- pg_orch: the scheduler's side (called by the background worker only)

-- The outputs of a task's ancestors (the tasks it depends on, directly or
-- through others) by task name: an sql task's $2, a shell task's
-- ORCH_OUTPUTS, what {{tasks.NAME.output}} placeholders are filled from.
CREATE FUNCTION orch._ancestor_outputs(task_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  run bigint;
  direct integer[];
BEGIN
  SELECT t.run_id, t.depends_on INTO run, direct FROM orch.tasks t WHERE t.id = task_id;
  RETURN (
    WITH RECURSIVE ancestors(task_index) AS (
      SELECT i FROM unnest(direct) AS i
      UNION
      SELECT i FROM ancestors a JOIN orch.tasks d ON d.run_id = run AND d.task_index = a.task_index
        CROSS JOIN LATERAL unnest(d.depends_on) AS i)
    SELECT coalesce(jsonb_object_agg(d.name, d.output_data), '{}')
    FROM ancestors a JOIN orch.tasks d ON d.run_id = run AND d.task_index = a.task_index);
END
$$;

-- A task's output as jsonb, or NULL when PostgreSQL refuses it (the
-- executors check outputs first; this keeps a value they let through from
-- failing the scheduler's transaction).
CREATE FUNCTION orch._output_jsonb(output text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN output::jsonb;
EXCEPTION WHEN OTHERS THEN
  RETURN NULL;
END
$$;
-- Marks up to max_count ready tasks DISPATCHED and returns what to launch.
-- Fair share: owners take turns (every owner's k-th running task comes
-- before anyone's k+1-th, then in the order they became ready), no owner
-- has more than per_owner running at once, and no type version more than
-- its max_concurrent. One index probe per owner with ready tasks, not a
-- scan of them.
CREATE FUNCTION orch._claim_tasks(max_count integer, per_owner integer)
RETURNS TABLE (id bigint, run_id bigint, process_id text, name text, kind text, command text[],
               shell text, working_directory text, env jsonb, input_data jsonb, timeout_ms bigint, attempt integer,
               outputs jsonb)
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
    SELECT t.owner, t.type, t.type_version FROM orch.tasks t WHERE t.status IN ('DISPATCHED', 'RUNNING')),
  busy AS (
    SELECT o.owner, (SELECT count(*) FROM running r WHERE r.owner = o.owner) AS running
    FROM owners o WHERE o.owner IS NOT NULL),
  full_versions AS (  -- type versions at their max_concurrent
    SELECT r.type, r.type_version
    FROM running r JOIN orch.process_type_versions v ON v.type = r.type AND v.version = r.type_version
    WHERE v.max_concurrent IS NOT NULL
    GROUP BY r.type, r.type_version, v.max_concurrent HAVING count(*) >= v.max_concurrent),
  turns AS (
    SELECT c.id, c.type, c.type_version, b.running + c.rank AS turn, c.ready_at
    FROM busy b CROSS JOIN LATERAL (
      SELECT t.id, t.type, t.type_version, t.ready_at, row_number() OVER (ORDER BY t.ready_at, t.id) AS rank
      FROM (SELECT t.id, t.type, t.type_version, t.ready_at FROM orch.tasks t
            WHERE t.owner = b.owner AND t.status = 'PENDING' AND t.ready_at IS NOT NULL
              AND t.ready_at <= clock_timestamp()
            ORDER BY t.ready_at, t.id
            -- An owner's tasks waiting behind more than this many of a full
            -- type version of theirs wait a turn longer; nobody else does.
            LIMIT 1000) t
      WHERE NOT EXISTS (SELECT 1 FROM full_versions f WHERE f.type = t.type AND f.type_version = t.type_version)
      ORDER BY t.ready_at, t.id
      LIMIT least(greatest(per_owner - b.running, 0), max_count)) c),
  room AS (  -- room left under the max_concurrent of the candidates' type versions
    SELECT v.type, v.version,
           v.max_concurrent - (SELECT count(*) FROM running r WHERE r.type = v.type AND r.type_version = v.version)
             AS room
    FROM orch.process_type_versions v
    WHERE v.max_concurrent IS NOT NULL AND (v.type, v.version) IN (SELECT u.type, u.type_version FROM turns u)),
  fitting AS (  -- of a limited type version, no more than its room, in turn order
    SELECT u.id, u.turn, u.ready_at
    FROM (SELECT u.*, row_number() OVER (PARTITION BY u.type, u.type_version ORDER BY u.turn, u.ready_at, u.id) AS nth
          FROM turns u) u
    LEFT JOIN room l ON l.type = u.type AND l.version = u.type_version
    WHERE l.type IS NULL OR u.nth <= l.room),
  ready AS (
    SELECT t.id FROM (SELECT u.id FROM fitting u ORDER BY u.turn, u.ready_at, u.id LIMIT max_count) u
    JOIN orch.tasks t ON t.id = u.id
    WHERE t.status = 'PENDING'
    FOR UPDATE OF t SKIP LOCKED)
  UPDATE orch.tasks t SET status = 'DISPATCHED', attempt = t.attempt + 1, pid = NULL,
                          exit_code = NULL, error_message = NULL
  FROM ready WHERE t.id = ready.id
  RETURNING t.id, t.run_id, t.process_id, t.name, t.kind::text, t.command, t.shell, t.working_directory,
            t.env, CASE WHEN t.kind <> 'sql' THEN (SELECT r.input_data FROM orch.runs r WHERE r.id = t.run_id) END,
            (extract(epoch FROM t.timeout) * 1000)::bigint, t.attempt,
            CASE WHEN t.kind = 'shell' AND cardinality(t.depends_on) > 0 THEN orch._ancestor_outputs(t.id) END;
END
$$;

-- Tasks claimed but not launched because no background worker slot was
-- free: PENDING again, the attempt not counted, ready a second later.
CREATE FUNCTION orch._tasks_unclaimed(ids bigint[]) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$
  UPDATE orch.tasks t SET status = 'PENDING', attempt = t.attempt - 1, ready_at = clock_timestamp() + interval '1 second'
  WHERE t.id = ANY (ids) AND t.status = 'DISPATCHED'
$$;

-- Milliseconds until the next waiting task becomes ready (a retry delay), or
-- NULL. Tasks ready now but held back (their owner's or type's limit) are
-- claimed when a running task ends, which wakes the scheduler anyway.
CREATE FUNCTION orch._ms_until_next_ready() RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  -- Each owner's earliest delayed task, one probe of the claim's index per
  -- owner with ready tasks (an index on ready_at alone would be one more
  -- index written for every task of every start).
  RETURN (
    WITH RECURSIVE owners AS (
      (SELECT t.owner FROM orch.tasks t WHERE t.status = 'PENDING' AND t.ready_at IS NOT NULL
       ORDER BY t.owner LIMIT 1)
      UNION ALL
      SELECT (SELECT t.owner FROM orch.tasks t WHERE t.status = 'PENDING' AND t.ready_at IS NOT NULL
                AND t.owner > o.owner ORDER BY t.owner LIMIT 1)
      FROM owners o WHERE o.owner IS NOT NULL)
    SELECT ceil(extract(epoch FROM min(n.ready_at) - clock_timestamp()) * 1000)::bigint
    FROM owners o CROSS JOIN LATERAL (
      SELECT t.ready_at FROM orch.tasks t
      WHERE t.owner = o.owner AND t.status = 'PENDING' AND t.ready_at > clock_timestamp()
      ORDER BY t.ready_at LIMIT 1) n
    WHERE o.owner IS NOT NULL);
END
$$;

-- started: [{"id": task id, "pid": pid, "started_at": Unix time of the spawn}, ...]
CREATE FUNCTION orch._tasks_started(started jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  WITH s AS (
    UPDATE orch.tasks t SET status = 'RUNNING', pid = s.pid, started_at = to_timestamp(s.started_at)
    FROM jsonb_to_recordset(started) AS s(id bigint, pid integer, started_at float8)
    WHERE t.id = s.id AND t.status = 'DISPATCHED'
    RETURNING t.*)
  INSERT INTO orch.events (actor, owner, process_id, run_id, kind, detail)
  SELECT 'pg_orch scheduler', s.owner, s.process_id, s.run_id, 'task_started',
         jsonb_build_object('task', s.name, 'attempt', s.attempt, 'pid', s.pid)
  FROM s;
END
$$;

-- Of the given tasks, those whose run was stopped, or whose row is gone:
-- the scheduler kills them.
CREATE FUNCTION orch._stopped_tasks(ids bigint[]) RETURNS SETOF bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
  SELECT i.id FROM unnest(ids) AS i(id)
  WHERE NOT EXISTS (SELECT 1 FROM orch.tasks t JOIN orch.runs r ON r.id = t.run_id
                    WHERE t.id = i.id AND r.status = 'IN_PROGRESS')
$$;

-- Records finished attempts and moves their runs on. finished: [{"id",
-- "ending", "exit_code", "output", "truncated", "error"}, ...], the facts
-- (src/core/task_records.hpp): ending is exited, signaled, timed_out,
-- stopped or spawn_failed. The task becomes COMPLETED, FAILED (no attempts
-- left), STOPPED, or PENDING again after its retry delay; a stopped run
-- retries nothing. Returns the runs that could not be moved on now (see
-- _advance_runs).
CREATE FUNCTION orch._tasks_finished(finished jsonb, wait boolean DEFAULT false)
RETURNS bigint[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  touched bigint[];
  any_failed boolean;
BEGIN
  -- What an attempt's ending means for its task, decided here alone: a
  -- stopped attempt is never retried, an exit with 0 completes it, any
  -- other ending retries it while retries are left.
  -- An output that cannot be stored fails the attempt like a bad exit.
  WITH reported AS (
    SELECT f.*, orch._output_jsonb(f.output_data) AS output_value
    FROM jsonb_to_recordset(finished)
      AS f(id bigint, ending text, exit_code integer, output text, truncated boolean, error text,
           output_data text, output_error text)),
  checked AS (
    SELECT r.*, coalesce(r.output_error, CASE WHEN r.output_data IS NOT NULL AND r.output_value IS NULL
                                              THEN 'the output is not valid JSON for jsonb' END) AS output_problem
    FROM reported r),
  f AS (
    SELECT f.*, CASE WHEN f.ending = 'stopped' THEN 'STOPPED'
                     WHEN f.ending = 'exited' AND f.exit_code = 0 AND f.output_problem IS NULL THEN 'COMPLETED'
                     WHEN t.attempt <= t.max_retries THEN 'RETRY'
                     ELSE 'FAILED' END AS outcome,
           orch._retry_delay_ms((extract(epoch FROM t.retry_delay) * 1000)::bigint, t.retry_backoff, t.attempt)
             AS retry_ms
    FROM checked f JOIN orch.tasks t ON t.id = f.id),
  done AS (
    UPDATE orch.tasks t
    SET status = CASE WHEN f.outcome <> 'RETRY' THEN f.outcome
                      WHEN r.status = 'IN_PROGRESS' THEN 'PENDING'
                      ELSE 'STOPPED' END::orch.task_status,
        ready_at = CASE WHEN f.outcome = 'RETRY' THEN clock_timestamp() + f.retry_ms * interval '1 millisecond' END,
        completed_at = clock_timestamp(),
        exit_code = f.exit_code, output = f.output, output_truncated = coalesce(f.truncated, false),
        output_data = CASE WHEN f.output_problem IS NULL THEN f.output_value END,
        error_message = coalesce(f.output_problem, f.error)
    FROM f, orch.runs r
    WHERE t.id = f.id AND r.id = t.run_id AND t.status IN ('DISPATCHED', 'RUNNING')
    RETURNING t.*),
  logged AS (
    INSERT INTO orch.events (actor, owner, process_id, run_id, kind, detail)
    SELECT 'pg_orch scheduler', d.owner, d.process_id, d.run_id,
           CASE d.status WHEN 'PENDING' THEN 'task_retrying' WHEN 'COMPLETED' THEN 'task_completed'
                         WHEN 'FAILED' THEN 'task_failed' ELSE 'task_stopped' END,
           jsonb_build_object('task', d.name, 'attempt', d.attempt, 'exit_code', d.exit_code, 'error', d.error_message)
    FROM done d)
  SELECT array_agg(DISTINCT done.run_id), bool_or(done.status IN ('FAILED', 'STOPPED'))
    INTO touched, any_failed FROM done;

  IF touched IS NULL THEN
    RETURN '{}';
  END IF;
  RETURN orch._advance_runs(touched, any_failed, wait);
END
$$;

-- Moves runs on after task changes: skips what depends on a failure (only
-- looked for when a task failed or stopped), makes tasks whose dependencies
-- completed ready, and finishes runs with nothing left to do, together with
-- their process.
--
-- Each run is moved on holding its process's row, so that the completions
-- of one run's tasks (sql tasks record their own, in parallel) are
-- serialised and the last always sees the others and ends the run. Every
-- API function that changes a run or its tasks locks the process first, so
-- holding it, nothing of the run is another's. With wait, the lock is waited
-- for (an sql task's worker, an API call); without, runs whose process row
-- someone holds (a user's open transaction that paused or stopped it) are
-- left alone and returned, for the scheduler to try again later: it never
-- waits on a lock a user can hold.
CREATE FUNCTION orch._advance_runs(run_ids bigint[], look_for_skips boolean, wait boolean DEFAULT true)
RETURNS bigint[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  requested bigint[] := run_ids;
  skipped integer;
  queued boolean;
  waiting record;
  message text;
BEGIN
  IF wait THEN
    PERFORM 1 FROM orch.processes p
    WHERE p.id IN (SELECT r.process_id FROM orch.runs r WHERE r.id = ANY (requested)) ORDER BY p.id FOR UPDATE;
  ELSE
    run_ids := ARRAY(SELECT r.id FROM orch.runs r JOIN orch.processes p ON p.id = r.process_id
                     WHERE r.id = ANY (requested) FOR UPDATE OF p SKIP LOCKED);
  END IF;

  -- Each statement starts from the runs asked for (unnest, then the
  -- primary key): a generic plan of "r.id = ANY ($1)" scans every run.

  -- Commands that use other tasks' outputs get them once those completed; a
  -- command that cannot (its PATH is not in the output) fails, saying why.
  FOR waiting IN
    SELECT t.id, t.name, t.command, t.owner, t.process_id, t.run_id, t.attempt
    FROM unnest(run_ids) AS i(id) JOIN orch.runs r ON r.id = i.id JOIN orch.tasks t ON t.run_id = r.id
    WHERE r.status = 'IN_PROGRESS' AND r.total_tasks > 1 AND t.uses_outputs AND t.status = 'PENDING'
      AND t.ready_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM orch.tasks d WHERE d.run_id = t.run_id AND d.task_index = ANY (t.depends_on)
                        AND d.status <> 'COMPLETED')
  LOOP
    BEGIN
      UPDATE orch.tasks t
      SET command = orch._substitute_outputs(waiting.command, orch._ancestor_outputs(waiting.id), waiting.name),
          uses_outputs = false, ready_at = clock_timestamp()
      WHERE t.id = waiting.id;
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS message = MESSAGE_TEXT;
      UPDATE orch.tasks t SET status = 'FAILED', completed_at = clock_timestamp(), error_message = message
      WHERE t.id = waiting.id;
      PERFORM orch._log('task_failed', waiting.owner, waiting.process_id, waiting.run_id,
                        jsonb_build_object('task', waiting.name, 'attempt', waiting.attempt, 'error', message));
      look_for_skips := true;
    END;
  END LOOP;

  WHILE look_for_skips LOOP
    WITH s AS (
      UPDATE orch.tasks t SET status = 'SKIPPED', completed_at = clock_timestamp(),
             error_message = 'a task it depends on did not complete'
      FROM unnest(run_ids) AS i(id) JOIN orch.runs r ON r.id = i.id
      WHERE r.id = t.run_id AND r.status = 'IN_PROGRESS'
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

  -- (A run of one task has no task waiting for another.)
  UPDATE orch.tasks t SET ready_at = clock_timestamp()
  FROM unnest(run_ids) AS i(id) JOIN orch.runs r ON r.id = i.id
  WHERE r.id = t.run_id AND r.status = 'IN_PROGRESS' AND r.total_tasks > 1
    AND t.status = 'PENDING' AND t.ready_at IS NULL AND NOT t.uses_outputs
    AND NOT EXISTS (SELECT 1 FROM orch.tasks d WHERE d.run_id = t.run_id AND d.task_index = ANY (t.depends_on)
                      AND d.status <> 'COMPLETED');

  WITH finished AS (
    SELECT r.id,
           bool_and(t.status = 'COMPLETED') AS all_completed,
           (array_agg(format('task "%s" failed: %s', t.name, t.error_message) ORDER BY t.completed_at, t.task_index)
              FILTER (WHERE t.status = 'FAILED'))[1] AS first_error
    FROM unnest(run_ids) AS i(id) JOIN orch.runs r ON r.id = i.id JOIN orch.tasks t ON t.run_id = r.id
    WHERE r.status = 'IN_PROGRESS'
    GROUP BY r.id
    HAVING bool_and(t.status NOT IN ('PENDING', 'DISPATCHED', 'RUNNING'))),
  ended AS (
    UPDATE orch.runs r
    SET status = CASE WHEN f.all_completed THEN 'COMPLETED' ELSE 'FAILED' END::orch.status,
        completed_at = clock_timestamp(), error_message = f.first_error,
        -- the outputs of the tasks nothing depends on
        output_data = (SELECT jsonb_object_agg(t.name, t.output_data) FROM orch.tasks t
                       WHERE t.run_id = r.id AND t.output_data IS NOT NULL
                         AND NOT EXISTS (SELECT 1 FROM orch.tasks d
                                         WHERE d.run_id = t.run_id AND t.task_index = ANY (d.depends_on)))
    FROM finished f WHERE r.id = f.id
    RETURNING r.id, r.process_id, r.owner, r.status, r.error_message),
  logged AS (
    INSERT INTO orch.events (actor, owner, process_id, run_id, kind, detail)
    SELECT 'pg_orch scheduler', e.owner, e.process_id, e.id,
           CASE e.status WHEN 'COMPLETED' THEN 'run_completed' ELSE 'run_failed' END,
           jsonb_build_object('error', e.error_message)
    FROM ended e),
  moved AS (
    UPDATE orch.processes p SET status = e.status, updated_at = clock_timestamp()
    FROM ended e WHERE p.id = e.process_id AND p.current_run_id = e.id
    RETURNING p.run_queued)
  SELECT bool_or(m.run_queued) INTO queued FROM moved m;
  IF queued THEN  -- overlap 'queue': a tick waited for one of these runs
    PERFORM orch._start_queued_runs(run_ids);
  END IF;
  RETURN ARRAY(SELECT unnest(requested) EXCEPT SELECT unnest(run_ids));
END
$$;

-- What a sql task's runner needs: the statement, the run's input (its $1),
-- and the role and JWT claims of the process's creator, as which it runs.
CREATE FUNCTION orch._sql_task_context(task_id bigint)
RETURNS TABLE (sql text, input_data jsonb, role_name text, jwt_claims jsonb, timeout_ms bigint, outputs jsonb)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
  SELECT t.sql, r.input_data, p.created_by_role, c.claims, (extract(epoch FROM t.timeout) * 1000)::bigint,
         orch._ancestor_outputs(t.id)
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
  PERFORM orch._tasks_finished(jsonb_build_array(finished), wait => true);
END
$$;

-- Tasks a previous scheduler left DISPATCHED or RUNNING (it crashed or the
-- server stopped): the caller kills their process groups and finishes them.
CREATE FUNCTION orch._orphaned_tasks()
RETURNS TABLE (id bigint, pid integer)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
  SELECT t.id, t.pid
  FROM orch.tasks t WHERE t.status IN ('DISPATCHED', 'RUNNING') ORDER BY t.id
$$;

REVOKE ALL ON FUNCTION orch._fire_due_schedules(integer), orch._start_queued_runs(bigint[]),
  orch._start_scheduled_run(orch.processes, boolean, text, jsonb), orch._claim_tasks(integer, integer),
  orch._tasks_unclaimed(bigint[]), orch._ms_until_next_ready(),
  orch._tasks_started(jsonb), orch._stopped_tasks(bigint[]), orch._tasks_finished(jsonb, boolean),
  orch._advance_runs(bigint[], boolean, boolean), orch._orphaned_tasks(), orch._sql_task_context(bigint),
  orch._ancestor_outputs(bigint), orch._output_jsonb(text) FROM PUBLIC;
