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
