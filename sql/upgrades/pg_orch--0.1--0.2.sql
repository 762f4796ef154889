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
CREATE FUNCTION orch._count_task_ends(ends jsonb) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$
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
      durations = orch._duration_histogram_merge(s.durations, excluded.durations)
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
    FROM done d),
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
        -- (a stopped run's command may still be dying: it counts against the limits until it has)
        AND NOT EXISTS (SELECT 1 FROM orch.tasks t WHERE t.run_id = r.id AND t.status IN ('DISPATCHED', 'RUNNING'))
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
