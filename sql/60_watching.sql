-- pg_orch: watching
-- security_invoker: the views show what the querying user's row level
-- security lets them see, not what the view's owner could.
CREATE VIEW orch.process_overview WITH (security_invoker = true) AS
SELECT p.id, p.type, p.status, p.owner, p.schedule, p.timezone, p.is_active, p.next_run_at, p.last_run_at,
       p.current_run_id AS run_id, r.triggered_by,
       -- 1-based position of the latest task started (derived, not stored)
       (SELECT max(t.task_index) + 1 FROM orch.tasks t WHERE t.run_id = r.id AND t.started_at IS NOT NULL)
         AS current_task_index,
       coalesce(r.total_tasks, pt.total_tasks) AS total_tasks,
       progress.done AS tasks_done, progress.total AS tasks_total,
       r.started_at, r.completed_at, r.error_message, p.created_at, p.updated_at
FROM orch.processes p
LEFT JOIN orch.runs r ON r.id = p.current_run_id
-- Progress counting a fan-out's instances, each as a task (its row counts
-- as one task only until it has instances).
LEFT JOIN LATERAL (
  SELECT count(*) FILTER (WHERE t.status IN ('COMPLETED', 'FAILED', 'STOPPED', 'SKIPPED')) AS done, count(*) AS total
  FROM orch.tasks t
  WHERE t.run_id = r.id
    AND NOT (t.fan_out IS NOT NULL AND EXISTS (SELECT 1 FROM orch.tasks i WHERE i.run_id = t.run_id
                                                 AND i.task_index = t.task_index AND i.item_index IS NOT NULL))
) progress ON r.id IS NOT NULL
LEFT JOIN LATERAL (SELECT jsonb_array_length(v.tasks) AS total_tasks FROM orch.process_type_versions v
                   WHERE v.type = p.type AND v.version = p.type_version) pt ON true;

-- Per process type: how many processes are in each status, and their runs.
CREATE VIEW orch.stats WITH (security_invoker = true) AS
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
               current_task_index integer, total_tasks integer, tasks_done bigint, tasks_total bigint,
               started_at timestamptz, completed_at timestamptz, error_message text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN QUERY
    SELECT o.id::text, o.type, o.status, o.run_id, o.triggered_by::text, o.current_task_index, o.total_tasks,
           o.tasks_done, o.tasks_total, o.started_at, o.completed_at, o.error_message
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
                                AND t.status IN ('DISPATCHED', 'RUNNING') AND t.fan_out IS NULL)
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
