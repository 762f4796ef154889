-- Creating processes, input data, and the errors of the API functions.
\set VERBOSITY terse

SELECT name FROM orch.define_process_type('echo-input', '[
  {"name": "say", "command": ["/bin/echo", "file={{input_file}}", "user={{user_id}}"]}
]');

-- The seed's key:value format.
SELECT orch.input_data('input_file:/data/input.json;output_dir:/data/output;user_id:user123');
SELECT orch.input_data('url:http://example.com:80/x;empty:');
SELECT orch.input_data('');
SELECT orch.input_data('a:1;broken;c:3');
SELECT orch.input_data('a:1;a:2');
SELECT orch.input_data(':novalue');

SELECT id, type, input_data, schedule, status, owner = current_user AS owned
FROM orch.create_process('p1', 'echo-input', orch.input_data('input_file:/in.json;user_id:u1'));

-- Bad input: clear errors, nothing written.
SELECT orch.create_process('p1', 'echo-input');
SELECT orch.create_process('p2', 'no-such-type');
SELECT orch.create_process('p2', 'echo-input', '[1, 2]');
SELECT orch.create_process('p2', 'echo-input', 'not json');
SELECT orch.create_process('', 'echo-input');
SELECT orch.create_process('p2', 'echo-input', '{}', 'not a schedule');
SELECT count(*) AS processes FROM orch.processes;

SELECT orch.start('nope');
SELECT orch.stop('nope');
SELECT orch.stop('p1');
SELECT orch.delete_process('nope');
SELECT orch.process_state('nope');
SELECT orch.history('nope');
SELECT orch.wait('nope', '1 second');
SELECT orch.start('p1', 'BY_MAGIC');

-- A placeholder without a value fails the start and leaves no run behind.
SELECT id FROM orch.create_process('p3', 'echo-input', '{"input_file": "/x"}');
SELECT orch.start('p3');
SELECT count(*) AS runs, (SELECT status FROM orch.processes WHERE id = 'p3') AS status FROM orch.runs;

-- A process that never ran.
SELECT status, run_id, current_task_index, total_tasks FROM orch.process_state('p1');
SELECT count(*) FROM orch.history('p1');
SELECT orch.wait('p1', '1 second');

-- A process runs the version of its type it was made with until its owner
-- upgrades it: its runs have that version's tasks, and fan out only if it
-- does.
SELECT name FROM orch.define_process_type('grows', '[{"name": "a", "command": ["/bin/true"]}]');
SELECT id, type_version FROM orch.create_process('p4', 'grows');
SELECT name, version FROM orch.define_process_type('grows', '[{"name": "a", "command": ["/bin/true"]},
  {"name": "b", "command": ["/bin/echo", "{{item}}"], "for_each": [1, 2], "depends_on": ["a"]}]');
SELECT orch.start('p4') > 0 AS started;
SELECT orch.wait('p4', '30 seconds');
SELECT id, type_version FROM orch.upgrade_process('p4');
SELECT orch.start('p4') > 0 AS started;
SELECT orch.wait('p4', '30 seconds');
SELECT r.total_tasks, r.has_fan_out, count(*) FILTER (WHERE t.item_index IS NULL) AS tasks,
       count(t.item_index) AS instances
FROM orch.runs r JOIN orch.tasks t ON t.run_id = r.id WHERE r.process_id = 'p4' GROUP BY r.id ORDER BY r.id;

SELECT orch.delete_process('p1');
SELECT orch.delete_process('p3');
SELECT orch.delete_process('p4');
SELECT orch.drop_process_type('grows');
SELECT count(*) FROM orch.processes;
SELECT orch.drop_process_type('echo-input');
