-- Statistics that outlive history, and who may see them; pruning and
-- archives are an admin's (their timing is tested in test/t/011_history.pl).
\set VERBOSITY terse

CREATE ROLE regress_hist_alice LOGIN;
CREATE ROLE regress_hist_bob LOGIN;
GRANT orch_user TO regress_hist_alice, regress_hist_bob;

-- sql tasks (users may define them): "ok" completes, "maybe" fails in one
-- process and completes in the other, "bad" fails twice (one retry) each run.
SET ROLE regress_hist_alice;
SELECT name FROM orch.define_process_type('hist', $$[
  {"name": "ok", "sql": "SELECT 1"},
  {"name": "maybe", "sql": "SELECT CASE WHEN $1->>'fail' = 'yes' THEN 1/0 END"},
  {"name": "bad", "sql": "SELECT 1/0", "max_retries": 1, "retry_delay": "10 milliseconds", "depends_on": []}]$$);
SELECT id FROM orch.create_process('hist-1', 'hist', '{"fail": "yes"}');
SELECT id FROM orch.create_process('hist-2', 'hist', '{"fail": "no"}');
SELECT orch.start('hist-1') > 0 AS started, orch.start('hist-2') > 0 AS started;
SELECT orch.wait('hist-1', '30 seconds'), orch.wait('hist-2', '30 seconds');
SELECT type, task, runs, completed, failed, success_rate,
       avg_duration > '0' AND p50_duration > '0' AS timed,
       p50_duration <= p95_duration AND p95_duration <= max_duration AS ordered
FROM orch.task_stats WHERE type = 'hist' ORDER BY task;
SELECT day = (now() AT TIME ZONE 'UTC')::date AS today, task, runs FROM orch.task_stats_daily WHERE type = 'hist' ORDER BY task;
RESET ROLE;

-- Bob sees none of Alice's statistics, nor archives, nor events through a
-- partition (which has no policy of its own); he may not prune.
SET ROLE regress_hist_bob;
SELECT count(*) AS alices_stats FROM orch.task_stats WHERE type = 'hist';
SELECT count(*) AS alices_days FROM orch.task_days WHERE type = 'hist';
SELECT count(*) FROM orch.archives;
SELECT count(*) FROM orch.events_default;
SELECT * FROM orch.prune_history();
SELECT orch._write_archive('x.jsonl.gz', 'SELECT 1');
SELECT orch._prune_batch();
SELECT orch._detach_expired_months();
SELECT orch._remove_partial_archives('pg_orch_');
SELECT orch._count_task_ends('[{"type": "hist", "task": "ok", "owner": "regress_hist_bob", "status": "COMPLETED"}]');
RESET ROLE;

-- Nothing is old enough to prune with the default retention (30 days).
SELECT * FROM orch.prune_history();
SHOW orch.history_retention;
SHOW orch.events_retention;
SET orch.history_retention = '1s';  -- the scheduler's setting: the server's configuration only
SET orch.archive_directory = '/tmp';
-- An admin (not a superuser) may prune.
CREATE ROLE regress_hist_admin LOGIN IN ROLE orch_admin;
SET ROLE regress_hist_admin;
SELECT * FROM orch.prune_history();
RESET ROLE;

-- A statistics histogram is a bigint[] whose subscripts are buckets.
SELECT orch._duration_histogram_add(NULL, 5), orch._duration_histogram_merge('[3:4]={1,2}', '[4:6]={5,0,1}');
SELECT orch._duration_percentile('[0:0]={1}', 0.5), orch._duration_percentile('{}', 0.5);
SELECT orch._duration_histogram_merge('{{1,2},{3,4}}', NULL);

DROP OWNED BY regress_hist_admin;
DROP ROLE regress_hist_admin;

-- Leave nothing for the tests after this one (statistics stay: they outlive history).
SET ROLE regress_hist_alice;
SELECT orch.delete_process('hist-1'), orch.delete_process('hist-2'), orch.drop_process_type('hist');
RESET ROLE;
DROP ROLE regress_hist_alice, regress_hist_bob;
