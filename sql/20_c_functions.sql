-- pg_orch: c functions
CREATE FUNCTION orch.input_data(text) RETURNS jsonb
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'orch_input_data';
COMMENT ON FUNCTION orch.input_data(text) IS
  'turns the key:value;key:value input format into a jsonb object';

-- Validates a task array; returns it normalised (intervals in ms, dependencies as indexes).
CREATE FUNCTION orch._parse_process_type(jsonb) RETURNS jsonb
LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'orch_parse_process_type';

-- A command's arguments with {{key}} placeholders replaced by input values,
-- each inside its one argument; raises for a placeholder without a value.
-- For kind http, the values are encoded for where they go (percent-encoded
-- in the url, escaped in a JSON body: src/core/http_request.hpp); so too
-- with the two functions below.
CREATE FUNCTION orch._substitute_placeholders(command text[], input jsonb, task text, fan_out boolean DEFAULT false,
                                              kind text DEFAULT 'command')
RETURNS text[] LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'orch_substitute_placeholders';

-- The host an http task's request (its command array) calls, lower case.
CREATE FUNCTION orch._http_host(command text[]) RETURNS text
LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'orch_http_host';

-- A fan-out's items (a JSON array) when it becomes ready, and an instance's
-- command with {{item}}, {{item.PATH}} and {{item_index}} filled in
-- (src/core/fan_out.hpp).
CREATE FUNCTION orch._fan_out_items(fan_out jsonb, input jsonb, outputs jsonb, task text) RETURNS jsonb
LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'orch_fan_out_items';
CREATE FUNCTION orch._substitute_item(command text[], item jsonb, item_index integer, task text,
                                      kind text DEFAULT 'command') RETURNS text[]
LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'orch_substitute_item';

-- Milliseconds before the next attempt of a task that failed attempt
-- `attempt`: retry_delay_ms * retry_backoff^(attempt - 1), growing to an
-- hour at most (src/core/retry_backoff.hpp).
CREATE FUNCTION orch._retry_delay_ms(retry_delay_ms bigint, retry_backoff float8, attempt integer) RETURNS bigint
LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'orch_retry_delay_ms';

-- A command's arguments with {{tasks.NAME.output[.PATH]}} placeholders
-- replaced by its ancestors' outputs (outputs: {"NAME": output}), each inside
-- its one argument; raises for a PATH that is not there.
CREATE FUNCTION orch._substitute_outputs(command text[], outputs jsonb, task text, kind text DEFAULT 'command')
RETURNS text[]
LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'orch_substitute_outputs';

-- Raises unless the input can be passed as ORCH_INPUT_<KEY> variables (two
-- keys naming one variable, a NUL byte).
CREATE FUNCTION orch._check_input_environment(input jsonb) RETURNS void
LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'orch_check_input_environment';

-- The next `count` times a cron schedule fires strictly after `after`, in a time zone.
CREATE FUNCTION orch._next_run_times(schedule text, timezone text, after timestamptz, count integer)
RETURNS timestamptz[]
LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'orch_next_run_times';

-- Raises invalid_parameter_value unless the zone can be a schedule's: known,
-- and never more than 15 hours from UTC.
CREATE FUNCTION orch._check_time_zone(zone text) RETURNS void
LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'orch_check_time_zone';

-- Writes a started run's row and its tasks (from its type version's tasks,
-- placeholders substituted from input) the way COPY writes rows, without
-- an executor; returns how many tasks it wrote (src/pg/run_rows.cpp). Only
-- orch._start_run calls it: it checks no permission and no policy.
CREATE FUNCTION orch._write_run(run_id bigint, process_id text, owner text, type text, type_version integer,
                                input jsonb, triggered_by text, catch_up boolean, total_tasks integer,
                                has_fan_out boolean, started_at timestamptz)
RETURNS integer LANGUAGE c AS 'MODULE_PATHNAME', 'orch_write_run';

-- Wakes this database's scheduler when the calling transaction commits.
CREATE FUNCTION orch._wake_scheduler_at_commit(stop_requested boolean) RETURNS void
LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'orch_wake_scheduler_at_commit';

-- No WHEN clause: the function lets a row stay in its status itself (a
-- trigger's WHEN is read from the catalog again at every statement).
CREATE FUNCTION orch._enforce_lifecycle() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'orch_enforce_lifecycle';

CREATE TRIGGER processes_lifecycle BEFORE UPDATE OF status ON orch.processes
  FOR EACH ROW EXECUTE FUNCTION orch._enforce_lifecycle();
CREATE TRIGGER runs_lifecycle BEFORE UPDATE OF status ON orch.runs
  FOR EACH ROW EXECUTE FUNCTION orch._enforce_lifecycle();
CREATE TRIGGER tasks_lifecycle BEFORE UPDATE OF status ON orch.tasks
  FOR EACH ROW EXECUTE FUNCTION orch._enforce_lifecycle();
