-- The scheduler runs tasks: in order, with placeholders and input
-- environment, retries, failures, timeouts, stop, and the lifecycle.
\set VERBOSITY terse

-- Polls (with a deadline) until a task of the process's current run has the status.
CREATE FUNCTION wait_for_task(process text, task text, wanted orch.task_status) RETURNS orch.task_status
LANGUAGE plpgsql AS $$
DECLARE
  deadline timestamptz := clock_timestamp() + interval '30 seconds';
  current orch.task_status;
BEGIN
  LOOP
    SELECT t.status INTO current FROM orch.tasks t JOIN orch.processes p ON p.current_run_id = t.run_id
    WHERE p.id = process AND t.name = task;
    IF current = wanted OR clock_timestamp() > deadline THEN
      RETURN current;
    END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
END $$;

-- Three tasks in order; the argument and the environment carry the input.
SELECT name FROM orch.define_process_type('pipeline', $$[
  {"name": "first",  "command": ["/bin/echo", "hello {{who}}"]},
  {"name": "second", "command": ["/bin/sh", "-c", "echo \"argc=$# arg=$1\"", "sh", "{{who}}"]},
  {"name": "third",  "shell": "echo \"env=$ORCH_INPUT_WHO task=$ORCH_TASK_NAME attempt=$ORCH_ATTEMPT\"; echo to-stderr >&2"}
]$$);
SELECT id FROM orch.create_process('hello', 'pipeline', '{"who": "x; touch /tmp/pg_orch_pwned $(id)"}');
SELECT orch.start('hello') > 0 AS started;
SELECT orch.wait('hello', '30 seconds');
SELECT status, current_task_index, total_tasks, error_message, completed_at >= started_at AS timed
FROM orch.process_state('hello');
SELECT task_index, name, status, attempt, exit_code, output, pid > 0 AS had_pid,
       completed_at >= started_at AS timed
FROM orch.tasks WHERE process_id = 'hello' ORDER BY task_index;
SELECT status, triggered_by, total_tasks FROM orch.history('hello');

-- Starting again makes a second run; history lists newest first.
SELECT orch.start('hello', 'API') > 0 AS started;
SELECT orch.wait('hello', '30 seconds');
SELECT status, triggered_by FROM orch.history('hello');

-- A failing task is retried max_retries times, then fails the run; later tasks are skipped.
SELECT name FROM orch.define_process_type('flaky', $$[
  {"name": "fails", "shell": "echo attempt $ORCH_ATTEMPT; exit 3", "max_retries": 2, "retry_delay": "50 ms"},
  {"name": "never", "command": ["/bin/echo", "unreachable"]}
]$$);
SELECT id FROM orch.create_process('flaky-1', 'flaky');
SELECT orch.start('flaky-1') > 0 AS started;
SELECT orch.wait('flaky-1', '30 seconds');
SELECT status, error_message FROM orch.process_state('flaky-1');
SELECT name, status, attempt, exit_code, output, error_message
FROM orch.tasks WHERE process_id = 'flaky-1' ORDER BY task_index;

-- A missing working directory fails the task with that message; the worker carries on.
SELECT name FROM orch.define_process_type('nowhere', $$[
  {"name": "lost", "command": ["/bin/pwd"], "working_directory": "/nonexistent/dir"}
]$$);
SELECT id FROM orch.create_process('nowhere-1', 'nowhere');
SELECT orch.start('nowhere-1') > 0 AS started;
SELECT orch.wait('nowhere-1', '30 seconds');
SELECT name, status, exit_code, error_message FROM orch.tasks WHERE process_id = 'nowhere-1';
-- ... and a program that does not exist.
SELECT name FROM orch.define_process_type('noprogram', '[{"name": "ghost", "command": ["/no/such/program"]}]');
SELECT id FROM orch.create_process('noprogram-1', 'noprogram');
SELECT orch.start('noprogram-1') > 0 AS started;
SELECT orch.wait('noprogram-1', '30 seconds');
SELECT name, status, error_message FROM orch.tasks WHERE process_id = 'noprogram-1';

-- A task past its timeout is killed and recorded as a timeout.
SELECT name FROM orch.define_process_type('slow', $$[
  {"name": "sleeps", "command": ["/bin/sleep", "60"], "timeout": "300 ms"}
]$$);
SELECT id FROM orch.create_process('slow-1', 'slow');
SELECT orch.start('slow-1') > 0 AS started;
SELECT orch.wait('slow-1', '30 seconds');
SELECT name, status, exit_code, error_message,
       completed_at - started_at BETWEEN interval '250 ms' AND interval '10 seconds' AS killed_on_time
FROM orch.tasks WHERE process_id = 'slow-1';

-- While a run is in progress: no second start, no delete; stop kills it.
SELECT name FROM orch.define_process_type('long', $$[
  {"name": "waits", "command": ["/bin/sleep", "60"]},
  {"name": "after", "command": ["/bin/echo", "never"]}
]$$);
SELECT id FROM orch.create_process('long-1', 'long');
SELECT orch.start('long-1') > 0 AS started;
SELECT wait_for_task('long-1', 'waits', 'RUNNING');
SELECT status, current_task_index, total_tasks FROM orch.process_state('long-1');
SELECT orch.start('long-1');
SELECT orch.delete_process('long-1');
SELECT orch.stop('long-1') > 0 AS stopped;
SELECT orch.wait('long-1', '30 seconds');
SELECT status, error_message LIKE 'stopped by %' AS says_who FROM orch.process_state('long-1');
SELECT name, status, error_message FROM orch.tasks WHERE process_id = 'long-1' ORDER BY task_index;
SELECT orch.stop('long-1');

-- Independent tasks (depends_on) run in parallel; a join waits for both.
SELECT name FROM orch.define_process_type('diamond', $$[
  {"name": "left",  "command": ["/bin/sleep", "0.5"]},
  {"name": "right", "command": ["/bin/sleep", "0.5"]},
  {"name": "join",  "command": ["/bin/echo", "joined"], "depends_on": ["left", "right"]}
]$$);
SELECT id FROM orch.create_process('diamond-1', 'diamond');
SELECT orch.start('diamond-1') > 0 AS started;
SELECT orch.wait('diamond-1', '30 seconds');
SELECT (SELECT started_at FROM orch.tasks WHERE process_id = 'diamond-1' AND name = 'right')
     < (SELECT completed_at FROM orch.tasks WHERE process_id = 'diamond-1' AND name = 'left') AS overlapped,
       (SELECT started_at FROM orch.tasks WHERE process_id = 'diamond-1' AND name = 'join')
    >= (SELECT max(completed_at) FROM orch.tasks WHERE process_id = 'diamond-1' AND name <> 'join') AS joined_after;

-- Redefining a type does not change a run already made.
SELECT orch.start('hello') > 0 AS started;
SELECT name FROM orch.define_process_type('pipeline', '[{"name": "replaced", "command": ["/bin/true"]}]');
SELECT orch.wait('hello', '30 seconds');
SELECT r.total_tasks, array_agg(t.name ORDER BY t.task_index) AS names
FROM orch.runs r JOIN orch.tasks t ON t.run_id = r.id
WHERE r.id = (SELECT current_run_id FROM orch.processes WHERE id = 'hello') GROUP BY r.total_tasks;

SELECT type, processes, pending, in_progress, completed, failed, stopped, runs
FROM orch.stats ORDER BY type;

-- Statuses move only along the lifecycle.
UPDATE orch.tasks SET status = 'RUNNING' WHERE process_id = 'hello' AND status = 'COMPLETED';
UPDATE orch.runs SET status = 'PENDING' WHERE process_id = 'hello';
UPDATE orch.processes SET status = 'PENDING' WHERE id = 'hello';

-- The hostile input stayed one argument: no file was created.
SELECT count(*) AS pwned FROM pg_ls_dir('/tmp') AS f WHERE f = 'pg_orch_pwned';

-- The delay before retry n: retry_delay * retry_backoff^(n - 1), an hour at
-- most (orch._tasks_finished decides retries with it).
SELECT orch._retry_delay_ms(1000, 2, 1) AS first, orch._retry_delay_ms(1000, 2, 3) AS third,
       orch._retry_delay_ms(1000, 2, 50) AS capped, orch._retry_delay_ms(7200000, 2, 3) AS long_as_written;

-- Deleting a process takes its runs and tasks along (they have no foreign
-- keys: orch.delete_process removes them).
SELECT orch.delete_process(id) FROM orch.processes ORDER BY id;
SELECT count(*) AS runs_left FROM orch.runs;
SELECT count(*) AS tasks_left FROM orch.tasks;
DROP FUNCTION wait_for_task(text, text, orch.task_status);
