-- pg_orch's SQL, in files by concept; the Makefile joins sql/*.sql in name
-- order into the versioned install script (sql/pg_orch--X.Y.sql).
\echo Use "CREATE EXTENSION pg_orch" to load this file. \quit

-- The schema belongs to the extension, so DROP EXTENSION takes it, and every
-- privilege granted on it, along.
CREATE SCHEMA orch;

-- Statuses (README, "Statuses"). Legal moves are checked by one trigger function that
-- asks src/core/lifecycle, so no code path can take an illegal step.
CREATE TYPE orch.status AS ENUM ('PENDING', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'STOPPED');
CREATE TYPE orch.task_status AS ENUM
  ('PENDING', 'DISPATCHED', 'RUNNING', 'COMPLETED', 'FAILED', 'STOPPED', 'SKIPPED');

-- Who is calling (src/pg/identity.hpp): the effective role when an API
-- function was called, captured in C before the function's SECURITY DEFINER
-- body runs; elsewhere (row level security, reads) current_user. Never
-- session_user.
CREATE FUNCTION orch._caller() RETURNS text
LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'orch_caller';

-- The request's JWT claims ('{}' if none) when they are honoured: the caller
-- is one of orch.jwt_roles and the session user one of
-- orch.jwt_authenticators (PostgREST's login role), or an sql task runs
-- with its creator's claims. Otherwise NULL.
CREATE FUNCTION orch._jwt_claims() RETURNS jsonb
LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'orch_jwt_claims';

-- Who owns what the caller makes: "jwt:" and the token's "sub" when claims
-- are honoured, else the caller's role name. The two never collide: a role
-- whose name starts with "jwt:" owns nothing, and a token without "sub" is
-- no one (it can read what is shared with its role, and write nothing).
--
-- C (src/pg/identity.cpp): every API call and row level security check asks.
CREATE FUNCTION orch.current_owner() RETURNS text
LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'orch_current_owner';
-- pg_orch: tables
-- The values checked in the tables written at every start and end of a run
-- are domains, not table CHECKs: a domain's check is read from the catalog
-- once per session, a table's again for every statement that writes a row
-- (a third of the cost of writing an event, a sixth of a start).
CREATE DOMAIN orch.process_id AS text CHECK (length(VALUE) BETWEEN 1 AND 255);
CREATE DOMAIN orch.json_object AS jsonb CHECK (jsonb_typeof(VALUE) = 'object');
CREATE DOMAIN orch.overlap_policy AS text CHECK (VALUE IN ('skip', 'queue', 'parallel'));
CREATE DOMAIN orch.misfire_policy AS text CHECK (VALUE IN ('run_once', 'skip'));
CREATE DOMAIN orch.task_kind AS text CHECK (VALUE IN ('command', 'shell', 'sql'));
CREATE DOMAIN orch.triggered_by AS text
  CHECK (VALUE IN ('MANUAL', 'API', 'SCHEDULED', 'RETRY') OR VALUE ~ '^event:.+');
-- Every kind of event pg_orch writes, so that a new one is added here on
-- purpose.
CREATE DOMAIN orch.event_kind AS text CHECK (VALUE IN (
  'type_defined', 'type_dropped', 'type_granted', 'type_revoked',
  'created', 'upgraded', 'deleted', 'shared', 'unshared', 'started', 'stopped', 'retried',
  'schedule_changed', 'paused', 'resumed', 'schedule_paused',
  'scheduled_run', 'catch_up_run', 'tick_missed', 'tick_skipped', 'tick_queued',
  'task_started', 'task_retrying', 'task_completed', 'task_failed', 'task_stopped', 'task_skipped',
  'subscribed', 'unsubscribed', 'emitted', 'event_run', 'event_skipped', 'event_queued',
  'run_completed', 'run_failed', 'run_stopped'));

-- A type's name belongs to its first definer; each definition is a version
-- (orch.process_type_versions), and a process runs the version it was
-- created with until orch.upgrade_process moves it.
CREATE TABLE orch.process_types (
  name        text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,63}$'),
  owner       text NOT NULL,
  -- The newest version, copied from orch.process_type_versions: what new
  -- processes get, listed without a join.
  version     integer NOT NULL DEFAULT 1,
  description text,
  tasks       jsonb NOT NULL,  -- as the user wrote it; validated by define_process_type
  runs_os_commands boolean NOT NULL,
  max_concurrent integer,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orch.process_type_versions (
  type        text NOT NULL REFERENCES orch.process_types (name) ON DELETE CASCADE,
  version     integer NOT NULL CHECK (version > 0),
  owner       text NOT NULL,  -- the type's, copied for row level security without a join
  description text,
  tasks       jsonb NOT NULL,
  runs_os_commands boolean NOT NULL,
  -- Most tasks of this version running at once, across all its runs (NULL:
  -- no limit besides the owners'). Per version, so that redefining a type
  -- never changes how the processes that kept the old version are run.
  max_concurrent integer CHECK (max_concurrent > 0),
  task_count  integer NOT NULL,
  has_fan_out boolean NOT NULL DEFAULT false,  -- a task has "for_each" or "count"
  defined_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (type, version)
);

-- A version's tasks, validated and normalised once, when it is defined: a
-- start copies them into orch.tasks with one INSERT ... SELECT.
CREATE TABLE orch.process_type_tasks (
  type        text NOT NULL,
  version     integer NOT NULL,
  owner       text NOT NULL,  -- the type's, copied for row level security without a join
  task_index  integer NOT NULL,  -- 0-based position in the type's task array
  name        text NOT NULL,
  kind        text NOT NULL CHECK (kind IN ('command', 'shell', 'sql')),
  command     text[],
  has_placeholders boolean NOT NULL,  -- a command element holds "{{": substituted at each start
  uses_outputs boolean NOT NULL,  -- a command element holds {{tasks.NAME.output...}}: substituted when ready
  fan_out     jsonb,  -- {"for_each": [...] | "KEY"} or {"count": N}; NULL: one instance
  max_parallel integer,  -- most of its instances running at once
  shell       text,
  sql         text,
  working_directory text,
  env         jsonb NOT NULL,
  timeout     interval,
  max_retries integer NOT NULL,
  retry_delay interval NOT NULL,
  retry_backoff float8 NOT NULL,
  depends_on  integer[] NOT NULL,  -- task_index values
  PRIMARY KEY (type, version, task_index),
  FOREIGN KEY (type, version) REFERENCES orch.process_type_versions (type, version) ON DELETE CASCADE
);

CREATE TABLE orch.processes (
  id          orch.process_id PRIMARY KEY,
  type        text NOT NULL REFERENCES orch.process_types (name),
  type_version integer NOT NULL,  -- what its runs run; see orch.upgrade_process
  input_data  orch.json_object NOT NULL DEFAULT '{}',
  owner       text NOT NULL,
  -- sql tasks run as this role (with the claims in orch.process_claims):
  -- the creator's, never more.
  created_by_role text NOT NULL,
  -- Schedule (NULL: manual only). timezone is fixed when the schedule is set.
  schedule    text,
  timezone    text,
  overlap_policy orch.overlap_policy NOT NULL DEFAULT 'skip',
  misfire_policy orch.misfire_policy NOT NULL DEFAULT 'run_once',
  is_active   boolean NOT NULL DEFAULT true,  -- false: the schedule is paused
  next_run_at timestamptz,  -- the next tick; NULL when there is none (no schedule, or paused)
  last_run_at timestamptz,  -- when a run of this process last started
  run_queued  boolean NOT NULL DEFAULT false,  -- overlap 'queue': a tick or an event waits for the current run
  queued_event text,  -- ... an event (NULL: a tick), whose run gets queued_input
  queued_input jsonb,
  -- Denormalised from the current run (same transaction) so that listing by
  -- status and the start/stop checks need no join. PENDING until a first run.
  status      orch.status NOT NULL DEFAULT 'PENDING',
  current_run_id bigint,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (type, type_version) REFERENCES orch.process_type_versions (type, version)
) WITH (fillfactor = 80);
-- Every start and end of a run updates a process's status and current run:
-- no index on them, and room in each page, so those updates stay HOT (no
-- index entry written).
CREATE INDEX ON orch.processes (type);
-- The scheduler sleeps until the earliest tick: one index probe, never a scan.
CREATE INDEX processes_next_run_idx ON orch.processes (next_run_at) WHERE next_run_at IS NOT NULL;
-- ... and fires due ticks with owners taking turns (orch._fire_due_schedules).
CREATE INDEX processes_next_run_by_owner_idx ON orch.processes (owner, next_run_at) WHERE next_run_at IS NOT NULL;

-- The JWT claims of a process's creator, which its sql tasks run with. Apart
-- from orch.processes because they may hold personal data (email, phone,
-- session id) that those the process is shared with must not read.
CREATE TABLE orch.process_claims (
  process_id  text PRIMARY KEY REFERENCES orch.processes (id) ON DELETE CASCADE,
  owner       text NOT NULL,  -- the process's, copied for row level security without a join
  claims      jsonb NOT NULL
);

-- Runs and tasks have no foreign keys: a key check is a query for each row
-- written (for each task of a run), planned once per session, often while
-- the table is small, as a scan of it. Only pg_orch writes them, and
-- orch.delete_process removes a process's runs and tasks with it.
-- Processes started by an event (orch.on_event, orch.emit).
CREATE TABLE orch.event_subscriptions (
  process_id  text NOT NULL REFERENCES orch.processes (id) ON DELETE CASCADE,
  event       text NOT NULL,
  owner       text NOT NULL,  -- the process's, copied for row level security without a join
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (process_id, event)
);
CREATE INDEX ON orch.event_subscriptions (event);

CREATE TABLE orch.runs (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  process_id   text NOT NULL,
  owner        text NOT NULL,  -- copied from the process for row level security without a join
  status       orch.status NOT NULL,
  triggered_by orch.triggered_by NOT NULL,
  catch_up     boolean NOT NULL DEFAULT false,  -- a scheduled run for ticks missed during downtime
  input_data   jsonb NOT NULL DEFAULT '{}',  -- the process's input when the run was made
  total_tasks  integer NOT NULL,
  has_fan_out  boolean NOT NULL DEFAULT false,  -- copied from its type version
  -- The outputs of its tasks that no task depends on, by task name (NULL
  -- when none of them has one).
  output_data  jsonb,
  started_at   timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz,
  error_message text
);
CREATE INDEX ON orch.runs (process_id, id);

CREATE TABLE orch.tasks (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id       bigint NOT NULL,
  process_id   text NOT NULL,  -- copied from the run, for listing and row level security
  owner        text NOT NULL,
  type         text NOT NULL,  -- the process's type and version, copied for the claim's
  type_version integer NOT NULL,  -- max_concurrent
  task_index   integer NOT NULL,  -- 0-based position in the type's task array
  name         text NOT NULL,
  kind         orch.task_kind NOT NULL,
  -- What runs, fixed when the run was created: placeholders already
  -- substituted, so redefining the type never changes a run.
  command      text[],
  shell        text,
  sql          text,
  working_directory text,
  env          jsonb NOT NULL DEFAULT '{}',
  timeout      interval,
  max_retries  integer NOT NULL DEFAULT 0,
  retry_delay  interval NOT NULL DEFAULT '0',
  retry_backoff float8 NOT NULL DEFAULT 1,
  depends_on   integer[] NOT NULL DEFAULT '{}',  -- task_index values
  uses_outputs boolean NOT NULL DEFAULT false,  -- command still holds {{tasks.NAME.output...}} until ready
  -- A fan-out task is one row with fan_out (its instances' parent: RUNNING
  -- while they run, then COMPLETED with their outputs as an array, or
  -- FAILED), and once it is ready one row per item, with item_index and item.
  fan_out      jsonb,
  max_parallel integer,
  item_index   integer,
  item         jsonb,
  status       orch.task_status NOT NULL DEFAULT 'PENDING',
  ready_at     timestamptz,  -- NULL while dependencies are unfinished
  attempt      integer NOT NULL DEFAULT 0,  -- attempts dispatched so far
  pid          integer,  -- also the process group id of the command
  started_at   timestamptz,
  completed_at timestamptz,
  exit_code    integer,
  output       text,  -- the tail of what it printed (stdout and stderr; an sql task's rows as text)
  output_truncated boolean NOT NULL DEFAULT false,
  output_data  jsonb,  -- its output: what a command wrote to $ORCH_OUTPUT, an sql task's rows
  error_message text,
  UNIQUE NULLS NOT DISTINCT (run_id, task_index, item_index)
);
-- The scheduler's claim: each owner's ready tasks in the order they became
-- ready (also each owner's next delayed one), and how many each owner (and
-- each limited type) has running: the running tasks are few (at most the
-- slots), so one small index serves both (orch._claim_tasks).
CREATE INDEX tasks_ready_by_owner_idx ON orch.tasks (owner, ready_at, id)
  WHERE status = 'PENDING' AND ready_at IS NOT NULL;
CREATE INDEX tasks_active_idx ON orch.tasks (owner) WHERE status IN ('DISPATCHED', 'RUNNING') AND fan_out IS NULL;

-- Who, besides its owner, may use a process type to create processes. A
-- grantee is a role (its members may) or an owner name (a JWT "sub").
CREATE TABLE orch.process_type_grants (
  type        text NOT NULL REFERENCES orch.process_types (name) ON DELETE CASCADE,
  grantee     text NOT NULL,
  type_owner  text NOT NULL,  -- copied from the type for row level security without a join
  granted_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (type, grantee)
);

-- Sharing one process with another owner or role.
CREATE TABLE orch.process_permissions (
  process_id  text NOT NULL REFERENCES orch.processes (id) ON DELETE CASCADE,
  grantee     text NOT NULL,
  owner       text NOT NULL,  -- the process's owner, copied for row level security without a join
  can_view    boolean NOT NULL DEFAULT true,
  can_edit    boolean NOT NULL DEFAULT false,  -- start, stop, retry, pause, resume, schedule, upgrade
  granted_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (process_id, grantee)
);
CREATE INDEX ON orch.process_permissions (grantee);


-- Append-only record of what happened to processes and runs.
CREATE TABLE orch.events (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT clock_timestamp(),
  actor      text NOT NULL DEFAULT orch.current_owner(),  -- who did it
  owner      text,  -- whose process it concerns
  process_id text,  -- no foreign keys: events outlive what they describe
  run_id     bigint,
  kind       orch.event_kind NOT NULL,
  detail     jsonb
);
CREATE INDEX ON orch.events (process_id, id);

-- Writes one event. (The scheduler's set-based paths insert theirs in the
-- statement that made them.)
CREATE FUNCTION orch._log(kind orch.event_kind, owner text, process_id text, run_id bigint, detail jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  INSERT INTO orch.events (owner, process_id, run_id, kind, detail)
  VALUES (owner, process_id, run_id, kind, detail);
END
$$;

CREATE FUNCTION orch._refuse_event_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RAISE EXCEPTION 'orch.events is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON orch.events
  FOR EACH ROW EXECUTE FUNCTION orch._refuse_event_change();
-- pg_orch: who may do what. The API functions' SECURITY DEFINER bodies
-- (orch._api_*, reached through 80_api.sql) ask these; the tables' row level
-- security policies (90_security.sql) say the same for reads, so a user sees
-- through SELECT exactly what the functions let them act on.

-- Superusers and members of orch_admin see and manage everything. (C, in
-- src/pg/identity.cpp, as the two below: asked at every call and row.)
CREATE FUNCTION orch._is_admin() RETURNS boolean
LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'orch_is_admin';

-- Members of orch_user (and admins) may create and change; orch_viewer only
-- reads; a caller without an owner name writes nothing.
CREATE FUNCTION orch._can_write() RETURNS boolean
LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'orch_can_write';

-- The owner of what the caller creates, or the error that says why the
-- caller may create nothing.
CREATE FUNCTION orch._writer(what text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  owner text := orch.current_owner();
BEGIN
  IF owner IS NULL AND orch._jwt_claims() IS NOT NULL THEN
    RAISE EXCEPTION 'permission denied to %', what USING ERRCODE = 'insufficient_privilege',
      DETAIL = 'The request''s JWT has no "sub" claim, so it is no one''s.',
      HINT = 'Sign the user in: pg_orch takes the owner of what a request creates from its "sub".';
  ELSIF owner IS NULL THEN
    RAISE EXCEPTION 'permission denied to %', what USING ERRCODE = 'insufficient_privilege',
      DETAIL = format('Role names starting with "jwt:" are reserved for JWT owners, and the role is %s.',
                      orch._caller());
  ELSIF NOT orch._can_write() THEN
    RAISE EXCEPTION 'permission denied to %', what USING ERRCODE = 'insufficient_privilege',
      HINT = 'Members of orch_user and orch_admin may create and change pg_orch objects.';
  END IF;
  RETURN owner;
END
$$;

-- The names a grant can be made to that mean the caller: its owner name and
-- every role it is a member of, except roles named like JWT owners (a role
-- "jwt:carol" is not the JWT user carol).
CREATE FUNCTION orch._identities() RETURNS text[]
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN ARRAY[orch.current_owner()] ||
         ARRAY(SELECT r.rolname::text FROM pg_catalog.pg_roles r
               WHERE pg_catalog.pg_has_role(orch._caller(), r.oid, 'MEMBER') AND left(r.rolname, 4) <> 'jwt:');
END
$$;

-- May the caller see (need 'view'), change (need 'edit': start, stop,
-- retry, schedule) or own (need 'own': delete, share, upgrade) this process?
CREATE FUNCTION orch._may(need text, process_id text, owner text) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN orch._is_admin()
      OR ((need = 'view' OR orch._can_write())
          AND (owner = orch.current_owner()
               OR (need <> 'own'
                   AND EXISTS (SELECT 1 FROM orch.process_permissions pp
                               WHERE pp.process_id = _may.process_id AND pp.grantee = ANY (orch._identities())
                                 AND (pp.can_edit OR (need = 'view' AND pp.can_view))))));
END
$$;

-- May the caller create processes of this type?
CREATE FUNCTION orch._may_use_type(type orch.process_types) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
  SELECT orch._is_admin()
      OR (orch._can_write()
          AND (type.owner = orch.current_owner()
               OR EXISTS (SELECT 1 FROM orch.process_type_grants g
                          WHERE g.type = type.name AND g.grantee = ANY (orch._identities()))))
$$;

-- The one error for a process the caller may not act on. It does not say
-- whether the process exists; only admins are told that it does not.
CREATE FUNCTION orch._refuse_process(id text, found boolean) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT found AND orch._is_admin() THEN
    RAISE EXCEPTION 'process "%" does not exist', id USING ERRCODE = 'undefined_object';
  END IF;
  RAISE EXCEPTION 'permission denied for process "%"', id
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'Processes can be changed by their owner, by roles they are shared with for editing, and by orch_admin.';
END
$$;
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
CREATE FUNCTION orch._substitute_placeholders(command text[], input jsonb, task text, fan_out boolean DEFAULT false)
RETURNS text[] LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'orch_substitute_placeholders';

-- A fan-out's items (a JSON array) when it becomes ready, and an instance's
-- command with {{item}}, {{item.PATH}} and {{item_index}} filled in
-- (src/core/fan_out.hpp).
CREATE FUNCTION orch._fan_out_items(fan_out jsonb, input jsonb, outputs jsonb, task text) RETURNS jsonb
LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'orch_fan_out_items';
CREATE FUNCTION orch._substitute_item(command text[], item jsonb, item_index integer, task text) RETURNS text[]
LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'orch_substitute_item';

-- Milliseconds before the next attempt of a task that failed attempt
-- `attempt`: retry_delay_ms * retry_backoff^(attempt - 1), growing to an
-- hour at most (src/core/retry_backoff.hpp).
CREATE FUNCTION orch._retry_delay_ms(retry_delay_ms bigint, retry_backoff float8, attempt integer) RETURNS bigint
LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'orch_retry_delay_ms';

-- A command's arguments with {{tasks.NAME.output[.PATH]}} placeholders
-- replaced by its ancestors' outputs (outputs: {"NAME": output}), each inside
-- its one argument; raises for a PATH that is not there.
CREATE FUNCTION orch._substitute_outputs(command text[], outputs jsonb, task text) RETURNS text[]
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
-- pg_orch: process types
-- Defines a type, or a new version of one's own type. Processes keep the
-- version they run (see orch.upgrade_process).
CREATE FUNCTION orch._api_define_process_type(name text, tasks jsonb, description text, max_concurrent integer)
RETURNS orch.process_types
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  owner text;
  normalized jsonb;
  os_commands boolean;
  result orch.process_types;
BEGIN
  IF name IS NULL OR tasks IS NULL THEN
    RAISE EXCEPTION 'process type name and tasks must not be null' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF name !~ '^[A-Za-z0-9_.-]{1,63}$' THEN
    RAISE EXCEPTION 'invalid process type name "%"', name
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Use 1 to 63 letters, digits, "_", "." or "-".';
  END IF;
  IF max_concurrent < 1 THEN
    RAISE EXCEPTION 'max_concurrent must be at least 1, not %', max_concurrent
      USING ERRCODE = 'invalid_parameter_value', HINT = 'Leave it NULL for no limit.';
  END IF;
  owner := orch._writer('define process types');
  normalized := orch._parse_process_type(tasks);
  SELECT bool_or(t ->> 'kind' IN ('command', 'shell')) INTO os_commands
    FROM jsonb_array_elements(normalized) AS t;
  -- Running OS commands is as powerful as COPY ... TO PROGRAM.
  IF os_commands AND NOT (orch._is_admin()
                          OR pg_catalog.pg_has_role(orch._caller(), 'pg_execute_server_program', 'MEMBER')) THEN
    RAISE EXCEPTION 'permission denied to define process type "%"', name
      USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'Its tasks run operating system commands.',
            HINT = 'Only superusers, members of pg_execute_server_program and orch_admin may define command or shell tasks.';
  END IF;
  -- A name belongs to its first definer: no one else, admins included, may
  -- make a version of it that its users would then run. Checked by the
  -- upsert itself, which waits for a concurrent first definition to commit
  -- and then finds it someone else's.
  INSERT INTO orch.process_types AS pt (name, owner, version, description, tasks, runs_os_commands, max_concurrent)
  VALUES (_api_define_process_type.name, owner, 1, description, tasks, os_commands, max_concurrent)
  ON CONFLICT ON CONSTRAINT process_types_pkey DO UPDATE
    SET version = pt.version + 1, description = EXCLUDED.description, tasks = EXCLUDED.tasks,
        runs_os_commands = EXCLUDED.runs_os_commands, max_concurrent = EXCLUDED.max_concurrent, updated_at = now()
    WHERE pt.owner = EXCLUDED.owner
  RETURNING * INTO result;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'permission denied for process type "%"', name USING ERRCODE = 'insufficient_privilege',
      DETAIL = 'The name belongs to the owner who first defined it.',
      HINT = 'Choose another name; orch_admin may drop the type once no process uses it.';
  END IF;
  INSERT INTO orch.process_type_versions (type, version, owner, description, tasks, runs_os_commands,
                                          max_concurrent, task_count, has_fan_out)
  VALUES (result.name, result.version, result.owner, result.description, result.tasks, result.runs_os_commands,
          result.max_concurrent, jsonb_array_length(normalized),
          EXISTS (SELECT 1 FROM jsonb_array_elements(normalized) AS t WHERE t -> 'fan_out' <> 'null'));
  INSERT INTO orch.process_type_tasks (type, version, owner, task_index, name, kind, command, has_placeholders,
                                       uses_outputs, fan_out, max_parallel, shell, sql, working_directory, env,
                                       timeout, max_retries, retry_delay, retry_backoff, depends_on)
  SELECT result.name, result.version, result.owner, t.task_index, t.name, t.kind, t.command,
         coalesce(EXISTS (SELECT 1 FROM unnest(t.command) AS a WHERE strpos(a, '{{') > 0), false), t.uses_outputs,
         t.fan_out, t.max_parallel,
         t.shell, t.sql, t.working_directory, coalesce(t.env, '{}'), t.timeout_ms * interval '1 millisecond',
         t.max_retries, t.retry_delay_ms * interval '1 millisecond', t.retry_backoff, t.depends_on
  FROM jsonb_to_recordset(normalized) AS t(task_index int, name text, kind text, command text[], shell text,
                                           sql text, working_directory text, env jsonb, timeout_ms bigint,
                                           max_retries int, retry_delay_ms bigint, retry_backoff float8,
                                           depends_on int[], uses_outputs boolean, fan_out jsonb, max_parallel int);
  PERFORM orch._log('type_defined', result.owner, NULL, NULL,
                    jsonb_build_object('type', name, 'version', result.version, 'runs_os_commands', os_commands));
  RETURN result;
END
$$;

-- Locks a process type the caller owns (or any, for admins), or raises.
CREATE FUNCTION orch._lock_own_type(name text) RETURNS orch.process_types
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  result orch.process_types;
BEGIN
  IF name IS NULL THEN
    RAISE EXCEPTION 'process type name must not be null' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  -- Checked before the row is locked: others must not hold up its owner.
  SELECT * INTO result FROM orch.process_types pt WHERE pt.name = _lock_own_type.name;
  IF FOUND AND ((result.owner = orch.current_owner() AND orch._can_write()) OR orch._is_admin()) THEN
    SELECT * INTO result FROM orch.process_types pt WHERE pt.name = _lock_own_type.name FOR UPDATE;
  END IF;
  IF FOUND AND ((result.owner = orch.current_owner() AND orch._can_write()) OR orch._is_admin()) THEN
    RETURN result;
  ELSIF NOT FOUND AND orch._is_admin() THEN
    RAISE EXCEPTION 'process type "%" does not exist', name USING ERRCODE = 'undefined_object';
  END IF;
  RAISE EXCEPTION 'permission denied for process type "%"', name USING ERRCODE = 'insufficient_privilege',
    HINT = 'Only its owner and orch_admin may change a process type.';
END
$$;

CREATE FUNCTION orch._api_drop_process_type(name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  type orch.process_types := orch._lock_own_type(name);
  users bigint;
BEGIN
  SELECT count(*) INTO users FROM orch.processes p WHERE p.type = _api_drop_process_type.name;
  IF users > 0 THEN
    RAISE EXCEPTION 'cannot drop process type "%" because % process(es) use it', name, users
      USING ERRCODE = 'dependent_objects_still_exist',
            HINT = 'Delete those processes first with orch.delete_process().';
  END IF;
  DELETE FROM orch.process_types pt WHERE pt.name = _api_drop_process_type.name;
  PERFORM orch._log('type_dropped', type.owner, NULL, NULL, jsonb_build_object('type', name));
END
$$;

-- Lets a role (and its members) or an owner name (a JWT "sub") create
-- processes of a type.
CREATE FUNCTION orch._api_grant_process_type(type text, grantee text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  locked orch.process_types := orch._lock_own_type(type);
BEGIN
  IF grantee IS NULL OR grantee = '' THEN
    RAISE EXCEPTION 'grantee must not be empty' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  INSERT INTO orch.process_type_grants (type, grantee, type_owner) VALUES (locked.name, grantee, locked.owner)
  ON CONFLICT DO NOTHING;
  PERFORM orch._log('type_granted', locked.owner, NULL, NULL, jsonb_build_object('type', type, 'grantee', grantee));
END
$$;

CREATE FUNCTION orch._api_revoke_process_type(type text, grantee text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  locked orch.process_types := orch._lock_own_type(type);
BEGIN
  IF grantee IS NULL THEN
    RAISE EXCEPTION 'grantee must not be null' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  DELETE FROM orch.process_type_grants g WHERE g.type = locked.name AND g.grantee = _api_revoke_process_type.grantee;
  PERFORM orch._log('type_revoked', locked.owner, NULL, NULL, jsonb_build_object('type', type, 'grantee', grantee));
END
$$;
-- pg_orch: processes
CREATE FUNCTION orch._api_create_process(id text, type text, input_data jsonb, schedule text, timezone text,
                                         overlap text, misfire text)
RETURNS orch.processes
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  owner text := orch._writer('create processes');
  claims jsonb := orch._jwt_claims();
  result orch.processes;
  zone text;
  process_type orch.process_types;
BEGIN
  IF id IS NULL OR type IS NULL THEN
    RAISE EXCEPTION 'process id and type must not be null' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF length(id) NOT BETWEEN 1 AND 255 THEN
    RAISE EXCEPTION 'process id must be 1 to 255 characters long' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF input_data IS NULL THEN
    input_data := '{}';
  ELSIF jsonb_typeof(input_data) <> 'object' THEN
    RAISE EXCEPTION 'input data must be a JSON object, not %', jsonb_typeof(input_data)
      USING ERRCODE = 'invalid_parameter_value';
  ELSIF octet_length(input_data::text) > pg_size_bytes(current_setting('orch.max_input_size')) THEN
    RAISE EXCEPTION 'input data is % bytes, more than orch.max_input_size (%)', octet_length(input_data::text),
      current_setting('orch.max_input_size') USING ERRCODE = 'program_limit_exceeded';
  END IF;
  zone := orch._check_schedule(schedule, timezone, overlap, misfire);
  SELECT * INTO process_type FROM orch.process_types pt WHERE pt.name = _api_create_process.type;
  IF FOUND AND orch._may_use_type(process_type) THEN  -- checked before the row is locked
    SELECT * INTO process_type FROM orch.process_types pt WHERE pt.name = _api_create_process.type FOR KEY SHARE;
  END IF;
  IF NOT FOUND AND orch._is_admin() THEN
    RAISE EXCEPTION 'process type "%" does not exist', type USING ERRCODE = 'undefined_object';
  ELSIF NOT FOUND OR NOT orch._may_use_type(process_type) THEN
    RAISE EXCEPTION 'permission denied for process type "%"', type USING ERRCODE = 'insufficient_privilege',
      HINT = 'Process types are usable by their owner, by roles and owners they are granted to '
             '(orch.grant_process_type), and by orch_admin.';
  END IF;
  -- The input is fixed for the process's life: checked once that commands can
  -- get it as ORCH_INPUT_* variables.
  IF process_type.runs_os_commands THEN
    PERFORM orch._check_input_environment(_api_create_process.input_data);
  END IF;
  BEGIN
    INSERT INTO orch.processes (id, type, type_version, input_data, owner, created_by_role, schedule, timezone,
                                overlap_policy, misfire_policy, next_run_at)
    VALUES (_api_create_process.id, process_type.name, process_type.version, _api_create_process.input_data, owner,
            orch._caller(), schedule, zone, overlap, misfire, orch._next_run_at(schedule, zone, clock_timestamp()))
    RETURNING * INTO result;
  EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'process "%" already exists', id USING ERRCODE = 'duplicate_object';
  END;
  IF claims IS NOT NULL THEN
    INSERT INTO orch.process_claims (process_id, owner, claims) VALUES (result.id, result.owner, claims);
  END IF;
  IF schedule IS NOT NULL THEN
    PERFORM orch._wake_scheduler_at_commit(false);
  END IF;
  PERFORM orch._log('created', result.owner, result.id, NULL, jsonb_build_object('type', type, 'version', result.type_version,
                                                                      'schedule', schedule));
  RETURN result;
END
$$;

-- Locks a process the caller may change (need 'edit') or owns ('own', see
-- _may), or raises the one error every API function gives for a process
-- that is not theirs or does not exist.
CREATE FUNCTION orch._lock_process(id text, need text DEFAULT 'edit') RETURNS orch.processes
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  result orch.processes;
BEGIN
  IF id IS NULL THEN
    RAISE EXCEPTION 'process id must not be null' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  -- Checked before the row is locked: a caller who may not change the
  -- process must not hold up those who may, or the scheduler.
  SELECT * INTO result FROM orch.processes p WHERE p.id = _lock_process.id;
  IF NOT FOUND OR NOT orch._may(need, result.id, result.owner) THEN
    PERFORM orch._refuse_process(id, FOUND);
  END IF;
  SELECT * INTO result FROM orch.processes p WHERE p.id = _lock_process.id FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM orch._refuse_process(id, false);
  END IF;
  RETURN result;
END
$$;

-- Starts a run of process `id` if it belongs to `owner` (and, with
-- only_if_idle, is not in progress): makes the run from the version of its
-- type that it runs, with `input` (NULL: the process's), makes it the
-- process's current run and logs `event`.
-- Returns the run's id, or NULL when the process did not qualify (the
-- caller then says why). One statement, the least a start must do: the row
-- is locked by the UPDATE, and only if it qualifies, so a caller who may not
-- start the process never holds it up. Callers check that the caller may.
-- No SET clause (a sixth of a start): only orch._api_start and
-- orch._start_scheduled_run call it, and both pin search_path.
CREATE FUNCTION orch._start_run(id text, owner text, only_if_idle boolean, triggered_by text, catch_up boolean,
                                event orch.event_kind, event_detail jsonb, input jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
  new_run_id bigint;
BEGIN
  WITH proc AS (
    UPDATE orch.processes p
    SET status = 'IN_PROGRESS', current_run_id = nextval('orch.runs_id_seq'::regclass),
        last_run_at = clock_timestamp(), updated_at = clock_timestamp()
    WHERE p.id = _start_run.id AND p.owner = _start_run.owner AND NOT (only_if_idle AND p.status = 'IN_PROGRESS')
    RETURNING p.id, p.owner, p.type, p.type_version, coalesce(_start_run.input, p.input_data) AS input_data,
              p.current_run_id),
  run AS (
    INSERT INTO orch.runs (id, process_id, owner, status, triggered_by, catch_up, input_data, total_tasks,
                           has_fan_out, started_at)
    OVERRIDING SYSTEM VALUE
    SELECT proc.current_run_id, proc.id, proc.owner, 'IN_PROGRESS', triggered_by, catch_up, proc.input_data,
           v.task_count, v.has_fan_out, clock_timestamp()
    FROM proc JOIN orch.process_type_versions v ON v.type = proc.type AND v.version = proc.type_version),
  -- What runs is fixed here: placeholders substituted from the input, so a
  -- run never changes, whatever happens to its type.
  tasks AS (
    INSERT INTO orch.tasks (run_id, process_id, owner, type, type_version, task_index, name, kind, command, shell,
                            sql, working_directory, env, timeout, max_retries, retry_delay, retry_backoff,
                            depends_on, uses_outputs, fan_out, max_parallel, ready_at)
    SELECT proc.current_run_id, proc.id, proc.owner, proc.type, proc.type_version, t.task_index, t.name, t.kind,
           CASE WHEN t.has_placeholders
                THEN orch._substitute_placeholders(t.command, proc.input_data, t.name, t.fan_out IS NOT NULL)
                ELSE t.command END,
           t.shell, t.sql, t.working_directory, t.env, t.timeout, t.max_retries, t.retry_delay, t.retry_backoff,
           t.depends_on, t.uses_outputs, t.fan_out, t.max_parallel,
           CASE WHEN cardinality(t.depends_on) = 0 AND t.fan_out IS NULL THEN clock_timestamp() END
    FROM proc JOIN orch.process_type_tasks t ON t.type = proc.type AND t.version = proc.type_version),
  logged AS (
    INSERT INTO orch.events (owner, process_id, run_id, kind, detail)
    SELECT proc.owner, proc.id, proc.current_run_id, event, event_detail FROM proc)
  SELECT proc.current_run_id INTO new_run_id FROM proc;
  IF new_run_id IS NOT NULL THEN
    -- A fan-out with nothing to wait for makes its instances now.
    IF EXISTS (SELECT 1 FROM orch.runs r WHERE r.id = new_run_id AND r.has_fan_out) THEN
      PERFORM orch._advance_runs(ARRAY[new_run_id], false, wait => true);
    END IF;
    PERFORM orch._wake_scheduler_at_commit(false);
  END IF;
  RETURN new_run_id;
END
$$;

CREATE FUNCTION orch._api_start(id text, triggered_by text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes;
  new_run_id bigint;
BEGIN
  -- SCHEDULED, RETRY and event: runs are made by pg_orch alone.
  IF triggered_by IS NULL OR triggered_by NOT IN ('MANUAL', 'API') THEN
    RAISE EXCEPTION 'invalid triggered_by "%"', triggered_by
      USING ERRCODE = 'invalid_parameter_value', HINT = 'Use MANUAL or API; other labels are set by pg_orch itself.';
  END IF;
  -- The common case in one statement: the caller's own idle process.
  IF orch._can_write() THEN
    new_run_id := orch._start_run(id, orch.current_owner(), true, triggered_by, false, 'started',
                                  jsonb_build_object('triggered_by', triggered_by));
  END IF;
  IF new_run_id IS NULL THEN
    -- Anyone else's, or not startable: lock it if the caller may, and say why not.
    proc := orch._lock_process(id);
    IF proc.status = 'IN_PROGRESS' THEN
      RAISE EXCEPTION 'process "%" is already in progress', id
        USING ERRCODE = 'object_in_use', DETAIL = format('Run %s has not finished.', proc.current_run_id),
              HINT = 'Wait for it with orch.wait() or stop it with orch.stop().';
    END IF;
    new_run_id := orch._start_run(proc.id, proc.owner, true, triggered_by, false, 'started',
                                  jsonb_build_object('triggered_by', triggered_by));
  END IF;
  RETURN new_run_id;
END
$$;

CREATE FUNCTION orch._api_stop(id text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes;
BEGIN
  proc := orch._lock_process(id);
  -- Every run in progress stops: with overlap 'parallel', earlier runs too.
  UPDATE orch.runs r SET status = 'STOPPED', completed_at = now(),
         error_message = format('stopped by %s', orch.current_owner())
  WHERE r.process_id = proc.id AND r.status = 'IN_PROGRESS';
  IF NOT FOUND THEN
    RAISE EXCEPTION 'process "%" is not running', id
      USING ERRCODE = 'object_not_in_prerequisite_state', DETAIL = format('Its status is %s.', proc.status);
  END IF;
  -- Tasks not yet dispatched stop here; the scheduler kills the running ones
  -- (their run is STOPPED) and records them as STOPPED.
  UPDATE orch.tasks t SET status = 'STOPPED', completed_at = now(), error_message = 'stopped before it ran'
  FROM orch.runs r
  WHERE r.id = t.run_id AND r.process_id = proc.id AND r.status = 'STOPPED' AND t.status = 'PENDING';
  -- A fan-out stops with its run; its running instances are killed as any task.
  UPDATE orch.tasks t SET status = 'STOPPED', completed_at = now(), error_message = 'stopped'
  FROM orch.runs r
  WHERE r.id = t.run_id AND r.process_id = proc.id AND r.status = 'STOPPED' AND t.status = 'RUNNING'
    AND t.fan_out IS NOT NULL;
  UPDATE orch.processes p
  SET status = CASE WHEN p.status = 'IN_PROGRESS' THEN 'STOPPED' ELSE p.status END, run_queued = false,
      queued_event = NULL, queued_input = NULL,
      updated_at = now()
  WHERE p.id = proc.id;
  PERFORM orch._wake_scheduler_at_commit(true);
  PERFORM orch._log('stopped', proc.owner, proc.id, proc.current_run_id, NULL);
  RETURN proc.current_run_id;
END
$$;

-- Deleting a process takes its history along: its owner's (or an admin's)
-- decision alone, not an editor's.
CREATE FUNCTION orch._api_delete_process(id text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes;
BEGIN
  proc := orch._lock_process(id, 'own');
  -- Any run in progress (with overlap 'parallel', an earlier one too) keeps
  -- it: its tasks' rows are how the scheduler finds, counts and stops them.
  IF EXISTS (SELECT 1 FROM orch.runs r WHERE r.process_id = proc.id AND r.status = 'IN_PROGRESS') THEN
    RAISE EXCEPTION 'cannot delete process "%" while it is in progress', id
      USING ERRCODE = 'object_in_use', HINT = 'Stop it first with orch.stop().';
  END IF;
  -- A stopped run may still have a command being killed; keep its rows until then.
  IF EXISTS (SELECT 1 FROM orch.tasks t WHERE t.owner = proc.owner AND t.process_id = proc.id
               AND t.status IN ('DISPATCHED', 'RUNNING') AND t.fan_out IS NULL) THEN
    RAISE EXCEPTION 'cannot delete process "%" while its stopped command is still being killed', id
      USING ERRCODE = 'object_in_use', HINT = 'Try again in a moment, or wait with orch.wait().';
  END IF;
  DELETE FROM orch.tasks t USING orch.runs r WHERE r.process_id = proc.id AND t.run_id = r.id;
  DELETE FROM orch.runs r WHERE r.process_id = proc.id;
  DELETE FROM orch.processes p WHERE p.id = proc.id;
  PERFORM orch._log('deleted', proc.owner, proc.id, NULL, NULL);
END
$$;

-- Resumes a FAILED or STOPPED run where it stopped: its completed tasks are
-- kept, the others run again with their retries renewed.
CREATE FUNCTION orch._api_retry(run_id bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  run orch.runs;
  proc orch.processes;
BEGIN
  IF run_id IS NULL THEN
    RAISE EXCEPTION 'run id must not be null' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  SELECT * INTO run FROM orch.runs r WHERE r.id = _api_retry.run_id;
  IF NOT FOUND OR NOT orch._may('edit', run.process_id, run.owner) THEN
    IF NOT FOUND AND orch._is_admin() THEN
      RAISE EXCEPTION 'run % does not exist', run_id USING ERRCODE = 'undefined_object';
    END IF;
    RAISE EXCEPTION 'permission denied for run %', run_id USING ERRCODE = 'insufficient_privilege';
  END IF;
  proc := orch._lock_process(run.process_id);
  IF run.status NOT IN ('FAILED', 'STOPPED') THEN
    RAISE EXCEPTION 'run % is %; only a FAILED or STOPPED run can be retried', run_id, run.status
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  IF proc.current_run_id <> run.id OR proc.status = 'IN_PROGRESS' THEN
    RAISE EXCEPTION 'run % is not the latest run of process "%"', run_id, proc.id
      USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Only the latest run can be retried.';
  END IF;
  IF run.total_tasks = 0 THEN
    RAISE EXCEPTION 'run % never started any task', run_id USING ERRCODE = 'object_not_in_prerequisite_state',
      DETAIL = run.error_message, HINT = 'Start the process again with orch.start().';
  END IF;
  IF EXISTS (SELECT 1 FROM orch.tasks t WHERE t.run_id = run.id AND t.status IN ('DISPATCHED', 'RUNNING')
               AND t.fan_out IS NULL) THEN
    RAISE EXCEPTION 'run % still has a command being stopped', run_id USING ERRCODE = 'object_in_use',
      HINT = 'Wait for it with orch.wait().';
  END IF;
  UPDATE orch.tasks t SET status = 'PENDING', attempt = 0, ready_at = NULL, pid = NULL, started_at = NULL,
         completed_at = NULL, exit_code = NULL, output = NULL, output_truncated = false, output_data = NULL,
         error_message = NULL
  WHERE t.run_id = run.id AND t.status IN ('FAILED', 'STOPPED', 'SKIPPED');
  UPDATE orch.runs r SET status = 'IN_PROGRESS', completed_at = NULL, error_message = NULL, output_data = NULL
  WHERE r.id = run.id;
  UPDATE orch.processes p SET status = 'IN_PROGRESS', last_run_at = clock_timestamp(), updated_at = clock_timestamp()
  WHERE p.id = proc.id;
  PERFORM orch._advance_runs(ARRAY[run.id], false, wait => true);
  PERFORM orch._wake_scheduler_at_commit(false);
  PERFORM orch._log('retried', proc.owner, proc.id, run.id, NULL);
  RETURN run.id;
END
$$;

-- Shares a process with another owner name or role: can_view lets them see
-- it, its runs, tasks and events; can_edit lets them start, stop, retry,
-- schedule and upgrade it as well. Deleting and sharing stay the owner's.
CREATE FUNCTION orch._api_share_process(id text, grantee text, can_edit boolean) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes := orch._lock_process(id, 'own');
BEGIN
  IF grantee IS NULL OR grantee = '' THEN
    RAISE EXCEPTION 'grantee must not be empty' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  INSERT INTO orch.process_permissions AS pp (process_id, grantee, owner, can_view, can_edit)
  VALUES (proc.id, grantee, proc.owner, true, coalesce(can_edit, false))
  ON CONFLICT ON CONSTRAINT process_permissions_pkey DO UPDATE SET can_view = true, can_edit = EXCLUDED.can_edit;
  PERFORM orch._log('shared', proc.owner, proc.id, NULL, jsonb_build_object('grantee', grantee, 'can_edit', can_edit));
END
$$;

CREATE FUNCTION orch._api_unshare_process(id text, grantee text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes := orch._lock_process(id, 'own');
BEGIN
  IF grantee IS NULL THEN
    RAISE EXCEPTION 'grantee must not be null' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  DELETE FROM orch.process_permissions pp WHERE pp.process_id = proc.id AND pp.grantee = _api_unshare_process.grantee;
  PERFORM orch._log('unshared', proc.owner, proc.id, NULL, jsonb_build_object('grantee', grantee));
END
$$;

-- Moves a process to its type's newest version: from its next run on, it
-- runs what the type's owner defined last. Redefining a type never does this
-- by itself, so that no one's processes change under them; and only the
-- process's owner (or an admin) may do it, because its sql tasks run as its
-- creator: an editor who owns the type could otherwise run new code as them.
CREATE FUNCTION orch._api_upgrade_process(id text) RETURNS orch.processes
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes := orch._lock_process(id, 'own');
  process_type orch.process_types;
  result orch.processes;
BEGIN
  SELECT * INTO process_type FROM orch.process_types pt WHERE pt.name = proc.type FOR KEY SHARE;
  IF NOT orch._may_use_type(process_type) THEN
    RAISE EXCEPTION 'permission denied for process type "%"', proc.type USING ERRCODE = 'insufficient_privilege',
      HINT = 'Process types are usable by their owner, by roles and owners they are granted to '
             '(orch.grant_process_type), and by orch_admin.';
  END IF;
  IF process_type.runs_os_commands THEN
    PERFORM orch._check_input_environment(proc.input_data);
  END IF;
  UPDATE orch.processes p SET type_version = process_type.version, updated_at = clock_timestamp()
  WHERE p.id = proc.id RETURNING * INTO result;
  PERFORM orch._log('upgraded', result.owner, result.id, NULL,
                          jsonb_build_object('from_version', proc.type_version, 'to_version', result.type_version));
  RETURN result;
END
$$;
-- pg_orch: schedules
-- A schedule's zone: the one given, else orch.timezone, else the session's TimeZone.
CREATE FUNCTION orch._effective_time_zone(timezone text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN coalesce(timezone, nullif(current_setting('orch.timezone'), ''), current_setting('TimeZone'));
END
$$;

-- The first tick strictly after `after`, or NULL (no schedule, or none left).
CREATE FUNCTION orch._next_run_at(schedule text, timezone text, after timestamptz) RETURNS timestamptz
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN (orch._next_run_times(schedule, timezone, after, 1))[1];
END
$$;

-- Validates a schedule and its policies; returns the zone to store (NULL
-- without a schedule).
CREATE FUNCTION orch._check_schedule(schedule text, timezone text, overlap text, misfire text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  zone text := orch._effective_time_zone(timezone);
BEGIN
  IF overlap IS NULL OR overlap NOT IN ('skip', 'queue', 'parallel') THEN
    RAISE EXCEPTION 'invalid overlap policy "%"', overlap
      USING ERRCODE = 'invalid_parameter_value', HINT = 'Use skip, queue or parallel.';
  END IF;
  IF misfire IS NULL OR misfire NOT IN ('run_once', 'skip') THEN
    RAISE EXCEPTION 'invalid misfire policy "%"', misfire
      USING ERRCODE = 'invalid_parameter_value', HINT = 'Use run_once or skip.';
  END IF;
  IF schedule IS NULL AND timezone IS NOT NULL THEN
    RAISE EXCEPTION 'a time zone needs a schedule' USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Give the schedule too, or leave the time zone out.';
  ELSIF schedule IS NULL THEN
    RETURN NULL;
  END IF;
  PERFORM orch._check_time_zone(zone);
  -- Raises for a bad expression, naming the field and why.
  IF cardinality(orch._next_run_times(schedule, zone, clock_timestamp(), 1)) = 0 THEN
    RAISE EXCEPTION 'schedule "%" never fires', schedule USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Check the day of the month against the month (February has no 30th); orch.next_runs() shows when a schedule fires.';
  END IF;
  RETURN zone;
END
$$;

-- The next `count` times a schedule fires after `from`: to check an
-- expression before using it.
CREATE FUNCTION orch.next_runs(schedule text, timezone text DEFAULT NULL, "from" timestamptz DEFAULT now(),
                               count integer DEFAULT 5)
RETURNS SETOF timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
  SELECT unnest(orch._next_run_times(schedule, orch._effective_time_zone(timezone), "from", count))
$$;

-- Sets or changes a process's schedule; it takes effect at once. A NULL
-- schedule makes the process manual only; NULL policies keep the current ones.
CREATE FUNCTION orch._api_set_schedule(id text, schedule text, timezone text, overlap text, misfire text)
RETURNS orch.processes
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes := orch._lock_process(id);
  zone text;
  result orch.processes;
BEGIN
  overlap := coalesce(overlap, proc.overlap_policy);
  misfire := coalesce(misfire, proc.misfire_policy);
  zone := orch._check_schedule(schedule, timezone, overlap, misfire);
  UPDATE orch.processes p
  SET schedule = _api_set_schedule.schedule, timezone = zone, overlap_policy = overlap, misfire_policy = misfire,
      next_run_at = CASE WHEN p.is_active THEN orch._next_run_at(_api_set_schedule.schedule, zone, clock_timestamp()) END,
      run_queued = p.run_queued AND _api_set_schedule.schedule IS NOT NULL, updated_at = clock_timestamp()
  WHERE p.id = proc.id
  RETURNING * INTO result;
  PERFORM orch._log('schedule_changed', result.owner, result.id, NULL,
                          jsonb_build_object('schedule', schedule, 'timezone', zone));
  PERFORM orch._wake_scheduler_at_commit(false);
  RETURN result;
END
$$;

-- Turns the schedule off; manual starts still work.
CREATE FUNCTION orch._api_pause(id text) RETURNS orch.processes
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes := orch._lock_process(id);
  result orch.processes;
BEGIN
  UPDATE orch.processes p SET is_active = false, next_run_at = NULL, run_queued = false,
                              updated_at = clock_timestamp()
  WHERE p.id = proc.id RETURNING * INTO result;
  PERFORM orch._log('paused', result.owner, result.id, NULL, NULL);
  RETURN result;
END
$$;

-- Turns the schedule on again; the next tick is the first one from now.
CREATE FUNCTION orch._api_resume(id text) RETURNS orch.processes
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes := orch._lock_process(id);
  result orch.processes;
BEGIN
  UPDATE orch.processes p SET is_active = true,
         next_run_at = orch._next_run_at(p.schedule, p.timezone, clock_timestamp()), updated_at = clock_timestamp()
  WHERE p.id = proc.id RETURNING * INTO result;
  PERFORM orch._log('resumed', result.owner, result.id, NULL, NULL);
  PERFORM orch._wake_scheduler_at_commit(false);
  RETURN result;
END
$$;


-- A start by the system: a tick (triggered_by SCHEDULED) or a queued event
-- ('event:<name>', with its input). A run that cannot be made (say, the
-- type was redefined with a placeholder the input lacks) is recorded as a
-- FAILED run saying why, instead of failing the scheduler's transaction.
CREATE FUNCTION orch._start_scheduled_run(proc orch.processes, catch_up boolean, triggered_by text DEFAULT 'SCHEDULED',
                                          input jsonb DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  new_run_id bigint;
  message text;
  kind orch.event_kind := CASE WHEN triggered_by <> 'SCHEDULED' THEN 'event_run'
                               WHEN catch_up THEN 'catch_up_run' ELSE 'scheduled_run' END;
BEGIN
  BEGIN
    new_run_id := orch._start_run(proc.id, proc.owner, false, triggered_by, catch_up, kind, NULL, input);
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS message = MESSAGE_TEXT;
    INSERT INTO orch.runs (process_id, owner, status, triggered_by, catch_up, total_tasks, completed_at, error_message)
    VALUES (proc.id, proc.owner, 'FAILED', triggered_by, catch_up, 0, clock_timestamp(),
            CASE WHEN triggered_by = 'SCHEDULED' THEN 'the scheduled run' ELSE 'the run for ' || triggered_by END
              || ' could not start: ' || message)
    RETURNING id INTO new_run_id;
    IF proc.status <> 'IN_PROGRESS' THEN
      UPDATE orch.processes p SET status = 'FAILED', current_run_id = new_run_id, last_run_at = clock_timestamp()
      WHERE p.id = proc.id;
    END IF;
    PERFORM orch._log(kind, proc.owner, proc.id, new_run_id, NULL);
  END;
END
$$;

-- Fires due ticks, at most max_count a call (so that the first commands of
-- a burst start while the rest are still being fired), by each process's
-- policies, and returns the milliseconds until the next tick (0 if more are
-- due now), or NULL if there is none. A tick is missed when it came while
-- no scheduler was running (before this one started) or a later tick has
-- passed too: misfire 'skip' then drops it, 'run_once' starts one catch-up
-- run for all the missed ticks.
CREATE FUNCTION orch._fire_due_schedules(max_count integer DEFAULT 100) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes;
  now_ timestamptz := clock_timestamp();
  scheduler_started timestamptz := (SELECT a.backend_start FROM pg_catalog.pg_stat_get_activity(pg_backend_pid()) a);
  due text[];
  more_due boolean;
  tick timestamptz;
  missed boolean;
  message text;
BEGIN
  -- The due ticks, earliest first (an index scan), one more than a batch.
  due := ARRAY(SELECT p.id FROM orch.processes p WHERE p.next_run_at <= now_
               ORDER BY p.next_run_at, p.id LIMIT max_count + 1);
  more_due := cardinality(due) > max_count;
  IF more_due THEN
    -- More than a batch is due: owners take turns, as for claiming tasks,
    -- every owner's k-th due tick before anyone's k+1-th, so thousands of
    -- one owner's schedules delay another's tick by one batch at most. One
    -- index probe per owner with schedules.
    due := ARRAY(
      WITH RECURSIVE owners AS (
        (SELECT p.owner FROM orch.processes p WHERE p.next_run_at IS NOT NULL ORDER BY p.owner LIMIT 1)
        UNION ALL
        SELECT (SELECT p.owner FROM orch.processes p WHERE p.next_run_at IS NOT NULL AND p.owner > o.owner
                ORDER BY p.owner LIMIT 1)
        FROM owners o WHERE o.owner IS NOT NULL)
      SELECT d.id
      FROM owners o CROSS JOIN LATERAL (
        SELECT p.id, p.next_run_at, row_number() OVER (ORDER BY p.next_run_at, p.id) AS turn
        FROM orch.processes p WHERE p.owner = o.owner AND p.next_run_at <= now_
        ORDER BY p.next_run_at, p.id LIMIT max_count) d
      WHERE o.owner IS NOT NULL
      ORDER BY d.turn, d.next_run_at, d.id LIMIT max_count);
  END IF;
  IF cardinality(due) > 0 THEN
    FOR proc IN
      SELECT p.* FROM unnest(due) WITH ORDINALITY AS d(id, n) JOIN orch.processes p ON p.id = d.id
      WHERE p.next_run_at <= now_
      ORDER BY d.n
      FOR UPDATE OF p SKIP LOCKED
    LOOP
      BEGIN
        tick := proc.next_run_at;
        missed := tick < scheduler_started OR orch._next_run_at(proc.schedule, proc.timezone, tick) <= now_;
        UPDATE orch.processes p SET next_run_at = orch._next_run_at(proc.schedule, proc.timezone, now_)
        WHERE p.id = proc.id;
        IF missed AND proc.misfire_policy = 'skip' THEN
          PERFORM orch._log('tick_missed', proc.owner, proc.id, NULL, jsonb_build_object('tick', tick));
        ELSIF proc.status = 'IN_PROGRESS' AND proc.overlap_policy = 'skip' THEN
          PERFORM orch._log('tick_skipped', proc.owner, proc.id, proc.current_run_id,
                                  jsonb_build_object('tick', tick, 'reason', 'a run is in progress'));
        ELSIF proc.status = 'IN_PROGRESS' AND proc.overlap_policy = 'queue' THEN
          IF proc.run_queued THEN
            PERFORM orch._log('tick_skipped', proc.owner, proc.id, proc.current_run_id,
                                    jsonb_build_object('tick', tick, 'reason', 'a run is already queued'));
          ELSE
            UPDATE orch.processes p SET run_queued = true, queued_event = NULL, queued_input = NULL WHERE p.id = proc.id;
            PERFORM orch._log('tick_queued', proc.owner, proc.id, proc.current_run_id, jsonb_build_object('tick', tick));
          END IF;
        ELSE
          PERFORM orch._start_scheduled_run(proc, missed);
        END IF;
      EXCEPTION WHEN OTHERS THEN
        -- Nothing of one process may fail the others' ticks: its schedule is
        -- paused, saying why, rather than tried again every turn.
        GET STACKED DIAGNOSTICS message = MESSAGE_TEXT;
        UPDATE orch.processes p SET is_active = false, next_run_at = NULL, run_queued = false WHERE p.id = proc.id;
        PERFORM orch._log('schedule_paused', proc.owner, proc.id, NULL,
                                jsonb_build_object('tick', proc.next_run_at, 'error', message));
      END;
    END LOOP;
  END IF;
  -- 0 when more than this batch was due; NULL when no schedule is left
  -- (greatest() would make that 0: a busy loop); min() is one index probe.
  -- A tick still due after the batch is one whose row someone holds (SKIP
  -- LOCKED): looked at again a little later, not at once.
  IF more_due THEN
    RETURN 0;
  END IF;
  RETURN (SELECT CASE WHEN n.next_tick <= clock_timestamp() THEN 100
                      ELSE ceil(extract(epoch FROM n.next_tick - clock_timestamp()) * 1000)::bigint END
          FROM (SELECT min(p.next_run_at) AS next_tick FROM orch.processes p) n WHERE n.next_tick IS NOT NULL);
END
$$;

-- Starts the queued run (a tick's or an event's) of processes whose run
-- just ended (overlap 'queue').
CREATE FUNCTION orch._start_queued_runs(run_ids bigint[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes;
BEGIN
  FOR proc IN SELECT p.* FROM orch.runs r JOIN orch.processes p ON p.id = r.process_id
              WHERE r.id = ANY (run_ids) AND p.current_run_id = r.id AND p.run_queued AND p.status <> 'IN_PROGRESS'
              FOR UPDATE OF p LOOP
    UPDATE orch.processes p SET run_queued = false, queued_event = NULL, queued_input = NULL WHERE p.id = proc.id;
    IF proc.queued_event IS NULL THEN
      PERFORM orch._start_scheduled_run(proc, false);
    ELSE
      PERFORM orch._start_scheduled_run(proc, false, 'event:' || proc.queued_event, proc.queued_input);
    END IF;
  END LOOP;
END
$$;
-- pg_orch: events. A process subscribed to an event gets a run whenever
-- someone who may start it emits the event (orch.emit), in the emitter's
-- transaction, with the event's payload over its input.

-- Subscribes a process to an event (again: nothing changes).
CREATE FUNCTION orch._api_on_event(process_id text, event text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes;
BEGIN
  PERFORM orch._check_event_name(event);
  proc := orch._lock_process(process_id);
  INSERT INTO orch.event_subscriptions (process_id, event, owner)
  VALUES (proc.id, _api_on_event.event, proc.owner)
  ON CONFLICT DO NOTHING;
  IF FOUND THEN
    PERFORM orch._log('subscribed', proc.owner, proc.id, NULL, jsonb_build_object('event', event));
  END IF;
END
$$;

CREATE FUNCTION orch._api_off_event(process_id text, event text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes;
BEGIN
  PERFORM orch._check_event_name(event);
  proc := orch._lock_process(process_id);
  DELETE FROM orch.event_subscriptions s WHERE s.process_id = proc.id AND s.event = _api_off_event.event;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'process "%" is not subscribed to event "%"', proc.id, event USING ERRCODE = 'undefined_object';
  END IF;
  PERFORM orch._log('unsubscribed', proc.owner, proc.id, NULL, jsonb_build_object('event', event));
END
$$;

CREATE FUNCTION orch._check_event_name(event text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF event IS NULL THEN
    RAISE EXCEPTION 'event name must not be null' USING ERRCODE = 'null_value_not_allowed';
  ELSIF event !~ '^[A-Za-z0-9_.:-]{1,100}$' THEN
    RAISE EXCEPTION 'invalid event name "%"', event USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Use 1 to 100 letters, digits, "_", ".", ":" or "-".';
  END IF;
END
$$;

-- Starts a run of every process subscribed to `event` that the caller may
-- start, by its overlap policy, with input = its input || payload, and
-- returns the runs started (queued or skipped ones are not). Processes the
-- caller may not start are left alone and not mentioned. A process that
-- cannot take this payload (too large, variables that collide) or whose row
-- another transaction holds is skipped, saying why: a subscriber, whoever
-- shared it, never makes the emitter's transaction fail or wait for long.
CREATE FUNCTION orch._api_emit(event text, payload jsonb) RETURNS bigint[]
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET lock_timeout = '200ms'
AS $$
DECLARE
  proc orch.processes;
  input jsonb;
  new_run_id bigint;
  started bigint[] := '{}';
  message text;
  waited_since timestamptz := NULL;
BEGIN
  PERFORM orch._writer('emit events');
  PERFORM orch._check_event_name(event);
  IF payload IS NULL THEN
    RAISE EXCEPTION 'event payload must not be null' USING ERRCODE = 'null_value_not_allowed';
  ELSIF jsonb_typeof(payload) <> 'object' THEN
    RAISE EXCEPTION 'event payload must be a JSON object, not %', jsonb_typeof(payload)
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- Checked before any row is locked: one may not hold up what one may not start.
  FOR proc IN
    SELECT p.* FROM orch.event_subscriptions s JOIN orch.processes p ON p.id = s.process_id
    WHERE s.event = _api_emit.event AND orch._may('edit', p.id, p.owner)
    ORDER BY p.id
  LOOP
    BEGIN
      -- A held row is waited for 200 ms, and for one second in all; then skipped.
      IF waited_since IS NULL OR clock_timestamp() - waited_since < interval '1 second' THEN
        SELECT * INTO proc FROM orch.processes p WHERE p.id = proc.id FOR UPDATE;
      ELSE
        SELECT * INTO proc FROM orch.processes p WHERE p.id = proc.id FOR UPDATE NOWAIT;
      END IF;
      CONTINUE WHEN NOT FOUND;
      input := proc.input_data || payload;
      IF octet_length(input::text) > pg_size_bytes(current_setting('orch.max_input_size')) THEN
        RAISE EXCEPTION 'its input with the payload is % bytes, more than orch.max_input_size (%)',
          octet_length(input::text), current_setting('orch.max_input_size') USING ERRCODE = 'program_limit_exceeded';
      END IF;
      IF EXISTS (SELECT 1 FROM orch.process_type_versions v
                 WHERE v.type = proc.type AND v.version = proc.type_version AND v.runs_os_commands) THEN
        PERFORM orch._check_input_environment(input);
      END IF;
      IF proc.status = 'IN_PROGRESS' AND proc.overlap_policy = 'skip' THEN
        PERFORM orch._log('event_skipped', proc.owner, proc.id, proc.current_run_id,
                          jsonb_build_object('event', event, 'reason', 'a run is in progress'));
      ELSIF proc.status = 'IN_PROGRESS' AND proc.overlap_policy = 'queue' THEN
        IF proc.run_queued THEN
          PERFORM orch._log('event_skipped', proc.owner, proc.id, proc.current_run_id,
                            jsonb_build_object('event', event, 'reason', 'a run is already queued'));
        ELSE
          UPDATE orch.processes p SET run_queued = true, queued_event = _api_emit.event, queued_input = input
          WHERE p.id = proc.id;
          PERFORM orch._log('event_queued', proc.owner, proc.id, proc.current_run_id,
                            jsonb_build_object('event', event));
        END IF;
      ELSE
        new_run_id := orch._start_run(proc.id, proc.owner, false, 'event:' || event, false, 'event_run',
                                      jsonb_build_object('event', event), input);
        started := started || new_run_id;
      END IF;
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS message = MESSAGE_TEXT;
      IF SQLSTATE = '55P03' THEN  -- lock_not_available
        waited_since := coalesce(waited_since, clock_timestamp());
        message := 'another transaction holds the process';
      END IF;
      PERFORM orch._log('event_skipped', proc.owner, proc.id, NULL, jsonb_build_object('event', event, 'reason', message));
    END;
  END LOOP;
  PERFORM orch._log('emitted', orch.current_owner(), NULL, NULL,
                    jsonb_build_object('event', event, 'runs', to_jsonb(started)));
  RETURN started;
END
$$;
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
-- pg_orch: the scheduler's side (called by the background worker only)

-- The outputs of a task's ancestors (the tasks it depends on, directly or
-- through others) by task name: an sql task's $2, a shell task's
-- ORCH_OUTPUTS, what {{tasks.NAME.output}} placeholders are filled from.
CREATE FUNCTION orch._ancestor_outputs(task_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  run bigint;
  direct integer[];
BEGIN
  SELECT t.run_id, t.depends_on INTO run, direct FROM orch.tasks t WHERE t.id = task_id;
  RETURN (
    WITH RECURSIVE ancestors(task_index) AS (
      SELECT i FROM unnest(direct) AS i
      UNION
      SELECT i FROM ancestors a JOIN orch.tasks d ON d.run_id = run AND d.task_index = a.task_index
        AND d.item_index IS NULL
        CROSS JOIN LATERAL unnest(d.depends_on) AS i)
    -- (a fan-out's output is its parent row's: the instances' in item order)
    SELECT coalesce(jsonb_object_agg(d.name, d.output_data), '{}')
    FROM ancestors a JOIN orch.tasks d ON d.run_id = run AND d.task_index = a.task_index AND d.item_index IS NULL);
END
$$;

-- A task's output as jsonb, or NULL when PostgreSQL refuses it (the
-- executors check outputs first; this keeps a value they let through from
-- failing the scheduler's transaction).
CREATE FUNCTION orch._output_jsonb(output text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN output::jsonb;
EXCEPTION WHEN OTHERS THEN
  RETURN NULL;
END
$$;
-- Marks up to max_count ready tasks DISPATCHED and returns what to launch.
-- Fair share: owners take turns (every owner's k-th running task comes
-- before anyone's k+1-th, then in the order they became ready), no owner
-- has more than per_owner running at once, and no type version more than
-- its max_concurrent. One index probe per owner with ready tasks, not a
-- scan of them.
CREATE FUNCTION orch._claim_tasks(max_count integer, per_owner integer)
RETURNS TABLE (id bigint, run_id bigint, process_id text, name text, kind text, command text[],
               shell text, working_directory text, env jsonb, input_data jsonb, timeout_ms bigint, attempt integer,
               outputs jsonb, item jsonb, item_index integer)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  -- PL/pgSQL keeps the statement's plan across calls (an SQL function would
  -- plan it every time).
  RETURN QUERY WITH RECURSIVE owners AS (
    (SELECT t.owner FROM orch.tasks t WHERE t.status = 'PENDING' AND t.ready_at IS NOT NULL
     ORDER BY t.owner LIMIT 1)
    UNION ALL
    SELECT (SELECT t.owner FROM orch.tasks t WHERE t.status = 'PENDING' AND t.ready_at IS NOT NULL AND t.owner > o.owner
            ORDER BY t.owner LIMIT 1)
    FROM owners o WHERE o.owner IS NOT NULL),
  running AS (  -- the tasks running now: at most the slots
    SELECT t.owner, t.type, t.type_version, t.run_id, t.task_index, t.max_parallel
    FROM orch.tasks t WHERE t.status IN ('DISPATCHED', 'RUNNING') AND t.fan_out IS NULL),
  busy AS (
    SELECT o.owner, (SELECT count(*) FROM running r WHERE r.owner = o.owner) AS running
    FROM owners o WHERE o.owner IS NOT NULL),
  full_versions AS (  -- type versions at their max_concurrent
    SELECT r.type, r.type_version
    FROM running r JOIN orch.process_type_versions v ON v.type = r.type AND v.version = r.type_version
    WHERE v.max_concurrent IS NOT NULL
    GROUP BY r.type, r.type_version, v.max_concurrent HAVING count(*) >= v.max_concurrent),
  full_fan_outs AS (  -- fan-outs with max_parallel instances running
    SELECT r.run_id, r.task_index FROM running r WHERE r.max_parallel IS NOT NULL
    GROUP BY r.run_id, r.task_index, r.max_parallel HAVING count(*) >= r.max_parallel),
  turns AS (
    SELECT c.id, c.type, c.type_version, c.run_id, c.task_index, c.max_parallel, b.running + c.rank AS turn,
           c.ready_at
    FROM busy b CROSS JOIN LATERAL (
      SELECT t.id, t.type, t.type_version, t.run_id, t.task_index, t.max_parallel, t.ready_at,
             row_number() OVER (ORDER BY t.ready_at, t.id) AS rank
      FROM (SELECT t.id, t.type, t.type_version, t.run_id, t.task_index, t.max_parallel, t.ready_at
            FROM orch.tasks t
            WHERE t.owner = b.owner AND t.status = 'PENDING' AND t.ready_at IS NOT NULL
              AND t.ready_at <= clock_timestamp()
            ORDER BY t.ready_at, t.id
            -- An owner's tasks waiting behind more than this many of a full
            -- type version of theirs wait a turn longer; nobody else does.
            LIMIT 1000) t
      WHERE NOT EXISTS (SELECT 1 FROM full_versions f WHERE f.type = t.type AND f.type_version = t.type_version)
        AND NOT EXISTS (SELECT 1 FROM full_fan_outs f WHERE f.run_id = t.run_id AND f.task_index = t.task_index)
      ORDER BY t.ready_at, t.id
      LIMIT least(greatest(per_owner - b.running, 0), max_count)) c),
  room AS (  -- room left under the max_concurrent of the candidates' type versions
    SELECT v.type, v.version,
           v.max_concurrent - (SELECT count(*) FROM running r WHERE r.type = v.type AND r.type_version = v.version)
             AS room
    FROM orch.process_type_versions v
    WHERE v.max_concurrent IS NOT NULL AND (v.type, v.version) IN (SELECT u.type, u.type_version FROM turns u)),
  fitting AS (  -- of a limited type version or fan-out, no more than its room, in turn order
    SELECT u.id, u.turn, u.ready_at
    FROM (SELECT u.*, row_number() OVER (PARTITION BY u.type, u.type_version ORDER BY u.turn, u.ready_at, u.id) AS nth,
                 row_number() OVER (PARTITION BY u.run_id, u.task_index ORDER BY u.turn, u.ready_at, u.id) AS nth_instance
          FROM turns u) u
    LEFT JOIN room l ON l.type = u.type AND l.version = u.type_version
    WHERE (l.type IS NULL OR u.nth <= l.room)
      AND (u.max_parallel IS NULL
           OR u.nth_instance <= u.max_parallel - (SELECT count(*) FROM running r
                                                  WHERE r.run_id = u.run_id AND r.task_index = u.task_index))),
  ready AS (
    SELECT t.id FROM (SELECT u.id FROM fitting u ORDER BY u.turn, u.ready_at, u.id LIMIT max_count) u
    JOIN orch.tasks t ON t.id = u.id
    WHERE t.status = 'PENDING'
    FOR UPDATE OF t SKIP LOCKED)
  UPDATE orch.tasks t SET status = 'DISPATCHED', attempt = t.attempt + 1, pid = NULL,
                          exit_code = NULL, error_message = NULL
  FROM ready WHERE t.id = ready.id
  RETURNING t.id, t.run_id, t.process_id, t.name, t.kind::text, t.command, t.shell, t.working_directory,
            t.env, CASE WHEN t.kind <> 'sql' THEN (SELECT r.input_data FROM orch.runs r WHERE r.id = t.run_id) END,
            (extract(epoch FROM t.timeout) * 1000)::bigint, t.attempt,
            CASE WHEN t.kind = 'shell' AND cardinality(t.depends_on) > 0 THEN orch._ancestor_outputs(t.id) END,
            t.item, t.item_index;
END
$$;

-- Tasks claimed but not launched because no background worker slot was
-- free: PENDING again, the attempt not counted, ready a second later.
CREATE FUNCTION orch._tasks_unclaimed(ids bigint[]) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$
  UPDATE orch.tasks t SET status = 'PENDING', attempt = t.attempt - 1, ready_at = clock_timestamp() + interval '1 second'
  WHERE t.id = ANY (ids) AND t.status = 'DISPATCHED'
$$;

-- Milliseconds until the next waiting task becomes ready (a retry delay), or
-- NULL. Tasks ready now but held back (their owner's or type's limit) are
-- claimed when a running task ends, which wakes the scheduler anyway.
CREATE FUNCTION orch._ms_until_next_ready() RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  -- Each owner's earliest delayed task, one probe of the claim's index per
  -- owner with ready tasks (an index on ready_at alone would be one more
  -- index written for every task of every start).
  RETURN (
    WITH RECURSIVE owners AS (
      (SELECT t.owner FROM orch.tasks t WHERE t.status = 'PENDING' AND t.ready_at IS NOT NULL
       ORDER BY t.owner LIMIT 1)
      UNION ALL
      SELECT (SELECT t.owner FROM orch.tasks t WHERE t.status = 'PENDING' AND t.ready_at IS NOT NULL
                AND t.owner > o.owner ORDER BY t.owner LIMIT 1)
      FROM owners o WHERE o.owner IS NOT NULL)
    SELECT ceil(extract(epoch FROM min(n.ready_at) - clock_timestamp()) * 1000)::bigint
    FROM owners o CROSS JOIN LATERAL (
      SELECT t.ready_at FROM orch.tasks t
      WHERE t.owner = o.owner AND t.status = 'PENDING' AND t.ready_at > clock_timestamp()
      ORDER BY t.ready_at LIMIT 1) n
    WHERE o.owner IS NOT NULL);
END
$$;

-- started: [{"id": task id, "pid": pid, "started_at": Unix time of the spawn}, ...]
CREATE FUNCTION orch._tasks_started(started jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  WITH s AS (
    UPDATE orch.tasks t SET status = 'RUNNING', pid = s.pid, started_at = to_timestamp(s.started_at)
    FROM jsonb_to_recordset(started) AS s(id bigint, pid integer, started_at float8)
    WHERE t.id = s.id AND t.status = 'DISPATCHED'
    RETURNING t.*)
  INSERT INTO orch.events (actor, owner, process_id, run_id, kind, detail)
  SELECT 'pg_orch scheduler', s.owner, s.process_id, s.run_id, 'task_started',
         jsonb_build_object('task', s.name, 'attempt', s.attempt, 'pid', s.pid)
  FROM s;
END
$$;

-- Of the given tasks, those whose run was stopped, or whose row is gone:
-- the scheduler kills them.
CREATE FUNCTION orch._stopped_tasks(ids bigint[]) RETURNS SETOF bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
  SELECT i.id FROM unnest(ids) AS i(id)
  WHERE NOT EXISTS (SELECT 1 FROM orch.tasks t JOIN orch.runs r ON r.id = t.run_id
                    WHERE t.id = i.id AND r.status = 'IN_PROGRESS')
$$;

-- Records finished attempts and moves their runs on. finished: [{"id",
-- "ending", "exit_code", "output", "truncated", "error"}, ...], the facts
-- (src/core/task_records.hpp): ending is exited, signaled, timed_out,
-- stopped or spawn_failed. The task becomes COMPLETED, FAILED (no attempts
-- left), STOPPED, or PENDING again after its retry delay; a stopped run
-- retries nothing. Returns the runs that could not be moved on now (see
-- _advance_runs).
CREATE FUNCTION orch._tasks_finished(finished jsonb, wait boolean DEFAULT false)
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
    FROM done d)
  SELECT array_agg(DISTINCT done.run_id), bool_or(done.status IN ('FAILED', 'STOPPED'))
    INTO touched, any_failed FROM done;

  IF touched IS NULL THEN
    RETURN '{}';
  END IF;
  RETURN orch._advance_runs(touched, any_failed, wait);
END
$$;

-- The steps between "its dependencies completed" and "ready to claim" that
-- can fail a task, for runs of more than one task or with a fan-out, until
-- nothing more changes (an empty fan-out completes at once and may make the
-- next ready):
--   * a fan-out whose instances all ended completes, with their outputs in
--     item order, or fails (or stops) with the first that did not complete;
--   * a command using other tasks' outputs gets them
--     ({{tasks.NAME.output.PATH}});
--   * a fan-out makes one instance per item (at most orch.max_fan_out),
--     each with its item in its command; after orch.retry, the instances it
--     has already are run again instead.
-- A task that cannot be made ready FAILs saying why. Returns whether one did.
CREATE FUNCTION orch._prepare_ready_tasks(run_ids bigint[]) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  task record;
  message text;
  items jsonb;
  new_command text[];
  changed boolean := true;
  any_failed boolean := false;
  completed boolean;
  stopped boolean;
  outputs jsonb;
  max_items integer := current_setting('orch.max_fan_out')::integer;
BEGIN
  WHILE changed LOOP
    changed := false;

    -- Fan-outs whose instances have all ended (an index probe each while
    -- they have not: a fan-out may have thousands).
    FOR task IN
      SELECT t.id, t.name, t.owner, t.process_id, t.run_id, t.attempt, t.task_index
      FROM unnest(run_ids) AS r(id) JOIN orch.tasks t ON t.run_id = r.id
      WHERE t.fan_out IS NOT NULL AND t.status = 'RUNNING'
        AND NOT EXISTS (SELECT 1 FROM orch.tasks i
                        WHERE i.run_id = t.run_id AND i.task_index = t.task_index AND i.item_index IS NOT NULL
                          AND i.status IN ('PENDING', 'DISPATCHED', 'RUNNING'))
    LOOP
      SELECT bool_and(i.status = 'COMPLETED'), bool_or(i.status = 'STOPPED'),
             jsonb_agg(i.output_data ORDER BY i.item_index),
             (array_agg(format('instance %s (item %s): %s', i.item_index, i.item, i.error_message)
                        ORDER BY i.completed_at, i.item_index) FILTER (WHERE i.status <> 'COMPLETED'))[1]
        INTO completed, stopped, outputs, message
      FROM orch.tasks i
      WHERE i.run_id = task.run_id AND i.task_index = task.task_index AND i.item_index IS NOT NULL;
      UPDATE orch.tasks t
      SET status = CASE WHEN completed THEN 'COMPLETED' WHEN stopped THEN 'STOPPED' ELSE 'FAILED' END::orch.task_status,
          completed_at = clock_timestamp(), output_data = CASE WHEN completed THEN outputs END,
          error_message = message
      WHERE t.id = task.id;
      PERFORM orch._log(CASE WHEN completed THEN 'task_completed' WHEN stopped THEN 'task_stopped'
                             ELSE 'task_failed' END,
                        task.owner, task.process_id, task.run_id,
                        jsonb_build_object('task', task.name, 'attempt', task.attempt, 'error', message));
      any_failed := any_failed OR NOT completed;
      changed := true;
    END LOOP;

    -- Tasks whose dependencies completed and that need them: commands using
    -- outputs, and fan-outs.
    FOR task IN
      SELECT t.id, t.name, t.command, t.owner, t.process_id, t.run_id, t.attempt, t.task_index, t.fan_out,
             t.uses_outputs, r.input_data
      FROM unnest(run_ids) AS i(id) JOIN orch.runs r ON r.id = i.id JOIN orch.tasks t ON t.run_id = r.id
      WHERE r.status = 'IN_PROGRESS' AND (t.uses_outputs OR t.fan_out IS NOT NULL) AND t.status = 'PENDING'
        AND t.ready_at IS NULL AND t.item_index IS NULL
        AND NOT EXISTS (SELECT 1 FROM orch.tasks d WHERE d.run_id = t.run_id AND d.task_index = ANY (t.depends_on)
                          AND d.status <> 'COMPLETED')
      ORDER BY t.task_index
    LOOP
      BEGIN
        new_command := task.command;
        items := NULL;
        IF task.uses_outputs THEN
          new_command := orch._substitute_outputs(new_command, orch._ancestor_outputs(task.id), task.name);
        END IF;
        IF task.fan_out IS NULL THEN
          UPDATE orch.tasks t SET command = new_command, uses_outputs = false,
                                  ready_at = clock_timestamp()
          WHERE t.id = task.id;
        ELSE
          IF NOT EXISTS (SELECT 1 FROM orch.tasks i WHERE i.run_id = task.run_id AND i.task_index = task.task_index
                           AND i.item_index IS NOT NULL) THEN
            items := orch._fan_out_items(task.fan_out, task.input_data, orch._ancestor_outputs(task.id), task.name);
            IF jsonb_array_length(items) > max_items THEN
              RAISE EXCEPTION 'task "%": "for_each" has % items, more than orch.max_fan_out (%)', task.name,
                jsonb_array_length(items), max_items USING ERRCODE = 'program_limit_exceeded';
            END IF;
            -- Each instance holds its own command: bounded, so that a large
            -- input value in a command cannot be copied thousands of times.
            IF octet_length(new_command::text)::bigint * jsonb_array_length(items) > 104857600 THEN
              RAISE EXCEPTION 'task "%": % instances of a % byte command are more than 100MB', task.name,
                jsonb_array_length(items), octet_length(new_command::text) USING ERRCODE = 'program_limit_exceeded';
            END IF;
            -- One set-based insert of every instance.
            INSERT INTO orch.tasks (run_id, process_id, owner, type, type_version, task_index, name, kind, command,
                                    shell, sql, working_directory, env, timeout, max_retries, retry_delay,
                                    retry_backoff, depends_on, max_parallel, item_index, item, ready_at)
            SELECT t.run_id, t.process_id, t.owner, t.type, t.type_version, t.task_index, t.name, t.kind,
                   CASE WHEN t.kind = 'command'
                        THEN orch._substitute_item(new_command, e.item, (e.n - 1)::integer, t.name)
                   END,
                   t.shell, t.sql, t.working_directory, t.env, t.timeout, t.max_retries, t.retry_delay,
                   t.retry_backoff, t.depends_on, t.max_parallel, (e.n - 1)::integer, e.item, clock_timestamp()
            FROM orch.tasks t CROSS JOIN jsonb_array_elements(items) WITH ORDINALITY AS e(item, n)
            WHERE t.id = task.id;
          END IF;
          UPDATE orch.tasks t SET command = new_command, uses_outputs = false,
                                  status = 'DISPATCHED', started_at = clock_timestamp()
          WHERE t.id = task.id;
          UPDATE orch.tasks t SET status = 'RUNNING' WHERE t.id = task.id;
          -- No items: done at once, with no outputs.
          IF items IS NOT NULL AND jsonb_array_length(items) = 0 THEN
            UPDATE orch.tasks t SET status = 'COMPLETED', completed_at = clock_timestamp(), output_data = '[]'
            WHERE t.id = task.id;
          END IF;
          PERFORM orch._log('task_started', task.owner, task.process_id, task.run_id,
                            jsonb_build_object('task', task.name, 'instances',
                                               (SELECT count(*) FROM orch.tasks i WHERE i.run_id = task.run_id
                                                  AND i.task_index = task.task_index AND i.item_index IS NOT NULL)));
        END IF;
        changed := true;
      EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS message = MESSAGE_TEXT;
        UPDATE orch.tasks t SET status = 'FAILED', completed_at = clock_timestamp(), error_message = message
        WHERE t.id = task.id;
        PERFORM orch._log('task_failed', task.owner, task.process_id, task.run_id,
                          jsonb_build_object('task', task.name, 'attempt', task.attempt, 'error', message));
        any_failed := true;
        changed := true;
      END;
    END LOOP;
  END LOOP;
  RETURN any_failed;
END
$$;

-- Moves runs on after task changes: skips what depends on a failure (only
-- looked for when a task failed or stopped), makes tasks whose dependencies
-- completed ready, and finishes runs with nothing left to do, together with
-- their process.
--
-- Each run is moved on holding its process's row, so that the completions
-- of one run's tasks (sql tasks record their own, in parallel) are
-- serialised and the last always sees the others and ends the run. Every
-- API function that changes a run or its tasks locks the process first, so
-- holding it, nothing of the run is another's. With wait, the lock is waited
-- for (an sql task's worker, an API call); without, runs whose process row
-- someone holds (a user's open transaction that paused or stopped it) are
-- left alone and returned, for the scheduler to try again later: it never
-- waits on a lock a user can hold.
CREATE FUNCTION orch._advance_runs(run_ids bigint[], look_for_skips boolean, wait boolean DEFAULT true)
RETURNS bigint[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  requested bigint[] := run_ids;
  skipped integer;
  queued boolean;
BEGIN
  IF wait THEN
    PERFORM 1 FROM orch.processes p
    WHERE p.id IN (SELECT r.process_id FROM orch.runs r WHERE r.id = ANY (requested)) ORDER BY p.id FOR UPDATE;
  ELSE
    run_ids := ARRAY(SELECT r.id FROM orch.runs r JOIN orch.processes p ON p.id = r.process_id
                     WHERE r.id = ANY (requested) FOR UPDATE OF p SKIP LOCKED);
  END IF;

  -- Each statement starts from the runs asked for (unnest, then the
  -- primary key): a generic plan of "r.id = ANY ($1)" scans every run.

  IF EXISTS (SELECT 1 FROM unnest(run_ids) AS i(id) JOIN orch.runs r ON r.id = i.id
             WHERE r.status = 'IN_PROGRESS' AND (r.total_tasks > 1 OR r.has_fan_out)) THEN
    look_for_skips := orch._prepare_ready_tasks(run_ids) OR look_for_skips;
  END IF;

  WHILE look_for_skips LOOP
    WITH s AS (
      UPDATE orch.tasks t SET status = 'SKIPPED', completed_at = clock_timestamp(),
             error_message = 'a task it depends on did not complete'
      FROM unnest(run_ids) AS i(id) JOIN orch.runs r ON r.id = i.id
      WHERE r.id = t.run_id AND r.status = 'IN_PROGRESS'
        AND t.status = 'PENDING'
        AND EXISTS (SELECT 1 FROM orch.tasks d WHERE d.run_id = t.run_id AND d.task_index = ANY (t.depends_on)
                      AND d.status IN ('FAILED', 'SKIPPED', 'STOPPED'))
      RETURNING t.*)
    INSERT INTO orch.events (actor, owner, process_id, run_id, kind, detail)
    SELECT 'pg_orch scheduler', s.owner, s.process_id, s.run_id, 'task_skipped', jsonb_build_object('task', s.name)
    FROM s;
    GET DIAGNOSTICS skipped = ROW_COUNT;
    look_for_skips := skipped > 0;
  END LOOP;

  -- (A run of one task has no task waiting for another, unless it fans out:
  -- after orch.retry its instances wait here.)
  UPDATE orch.tasks t SET ready_at = clock_timestamp()
  FROM unnest(run_ids) AS i(id) JOIN orch.runs r ON r.id = i.id
  WHERE r.id = t.run_id AND r.status = 'IN_PROGRESS' AND (r.total_tasks > 1 OR r.has_fan_out)
    AND t.status = 'PENDING' AND t.ready_at IS NULL AND NOT t.uses_outputs AND t.fan_out IS NULL
    AND NOT EXISTS (SELECT 1 FROM orch.tasks d WHERE d.run_id = t.run_id AND d.task_index = ANY (t.depends_on)
                      AND d.status <> 'COMPLETED');

  WITH finished AS (
    SELECT r.id,
           bool_and(t.status = 'COMPLETED') AS all_completed,
           (array_agg(format('task "%s" failed: %s', t.name, t.error_message) ORDER BY t.completed_at, t.task_index)
              FILTER (WHERE t.status = 'FAILED'))[1] AS first_error
    FROM unnest(run_ids) AS i(id) JOIN orch.runs r ON r.id = i.id JOIN orch.tasks t ON t.run_id = r.id
    WHERE r.status = 'IN_PROGRESS'
    GROUP BY r.id
    HAVING bool_and(t.status NOT IN ('PENDING', 'DISPATCHED', 'RUNNING'))),
  ended AS (
    UPDATE orch.runs r
    SET status = CASE WHEN f.all_completed THEN 'COMPLETED' ELSE 'FAILED' END::orch.status,
        completed_at = clock_timestamp(), error_message = f.first_error,
        -- the outputs of the tasks nothing depends on
        output_data = (SELECT jsonb_object_agg(t.name, t.output_data) FROM orch.tasks t
                       WHERE t.run_id = r.id AND t.output_data IS NOT NULL AND t.item_index IS NULL
                         AND NOT EXISTS (SELECT 1 FROM orch.tasks d
                                         WHERE d.run_id = t.run_id AND t.task_index = ANY (d.depends_on)))
    FROM finished f WHERE r.id = f.id
    RETURNING r.id, r.process_id, r.owner, r.status, r.error_message),
  logged AS (
    INSERT INTO orch.events (actor, owner, process_id, run_id, kind, detail)
    SELECT 'pg_orch scheduler', e.owner, e.process_id, e.id,
           CASE e.status WHEN 'COMPLETED' THEN 'run_completed' ELSE 'run_failed' END,
           jsonb_build_object('error', e.error_message)
    FROM ended e),
  moved AS (
    UPDATE orch.processes p SET status = e.status, updated_at = clock_timestamp()
    FROM ended e WHERE p.id = e.process_id AND p.current_run_id = e.id
    RETURNING p.run_queued)
  SELECT bool_or(m.run_queued) INTO queued FROM moved m;
  IF queued THEN  -- overlap 'queue': a tick waited for one of these runs
    PERFORM orch._start_queued_runs(run_ids);
  END IF;
  RETURN ARRAY(SELECT unnest(requested) EXCEPT SELECT unnest(run_ids));
END
$$;

-- What a sql task's runner needs: the statement, the run's input (its $1),
-- and the role and JWT claims of the process's creator, as which it runs.
CREATE FUNCTION orch._sql_task_context(task_id bigint)
RETURNS TABLE (sql text, input_data jsonb, role_name text, jwt_claims jsonb, timeout_ms bigint, outputs jsonb)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
  SELECT t.sql, r.input_data, p.created_by_role, c.claims, (extract(epoch FROM t.timeout) * 1000)::bigint,
         orch._ancestor_outputs(t.id)
  FROM orch.tasks t JOIN orch.runs r ON r.id = t.run_id JOIN orch.processes p ON p.id = r.process_id
  LEFT JOIN orch.process_claims c ON c.process_id = p.id
  WHERE t.id = task_id AND t.kind = 'sql'
$$;

-- The task whose outcome this session's sql task worker is recording right
-- now, else NULL (src/pg/sql_task_runner.cpp).
CREATE FUNCTION orch._sql_task_recording() RETURNS bigint
LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'orch_sql_task_recording';

-- How an sql task's worker, which runs as the process's creator, records
-- the attempt's outcome in the transaction of its statement. Anyone may
-- call it; it acts only for that worker, at that moment, on that task.
CREATE FUNCTION orch._sql_task_finished(finished jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF orch._sql_task_recording() IS DISTINCT FROM (finished ->> 'id')::bigint
     OR NOT EXISTS (SELECT 1 FROM orch.tasks t
                    WHERE t.id = (finished ->> 'id')::bigint AND t.kind = 'sql' AND t.status = 'RUNNING'
                      AND t.pid = pg_backend_pid()) THEN
    RAISE EXCEPTION 'only the worker of a running sql task may record its outcome'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  PERFORM orch._tasks_finished(jsonb_build_array(finished), wait => true);
END
$$;

-- Tasks a previous scheduler left DISPATCHED or RUNNING (it crashed or the
-- server stopped): the caller kills their process groups and finishes them.
CREATE FUNCTION orch._orphaned_tasks()
RETURNS TABLE (id bigint, pid integer)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
  SELECT t.id, t.pid
  FROM orch.tasks t WHERE t.status IN ('DISPATCHED', 'RUNNING') AND t.fan_out IS NULL ORDER BY t.id
$$;

REVOKE ALL ON FUNCTION orch._fire_due_schedules(integer), orch._start_queued_runs(bigint[]),
  orch._start_scheduled_run(orch.processes, boolean, text, jsonb), orch._claim_tasks(integer, integer),
  orch._tasks_unclaimed(bigint[]), orch._ms_until_next_ready(),
  orch._tasks_started(jsonb), orch._stopped_tasks(bigint[]), orch._tasks_finished(jsonb, boolean),
  orch._advance_runs(bigint[], boolean, boolean), orch._orphaned_tasks(), orch._sql_task_context(bigint),
  orch._ancestor_outputs(bigint), orch._output_jsonb(text), orch._prepare_ready_tasks(bigint[]) FROM PUBLIC;
-- pg_orch: the API functions that change something. Each is the C entry
-- point orch_api (src/pg/identity.cpp), which refuses to run inside a
-- security-restricted operation, takes the caller to be the role calling it
-- (current_user at the call), and runs the function's body, the SECURITY
-- DEFINER orch._api_<name> with the same arguments, which only it can call.
CREATE FUNCTION orch.define_process_type(name text, tasks jsonb, description text DEFAULT NULL,
                                         max_concurrent integer DEFAULT NULL)
RETURNS orch.process_types LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.drop_process_type(name text) RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.grant_process_type(type text, grantee text) RETURNS void
LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.revoke_process_type(type text, grantee text) RETURNS void
LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';

CREATE FUNCTION orch.create_process(id text, type text, input_data jsonb DEFAULT '{}',
                                    schedule text DEFAULT NULL, timezone text DEFAULT NULL,
                                    overlap text DEFAULT 'skip', misfire text DEFAULT 'run_once')
RETURNS orch.processes LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.upgrade_process(id text) RETURNS orch.processes LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.start(id text, triggered_by text DEFAULT 'MANUAL') RETURNS bigint
LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.stop(id text) RETURNS bigint LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.retry(run_id bigint) RETURNS bigint LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.delete_process(id text) RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.share_process(id text, grantee text, can_edit boolean DEFAULT false) RETURNS void
LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.unshare_process(id text, grantee text) RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';

CREATE FUNCTION orch.on_event(process_id text, event text) RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.off_event(process_id text, event text) RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.emit(event text, payload jsonb DEFAULT '{}') RETURNS bigint[]
LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';

CREATE FUNCTION orch.set_schedule(id text, schedule text, timezone text DEFAULT NULL, overlap text DEFAULT NULL,
                                  misfire text DEFAULT NULL)
RETURNS orch.processes LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.pause(id text) RETURNS orch.processes LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.resume(id text) RETURNS orch.processes LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
-- pg_orch: roles, row level security and privileges. Users read the tables
-- (row level security decides which rows) and change anything only through
-- the API functions, whose bodies are SECURITY DEFINER, pin search_path, and
-- check with 15_access.sql. No table is writable by users.

-- The roles are created when missing and survive DROP EXTENSION, but grant
-- nothing once the schema is gone. Grant them to login roles, or to
-- PostgREST's authenticated role.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'orch_admin') THEN
    CREATE ROLE orch_admin NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'orch_user') THEN
    CREATE ROLE orch_user NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'orch_viewer') THEN
    CREATE ROLE orch_viewer NOLOGIN;
  END IF;
END
$$;

-- Row level security: the owner's rows, rows shared with one of the
-- caller's identities, or everything for admins. Forced, so that even the
-- tables' owner goes through it unless it is a superuser.
--
-- Each policy spells the rule out rather than calling one shared function:
-- a policy's expression is bound to its objects when it is created, while
-- an SQL function that the planner could inline would be parsed again
-- under the reader's search_path, and one it cannot inline (SET clause)
-- runs its query for every row.
ALTER TABLE orch.process_types ENABLE ROW LEVEL SECURITY;
ALTER TABLE orch.process_types FORCE ROW LEVEL SECURITY;
CREATE POLICY read_usable ON orch.process_types FOR SELECT USING (
  owner = (SELECT orch.current_owner()) OR (SELECT orch._is_admin())
  OR EXISTS (SELECT 1 FROM orch.process_type_grants g
             WHERE g.type = process_types.name AND g.grantee = ANY ((SELECT orch._identities())::text[])));

ALTER TABLE orch.process_type_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE orch.process_type_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY read_usable ON orch.process_type_versions FOR SELECT USING (
  owner = (SELECT orch.current_owner()) OR (SELECT orch._is_admin())
  OR EXISTS (SELECT 1 FROM orch.process_type_grants g
             WHERE g.type = process_type_versions.type AND g.grantee = ANY ((SELECT orch._identities())::text[])));

ALTER TABLE orch.process_type_tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE orch.process_type_tasks FORCE ROW LEVEL SECURITY;
CREATE POLICY read_usable ON orch.process_type_tasks FOR SELECT USING (
  owner = (SELECT orch.current_owner()) OR (SELECT orch._is_admin())
  OR EXISTS (SELECT 1 FROM orch.process_type_grants g
             WHERE g.type = process_type_tasks.type AND g.grantee = ANY ((SELECT orch._identities())::text[])));

ALTER TABLE orch.process_type_grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE orch.process_type_grants FORCE ROW LEVEL SECURITY;
CREATE POLICY read_own ON orch.process_type_grants FOR SELECT USING (
  type_owner = (SELECT orch.current_owner()) OR grantee = ANY ((SELECT orch._identities())::text[])
  OR (SELECT orch._is_admin()));

ALTER TABLE orch.process_permissions ENABLE ROW LEVEL SECURITY;
ALTER TABLE orch.process_permissions FORCE ROW LEVEL SECURITY;
CREATE POLICY read_own ON orch.process_permissions FOR SELECT USING (
  owner = (SELECT orch.current_owner()) OR grantee = ANY ((SELECT orch._identities())::text[])
  OR (SELECT orch._is_admin()));

ALTER TABLE orch.processes ENABLE ROW LEVEL SECURITY;
ALTER TABLE orch.processes FORCE ROW LEVEL SECURITY;
CREATE POLICY read_own_or_shared ON orch.processes FOR SELECT USING (
  owner = (SELECT orch.current_owner()) OR (SELECT orch._is_admin())
  OR EXISTS (SELECT 1 FROM orch.process_permissions pp
             WHERE pp.process_id = processes.id AND pp.grantee = ANY ((SELECT orch._identities())::text[])));

ALTER TABLE orch.event_subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE orch.event_subscriptions FORCE ROW LEVEL SECURITY;
CREATE POLICY read_own_or_shared ON orch.event_subscriptions FOR SELECT USING (
  owner = (SELECT orch.current_owner()) OR (SELECT orch._is_admin())
  OR EXISTS (SELECT 1 FROM orch.process_permissions pp
             WHERE pp.process_id = event_subscriptions.process_id
               AND pp.grantee = ANY ((SELECT orch._identities())::text[])));

-- A creator's JWT claims: never shown to those the process is shared with.
ALTER TABLE orch.process_claims ENABLE ROW LEVEL SECURITY;
ALTER TABLE orch.process_claims FORCE ROW LEVEL SECURITY;
CREATE POLICY read_own ON orch.process_claims FOR SELECT USING (
  owner = (SELECT orch.current_owner()) OR (SELECT orch._is_admin()));

ALTER TABLE orch.runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE orch.runs FORCE ROW LEVEL SECURITY;
CREATE POLICY read_own_or_shared ON orch.runs FOR SELECT USING (
  owner = (SELECT orch.current_owner()) OR (SELECT orch._is_admin())
  OR EXISTS (SELECT 1 FROM orch.process_permissions pp
             WHERE pp.process_id = runs.process_id AND pp.grantee = ANY ((SELECT orch._identities())::text[])));

ALTER TABLE orch.tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE orch.tasks FORCE ROW LEVEL SECURITY;
CREATE POLICY read_own_or_shared ON orch.tasks FOR SELECT USING (
  owner = (SELECT orch.current_owner()) OR (SELECT orch._is_admin())
  OR EXISTS (SELECT 1 FROM orch.process_permissions pp
             WHERE pp.process_id = tasks.process_id AND pp.grantee = ANY ((SELECT orch._identities())::text[])));

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

-- Privileges: nothing for PUBLIC; reading for the three roles; changing
-- through functions for orch_user and orch_admin.
REVOKE ALL ON ALL TABLES IN SCHEMA orch FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA orch FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA orch FROM PUBLIC;
GRANT USAGE ON SCHEMA orch TO orch_admin, orch_user, orch_viewer;
GRANT SELECT ON ALL TABLES IN SCHEMA orch TO orch_admin, orch_user, orch_viewer;

-- What reading needs, including the functions the policies call.
GRANT EXECUTE ON FUNCTION
  orch.current_owner(), orch._caller(), orch._jwt_claims(), orch._is_admin(), orch._identities(),
  orch.input_data(text), orch.next_runs(text, text, timestamptz, integer), orch._effective_time_zone(text),
  orch._next_run_times(text, text, timestamptz, integer),
  orch.process_state(text), orch.history(text), orch.wait(text, interval)
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
