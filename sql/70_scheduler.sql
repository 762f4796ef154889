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
        AND d.item_index IS NULL
        CROSS JOIN LATERAL unnest(d.depends_on) AS i)
    -- (a fan-out's output is its parent row's: the instances' in item order)
    SELECT coalesce(jsonb_object_agg(d.name, d.output_data), '{}')
    FROM ancestors a JOIN orch.tasks d ON d.run_id = run AND d.task_index = a.task_index AND d.item_index IS NULL);
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
CREATE FUNCTION orch._tasks_started(started jsonb) RETURNS void
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
-- (src/core/task_records.hpp), with the attempt's start ("pid",
-- "execution_name", "started_at", as for _tasks_started) when it was not
-- recorded yet: ending is exited, signaled, timed_out,
-- stopped or spawn_failed, or an http request's succeeded, failed or
-- rejected. The task becomes COMPLETED, FAILED (no attempts
-- left), STOPPED, or PENDING again after its retry delay; a stopped run
-- retries nothing. Returns the runs that could not be moved on now (see
-- _advance_runs).
CREATE FUNCTION orch._tasks_finished(finished jsonb, wait boolean DEFAULT false)
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
CREATE FUNCTION orch._prepare_ready_tasks(run_ids bigint[]) RETURNS boolean
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

  IF EXISTS (SELECT 1 FROM unnest(run_ids) AS i(id) JOIN orch.runs r ON r.id = i.id
             WHERE r.status = 'IN_PROGRESS' AND (r.total_tasks > 1 OR r.has_fan_out)) THEN
    look_for_skips := orch._prepare_ready_tasks(run_ids) OR look_for_skips;
  END IF;

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

  -- (A run of one task has no task waiting for another, unless it fans out:
  -- after orch.retry its instances wait here.)
  UPDATE orch.tasks t SET ready_at = clock_timestamp()
  FROM unnest(run_ids) AS i(id) JOIN orch.runs r ON r.id = i.id
  WHERE r.id = t.run_id AND r.status = 'IN_PROGRESS' AND (r.total_tasks > 1 OR r.has_fan_out)
    AND t.status = 'PENDING' AND t.ready_at IS NULL AND NOT t.uses_outputs AND t.fan_out IS NULL
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
                       WHERE t.run_id = r.id AND t.output_data IS NOT NULL AND t.item_index IS NULL
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

REVOKE ALL ON FUNCTION orch._fire_due_schedules(integer), orch._start_queued_runs(bigint[]),
  orch._start_scheduled_run(orch.processes, boolean, text, jsonb), orch._claim_tasks(integer, integer),
  orch._tasks_unclaimed(bigint[]), orch._ms_until_next_ready(), orch._record_ids(jsonb),
  orch._tasks_started(jsonb), orch._stopped_tasks(bigint[]), orch._tasks_finished(jsonb, boolean),
  orch._advance_runs(bigint[], boolean, boolean), orch._orphaned_tasks(), orch._sql_task_context(bigint),
  orch._ancestor_outputs(bigint), orch._output_jsonb(text), orch._prepare_ready_tasks(bigint[]) FROM PUBLIC;
