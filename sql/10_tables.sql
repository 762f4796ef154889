-- pg_orch: tables
-- The values checked in the tables written at every start and end of a run
-- are domains, not table CHECKs: a domain's check is read from the catalog
-- once per session, a table's again for every statement that writes a row
-- (a third of the cost of writing an event, a sixth of a start).
CREATE DOMAIN orch.process_id AS text CHECK (length(VALUE) BETWEEN 1 AND 255);
CREATE DOMAIN orch.json_object AS jsonb CHECK (jsonb_typeof(VALUE) = 'object');
CREATE DOMAIN orch.overlap_policy AS text CHECK (VALUE IN ('skip', 'queue', 'parallel'));
CREATE DOMAIN orch.misfire_policy AS text CHECK (VALUE IN ('run_once', 'skip'));
CREATE DOMAIN orch.task_kind AS text CHECK (VALUE IN ('command', 'shell', 'sql', 'http'));
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
-- start copies them into orch.tasks (orch._write_run).
CREATE TABLE orch.process_type_tasks (
  type        text NOT NULL,
  version     integer NOT NULL,
  owner       text NOT NULL,  -- the type's, copied for row level security without a join
  task_index  integer NOT NULL,  -- 0-based position in the type's task array
  name        text NOT NULL,
  kind        text NOT NULL CHECK (kind IN ('command', 'shell', 'sql', 'http')),
  command     text[],  -- an http task's request: [method, url, body format, body, expected statuses, header, value, ...]
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
  slurm       jsonb,  -- "executor": "slurm": its options ({} for none); NULL: on this host (last: added in 0.2)
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
  -- Copied from its type version (type_version's task_count and
  -- has_fan_out), so that a start reads no row but this one (added in 0.2).
  task_count  integer NOT NULL,
  has_fan_out boolean NOT NULL,
  FOREIGN KEY (type, type_version) REFERENCES orch.process_type_versions (type, version)
) WITH (fillfactor = 40);
-- Every start and end of a run updates a process's status and current run:
-- no index on them, and room in each page, so those updates stay HOT (no
-- index entry written). Room for a second version of every row: a burst of
-- starts (one statement, a cron minute) updates each row once before any
-- old version can go; at 80, three in four of them wrote index entries.
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
-- A start writes its run and tasks without INSERT (orch._write_run,
-- src/pg/run_rows.cpp): a column added to either that a start must fill is
-- filled there (until it is, a start refuses a column with a default).

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
-- Pruning takes the oldest finished runs first (75_history.sql).
CREATE INDEX runs_completed_at_idx ON orch.runs (completed_at) WHERE completed_at IS NOT NULL;

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
  execution_name text,  -- the executor's name for the attempt: a pid, a Slurm job id, "POST http://..." (added in 0.2)
  slurm        jsonb,  -- a Slurm job's options; NULL: on this host (added in 0.2)
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
