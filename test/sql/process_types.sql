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
SELECT count(*) AS bad_types FROM orch.process_types WHERE name LIKE 'bad%';

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
