-- Defining, redefining and dropping process types; every invalid spec is
-- rejected with a message naming the bad field, and nothing is written.
\set VERBOSITY terse

SELECT name, runs_os_commands, jsonb_array_length(tasks) AS tasks
FROM orch.define_process_type('two-steps', '[
  {"name": "a", "command": ["/bin/echo", "a"]},
  {"name": "b", "shell": "echo b", "timeout": "10 seconds", "max_retries": 2, "retry_delay": "1s"}
]', 'two steps');

-- Redefining replaces the definition.
SELECT name, description, jsonb_array_length(tasks) AS tasks
FROM orch.define_process_type('two-steps', '[{"name": "only", "command": ["/bin/true"]}]', 'now one step');

-- Invalid specs.
SELECT orch.define_process_type('bad', '{"name": "x"}');
SELECT orch.define_process_type('bad', '[]');
SELECT orch.define_process_type('bad', '[{"name": "x", "comand": ["/bin/true"]}]');
SELECT orch.define_process_type('bad', '[{"name": "x", "command": []}]');
SELECT orch.define_process_type('bad', '[{"name": "x", "command": ["/bin/true"], "shell": "true"}]');
SELECT orch.define_process_type('bad', '[{"name": "x", "command": ["/bin/true"], "timeout": "soon"}]');
SELECT orch.define_process_type('bad', '[{"name": "x", "command": ["/bin/true"], "max_retries": -1}]');
SELECT orch.define_process_type('bad', '[{"name": "x", "command": ["/bin/true"], "working_directory": "relative"}]');
SELECT orch.define_process_type('bad', '[{"name": "x", "command": ["/bin/true"], "env": {"ORCH_X": "1"}}]');
SELECT orch.define_process_type('bad', '[{"name": "x", "command": ["/bin/true"]}, {"name": "x", "command": ["/bin/true"]}]');
SELECT orch.define_process_type('bad', '[{"name": "a", "command": ["/bin/true"], "depends_on": ["b"]},
                                         {"name": "b", "command": ["/bin/true"], "depends_on": ["a"]}]');
SELECT orch.define_process_type('bad', '[{"name": "a", "command": ["/bin/true"], "depends_on": ["nope"]}]');
SELECT orch.define_process_type('bad name!', '[{"name": "a", "command": ["/bin/true"]}]');
-- Output placeholders: a task that exists, that it depends on, a PATH without empty elements.
SELECT orch.define_process_type('bad', '[{"name": "a", "command": ["/bin/true"]},
  {"name": "b", "command": ["echo", "{{tasks.nope.output}}"]}]');
SELECT orch.define_process_type('bad', '[{"name": "a", "command": ["/bin/true"], "depends_on": []},
  {"name": "b", "command": ["echo", "{{tasks.a.output}}"], "depends_on": []}]');
SELECT orch.define_process_type('bad', '[{"name": "a", "command": ["/bin/true"]},
  {"name": "b", "command": ["echo", "{{tasks.a.output..x}}"]}]');
SELECT orch.define_process_type('bad', '[{"name": "a", "command": ["/bin/true"]},
  {"name": "b", "command": ["echo", "{{tasks.b.output}}"]}]');
-- Fan-out: an array or one placeholder naming one, a count in range, item placeholders only there.
SELECT orch.define_process_type('bad', '[{"name": "a", "for_each": "files", "command": ["echo"]}]');
SELECT orch.define_process_type('bad', '[{"name": "a", "for_each": "{{a}}{{b}}", "command": ["echo"]}]');
SELECT orch.define_process_type('bad', '[{"name": "a", "for_each": {"x": 1}, "command": ["echo"]}]');
SELECT orch.define_process_type('bad', '[{"name": "a", "count": -1, "command": ["echo"]}]');
SELECT orch.define_process_type('bad', '[{"name": "a", "count": 1.5, "command": ["echo"]}]');
SELECT orch.define_process_type('bad', '[{"name": "a", "count": 2, "for_each": [1], "command": ["echo"]}]');
SELECT orch.define_process_type('bad', '[{"name": "a", "max_parallel": 2, "command": ["echo"]}]');
SELECT orch.define_process_type('bad', '[{"name": "a", "count": 2, "max_parallel": 0, "command": ["echo"]}]');
SELECT orch.define_process_type('bad', '[{"name": "a", "command": ["echo", "{{item}}"]}]');
SELECT orch.define_process_type('bad', '[{"name": "a", "count": 2, "sql": "SELECT 1"}]');
SELECT orch.define_process_type('bad', '[{"name": "a", "command": ["true"], "depends_on": []},
  {"name": "b", "for_each": "{{tasks.a.output}}", "command": ["echo"], "depends_on": []}]');
SELECT count(*) AS bad_types FROM orch.process_types WHERE name LIKE 'bad%';
-- ... while input placeholders and literal text stay as they were.
SELECT (orch.define_process_type('uses-outputs', '[{"name": "a", "command": ["/bin/true"]},
  {"name": "b", "command": ["echo", "{{day}}-{{tasks.a.output.x.0}}", "{{ tasks.a.output }}", "{tasks.a.output}"]}]')).version;
SELECT task_index, has_placeholders, uses_outputs FROM orch.process_type_tasks WHERE type = 'uses-outputs' ORDER BY 1;
SELECT orch.drop_process_type('uses-outputs');

-- Only privileged roles may define types that run OS commands.
CREATE ROLE regress_orch_plain;
GRANT orch_user TO regress_orch_plain;
SET ROLE regress_orch_plain;
SELECT orch.define_process_type('sneaky', '[{"name": "x", "command": ["/usr/bin/id"]}]');
RESET ROLE;
DROP OWNED BY regress_orch_plain;
DROP ROLE regress_orch_plain;

-- Dropping: refused while a process uses the type.
SELECT id FROM orch.create_process('uses-two-steps', 'two-steps');
SELECT orch.drop_process_type('two-steps');
SELECT orch.delete_process('uses-two-steps');
SELECT orch.drop_process_type('two-steps');
SELECT orch.drop_process_type('two-steps');
SELECT count(*) FROM orch.process_types;
