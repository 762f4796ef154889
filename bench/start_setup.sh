# Shared by start_cost and start_instructions: COUNT one-task command
# processes, and the plain PL/pgSQL baseline a start is measured against
# (lock the process row; insert a run, a task and an event; update the
# process), on tables of its own. Needs psql() and COUNT.

start_setup() {
  psql -v count="$COUNT" <<'SQL'
CREATE EXTENSION pg_orch;
SELECT FROM orch.define_process_type('one', '[{"name": "true", "command": ["/bin/true"]}]') \g /dev/null
SELECT count(orch.create_process('p' || i, 'one')) FROM generate_series(1, :count) i \g /dev/null

CREATE TABLE bench_processes (id text PRIMARY KEY, status text NOT NULL, current_run_id bigint,
                              updated_at timestamptz);
CREATE TABLE bench_runs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, process_id text NOT NULL,
                         status text NOT NULL, triggered_by text NOT NULL, started_at timestamptz NOT NULL);
CREATE TABLE bench_tasks (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, run_id bigint NOT NULL,
                          name text NOT NULL, status text NOT NULL, command text[], ready_at timestamptz);
CREATE TABLE bench_events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, process_id text, run_id bigint,
                           kind text NOT NULL, detail jsonb);
INSERT INTO bench_processes SELECT 'p' || i, 'PENDING' FROM generate_series(1, :count) i;
CREATE FUNCTION bench_start(process text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  proc bench_processes;
  run bigint;
BEGIN
  SELECT * INTO proc FROM bench_processes p WHERE p.id = process FOR UPDATE;
  INSERT INTO bench_runs (process_id, status, triggered_by, started_at)
  VALUES (process, 'IN_PROGRESS', 'MANUAL', clock_timestamp()) RETURNING id INTO run;
  INSERT INTO bench_tasks (run_id, name, status, command, ready_at)
  VALUES (run, 'true', 'PENDING', '{/bin/true}', clock_timestamp());
  INSERT INTO bench_events (process_id, run_id, kind, detail)
  VALUES (process, run, 'started', jsonb_build_object('triggered_by', 'MANUAL'));
  UPDATE bench_processes p SET status = 'IN_PROGRESS', current_run_id = run, updated_at = clock_timestamp()
  WHERE p.id = process;
  RETURN run;
END $$;
SQL
}

# Back to idle, outside the measurement: no run, every process startable.
start_reset() {
  psql <<'SQL'
DELETE FROM bench_runs; DELETE FROM bench_tasks; DELETE FROM bench_events;
UPDATE bench_processes SET status = 'PENDING', current_run_id = NULL;
UPDATE orch.processes SET status = 'COMPLETED' WHERE status = 'IN_PROGRESS';
DELETE FROM orch.runs; DELETE FROM orch.tasks;
VACUUM ANALYZE;
SQL
}
