# sql tasks: each runs in a background worker of its own, as the role that
# created the process and with its JWT claims, with the run's input as $1,
# in the transaction that records it. The SQL cannot get back to the
# worker's own identity, a failing statement fails (and retries) the task,
# timeouts and orch.stop end the worker, rows become the output, and sql
# and command tasks run in order and share orch.max_concurrent_tasks.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use OrchTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = orch_node('sql_tasks', 'orch.max_concurrent_tasks = 2', 'orch.max_tasks_per_owner = 2', 'orch.max_output = 100',
	'orch.kill_grace = 1s', 'orch.poll_interval = 1h', "orch.jwt_roles = 'alice, bob'");
sub sql { return $node->safe_psql('postgres', $_[0]); }
my $superuser = sql('SELECT current_user');

# Two ordinary roles that cannot log in, as PostgREST's roles are, and what
# they need to create processes. With the roles and grants of the SQL API
# (orch_user, orch.grant_process_type) when it has them, else plain grants.
my $has_roles = sql("SELECT count(*) FROM pg_roles WHERE rolname = 'orch_user'") eq '1';
my $has_type_grants = sql("SELECT to_regprocedure('orch.grant_process_type(text, text)') IS NOT NULL") eq 't';
sql(q{
  CREATE ROLE alice NOLOGIN;
  CREATE ROLE bob NOLOGIN;
  -- PostgREST's login role: JWT claims count in its sessions only.
  CREATE ROLE authenticator LOGIN NOINHERIT IN ROLE alice, bob;
  CREATE TABLE public.seen (who text, claims text, k text);
  GRANT SELECT, INSERT ON public.seen TO alice, bob;
  CREATE SEQUENCE public.flaky;
  GRANT USAGE ON SEQUENCE public.flaky TO alice;
  -- Row level security by JWT "sub", else by role.
  CREATE TABLE public.notes (owner text, body text);
  INSERT INTO public.notes VALUES ('u-1', 'one'), ('u-2', 'two'), ('bob', 'three');
  ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;
  CREATE POLICY own ON public.notes USING (
    owner = coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub', current_user::text));
  GRANT SELECT ON public.notes TO alice, bob;
});
if ($has_roles) {
	sql('GRANT orch_user TO alice, bob');
} else {
	sql(q{
	  GRANT USAGE ON SCHEMA orch TO alice, bob;
	  GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA orch TO alice, bob;
	  GRANT USAGE ON ALL SEQUENCES IN SCHEMA orch TO alice, bob;
	});
}

# A type of one sql task, defined by the superuser and usable by alice and
# bob. %options are raw SQL values: timeout => q{'500ms'}, max_retries => 2.
sub define_sql_type {
	my ($type, $statement, %options) = @_;
	my $extra = join '', map { ", '$_', $options{$_}" } sort keys %options;
	sql(qq{SELECT orch.define_process_type('$type',
	  jsonb_build_array(jsonb_build_object('name', 'step', 'sql', \$sql\$$statement\$sql\$$extra)))});
	sql(qq{SELECT orch.grant_process_type('$type', 'alice'), orch.grant_process_type('$type', 'bob')})
	  if $has_type_grants;
}

# Creates and starts process $id as $role (SET ROLE, and the JWT claims
# when given, in a session of the authenticator), the way PostgREST would.
sub start_as {
	my ($role, $claims, $id, $type, $input) = @_;
	$input //= '{}';
	my $set_claims = defined $claims ? "SET request.jwt.claims = '$claims';" : '';
	$node->safe_psql('postgres', qq{SET ROLE $role; $set_claims
	  SELECT orch.create_process('$id', '$type', '$input');
	  SELECT orch.start('$id');}, extra_params => defined $claims ? [ '-U', 'authenticator' ] : []);
}

sub run_as {
	my ($role, $claims, $id, $type, $input) = @_;
	start_as($role, $claims, $id, $type, $input);
	return sql("SELECT orch.wait('$id', '60 seconds')");
}

sub task_of {
	my ($id, $columns) = @_;
	return sql("SELECT $columns FROM orch.tasks WHERE process_id = '$id' ORDER BY task_index");
}

my $seen_by = "SELECT who || '|' || coalesce(nullif(claims, '')::jsonb ->> 'sub', '') || '|' || k FROM public.seen";

# ---------------------------------------------------------------------------
# Identity: the creator's role and claims, the input as $1.
define_sql_type('record', q{INSERT INTO public.seen SELECT current_user, current_setting('request.jwt.claims', true), $1->>'k'});
is(run_as('alice', '{"sub":"u-1"}', 'alice-1', 'record', '{"k": "v1"}'), 'COMPLETED', "alice's sql task COMPLETED");
is(sql("$seen_by WHERE k = 'v1'"), 'alice|u-1|v1', 'ran as alice, with her JWT claims and the input as $1');
is(task_of('alice-1', "status || ' ' || exit_code || ' ' || output || ' ' || (pid IS NOT NULL) || ' ' || (started_at IS NOT NULL)"),
	'COMPLETED 0 1 row affected true true', 'task COMPLETED with exit code 0, rows affected, pid and start time');

is(run_as('bob', undef, 'bob-1', 'record', '{"k": "v2"}'), 'COMPLETED', "bob's sql task COMPLETED");
is(sql("SELECT who || '|' || claims || '|' || k FROM public.seen WHERE k = 'v2'"), 'bob||v2',
	'ran as bob, without claims (none were set)');

# The creator's own row level security applies.
define_sql_type('notes', q{SELECT string_agg(body, ',' ORDER BY body) FROM public.notes});
is(run_as('alice', '{"sub":"u-1"}', 'alice-notes', 'notes'), 'COMPLETED', "alice's read COMPLETED");
is(task_of('alice-notes', 'output'), 'one', 'alice (sub u-1) sees only her note');
is(run_as('bob', undef, 'bob-notes', 'notes'), 'COMPLETED', "bob's read COMPLETED");
is(task_of('bob-notes', 'output'), 'three', 'bob sees only his note');
if ($has_roles) {
	# ... including pg_orch's own: alice sees only the processes of sub u-1.
	define_sql_type('my-processes', q{SELECT count(*) FILTER (WHERE owner <> 'jwt:u-1') || ' ' || (count(*) > 0) FROM orch.processes});
	is(run_as('alice', '{"sub":"u-1"}', 'alice-processes', 'my-processes'), 'COMPLETED', "alice's listing COMPLETED");
	is(task_of('alice-processes', 'output'), '0 true', "alice sees her processes and no one else's");
}

# ---------------------------------------------------------------------------
# Output: rows as text (tab-separated, NULL as nothing), the head of at most
# orch.max_output bytes.
define_sql_type('rows', q{SELECT g, 'x' || g, NULL::int, $1->>'k' FROM generate_series(1, 3) g});
is(run_as('alice', undef, 'rows-1', 'rows', '{"k": "in"}'), 'COMPLETED', 'select COMPLETED');
is(task_of('rows-1', "output || '|' || output_truncated"), "1\tx1\t\tin\n2\tx2\t\tin\n3\tx3\t\tin|false",
	"the select's rows are the output");

define_sql_type('many-rows', q{SELECT g FROM generate_series(1, 10000) g});
is(run_as('alice', undef, 'many-rows-1', 'many-rows'), 'COMPLETED', 'long select COMPLETED');
is(task_of('many-rows-1', "octet_length(output) || ' ' || output_truncated || ' ' || left(output, 8)"),
	"100 true 1\n2\n3\n4\n", 'output is the first 100 bytes, marked truncated');

# ---------------------------------------------------------------------------
# No way back to the superuser: each attempt fails with PostgreSQL's error.
my %escapes = (
	'reset-role' => [ q{RESET ROLE; INSERT INTO public.seen VALUES (current_user, NULL, 'escaped')},
		'cannot set parameter "role" within security-definer function' ],
	'set-role' => [ qq{SET ROLE $superuser; INSERT INTO public.seen VALUES (current_user, NULL, 'escaped')},
		'cannot set parameter "role" within security-definer function' ],
	'set-config-role' => [ qq{SELECT set_config('role', '$superuser', false)},
		'cannot set parameter "role" within security-definer function' ],
	'session-authorization' => [ qq{SET SESSION AUTHORIZATION $superuser; INSERT INTO public.seen VALUES (current_user, NULL, 'escaped')},
		'cannot set parameter "session_authorization" within security-definer function' ],
	'other-claims' => [ q{SELECT set_config('request.jwt.claims', '{"sub": "u-2"}', false)},
		'request.jwt.claims cannot be changed in a pg_orch sql task' ],
	'legacy-claim' => [ q{SET request.jwt.claim.sub = 'u-2'},
		'invalid configuration parameter name "request.jwt.claim.sub"' ]);
for my $name (sort keys %escapes) {
	my ($statement, $error) = @{ $escapes{$name} };
	define_sql_type("escape-$name", $statement);
	is(run_as('alice', '{"sub":"u-1"}', "escape-$name", "escape-$name"), 'FAILED', "$name: run FAILED");
	is(task_of("escape-$name", "status || ': ' || error_message"), "FAILED: $error", "$name: task FAILED with PostgreSQL's error");
}
is(sql("SELECT count(*) FROM public.seen WHERE k = 'escaped' OR who NOT IN ('alice', 'bob')"), '0',
	'nothing ran as anyone but alice and bob');

# RESET ALL keeps the identity and the claims.
define_sql_type('reset-all', q{RESET ALL; RESET request.jwt.claims; SELECT current_user, current_setting('request.jwt.claims')::jsonb ->> 'sub'});
is(run_as('alice', '{"sub":"u-1"}', 'reset-all-1', 'reset-all'), 'COMPLETED', 'RESET ALL COMPLETED');
is(task_of('reset-all-1', 'output'), "alice\tu-1", 'still alice with her claims after RESET ALL');

# A process created by a superuser is not run as one.
define_sql_type('as-superuser', q{SELECT 1});
sql("SELECT orch.create_process('superuser-1', 'as-superuser'); SELECT orch.start('superuser-1')");
is(sql("SELECT orch.wait('superuser-1', '60 seconds')"), 'FAILED', "a superuser's process FAILED");
is(task_of('superuser-1', 'error_message'),
	qq{sql tasks never run as a superuser, and the process was created by superuser "$superuser"; }
	  . 'create the process as an ordinary role, for example after SET ROLE',
	'refused to run as a superuser');

# ---------------------------------------------------------------------------
# Failures roll back the statement, fail the task and the run, and retry.
define_sql_type('fails', q{INSERT INTO public.seen VALUES (current_user, NULL, 'rolled back'); SELECT 1/0});
is(run_as('alice', undef, 'fails-1', 'fails'), 'FAILED', 'failing run FAILED');
is(task_of('fails-1', "status || ' ' || attempt || ' ' || error_message || ' ' || (exit_code IS NULL)"),
	'FAILED 1 division by zero true', 'task FAILED with the message');
is(sql("SELECT error_message FROM orch.runs WHERE process_id = 'fails-1'"), 'task "step" failed: division by zero',
	'run FAILED with the message');
is(sql("SELECT count(*) FROM public.seen WHERE k = 'rolled back'"), '0', "the failed statement's effects are rolled back");

define_sql_type('fails-thrice', q{SELECT 1/0}, max_retries => 2);
is(run_as('alice', undef, 'fails-thrice-1', 'fails-thrice'), 'FAILED', 'retried run FAILED');
is(task_of('fails-thrice-1', "status || ' ' || attempt"), 'FAILED 3', 'tried 1 + max_retries times');

# Fails twice (a sequence is not rolled back), then succeeds.
define_sql_type('flaky', q{SELECT 42 / CASE WHEN nextval('public.flaky') < 3 THEN 0 ELSE 1 END}, max_retries => 2);
is(run_as('alice', undef, 'flaky-1', 'flaky'), 'COMPLETED', 'flaky run COMPLETED on its third attempt');
is(task_of('flaky-1', "status || ' ' || attempt || ' ' || output"), 'COMPLETED 3 42', 'third attempt recorded');

# ---------------------------------------------------------------------------
# A timeout ends the statement within a few seconds.
define_sql_type('slow', q{SELECT pg_sleep(60)}, timeout => q{'500ms'});
my $started = time();
is(run_as('alice', undef, 'slow-1', 'slow'), 'FAILED', 'timed-out run FAILED');
my $took = time() - $started;
cmp_ok($took, '<', 5, "within a few seconds ($took s)");
is(task_of('slow-1', "status || ': ' || error_message"), 'FAILED: timed out after 500ms', 'timeout recorded');
cmp_ok(task_of('slow-1', 'extract(epoch FROM completed_at - started_at)'), '>=', 0.45, 'after about the timeout');

# SQL that swallows its statement timeout is ended by the scheduler
# orch.kill_grace later.
define_sql_type('stubborn', q{DO $$ BEGIN PERFORM pg_sleep(60); EXCEPTION WHEN query_canceled THEN PERFORM pg_sleep(60); END $$},
	timeout => q{'500ms'});
$started = time();
is(run_as('alice', undef, 'stubborn-1', 'stubborn'), 'FAILED', 'stubborn run FAILED');
$took = time() - $started;
cmp_ok($took, '>=', 1.4, "ended after timeout + grace ($took s)");
cmp_ok($took, '<', 6, 'but not much later');
is(task_of('stubborn-1', 'error_message'), 'timed out after 500ms', 'timeout recorded by the scheduler');

sub sql_workers_are { return "SELECT count(*) = $_[0] FROM pg_stat_activity WHERE backend_type = 'pg_orch sql task'"; }
ok($node->poll_query_until('postgres', sql_workers_are(0)), 'no sql task worker left');

# orch.stop ends the worker: the task is STOPPED and the worker gone.
define_sql_type('sleepy', q{SELECT pg_sleep(60)});
start_as('alice', undef, 'stop-1', 'sleepy');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_orch sql task' AND query = 'SELECT pg_sleep(60)'"),
	'the sleeping statement runs in its worker');
is(sql(q{SELECT t.status || ' ' || (t.pid = a.pid) FROM orch.tasks t, pg_stat_activity a
           WHERE t.process_id = 'stop-1' AND a.backend_type = 'pg_orch sql task'}),
	'RUNNING true', 'a running sql task shows RUNNING with its worker\'s pid');
is(sql("SELECT orch.stop('stop-1') IS NOT NULL; SELECT orch.wait('stop-1', '30 seconds')"), "t\nSTOPPED", 'run STOPPED');
ok($node->poll_query_until('postgres', "SELECT status = 'STOPPED' FROM orch.tasks WHERE process_id = 'stop-1'"),
	'task STOPPED');
is(task_of('stop-1', 'error_message'), 'stopped', 'task recorded as stopped');
ok($node->poll_query_until('postgres', sql_workers_are(0)), 'its worker is gone from pg_stat_activity');

# A worker that dies without recording its attempt: the scheduler records it.
start_as('alice', undef, 'killed-1', 'sleepy');
ok($node->poll_query_until('postgres', sql_workers_are(1)), 'worker started');
sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'pg_orch sql task'");
is(sql("SELECT orch.wait('killed-1', '30 seconds')"), 'FAILED', 'run of the killed worker FAILED');
is(task_of('killed-1', 'error_message'), "the sql task's worker exited without recording a result",
	'the scheduler recorded why');

# When the scheduler exits, its sql tasks' workers end too, and the next
# scheduler recovers their attempts.
start_as('alice', undef, 'orphaned-1', 'sleepy');
ok($node->poll_query_until('postgres', sql_workers_are(1)), 'worker started before the scheduler exits');
my $old_scheduler = scheduler_pid($node);
sql("SELECT pg_terminate_backend($old_scheduler)");
ok($node->poll_query_until('postgres', sql_workers_are(0)), "the exiting scheduler's sql worker is gone");
is(sql("SELECT orch.wait('orphaned-1', '60 seconds')"), 'FAILED', 'its run FAILED');
like(task_of('orphaned-1', 'error_message'), qr/^the scheduler stopped while the task was running/,
	'the next scheduler recovered the attempt');
isnt(scheduler_pid($node), $old_scheduler, 'a new scheduler runs');

# ---------------------------------------------------------------------------
# An sql task then a command: in order, the command seeing what the SQL committed.
my $psql = $node->config_data('--bindir') . '/psql';
my ($host, $port) = ($node->host, $node->port);
sql(qq{SELECT orch.define_process_type('then-command', '[
  {"name": "write", "sql": "INSERT INTO public.seen VALUES (current_user, NULL, \$1->>''k'')"},
  {"name": "read", "command": ["$psql", "-XAtq", "-d", "postgres", "-c", "SELECT who FROM public.seen WHERE k = ''ordered''"],
   "env": {"PGHOST": "$host", "PGPORT": "$port"}}]')});
sql("SELECT orch.grant_process_type('then-command', 'alice')") if $has_type_grants;
is(run_as('alice', undef, 'ordered-1', 'then-command', '{"k": "ordered"}'), 'COMPLETED', 'sql then command COMPLETED');
is(task_of('ordered-1', "name || ' ' || status"), "write COMPLETED\nread COMPLETED", 'both tasks COMPLETED');
is(task_of('ordered-1', "rtrim(output, E'\\n')"), "1 row affected\nalice", 'the command saw the committed row');
is(sql("SELECT (SELECT completed_at FROM orch.tasks WHERE process_id = 'ordered-1' AND name = 'write')
             <= (SELECT started_at FROM orch.tasks WHERE process_id = 'ordered-1' AND name = 'read')"),
	't', 'the command started after the sql task completed');

# sql tasks count against orch.max_concurrent_tasks (2 here).
define_sql_type('nap', q{SELECT pg_sleep(0.3)});
sql("SET ROLE alice; SELECT orch.create_process('nap-' || i, 'nap') FROM generate_series(1, 5) i");
sql("SET ROLE alice; SELECT orch.start('nap-' || i) FROM generate_series(1, 5) i");
ok($node->poll_query_until('postgres', "SELECT count(*) = 5 FROM orch.processes WHERE id LIKE 'nap-%' AND status = 'COMPLETED'"),
	'five naps COMPLETED');
is(sql(q{
  SELECT max((SELECT count(*) FROM orch.tasks u
              WHERE u.process_id LIKE 'nap-%' AND u.started_at <= t.started_at AND u.completed_at > t.started_at))
  FROM orch.tasks t WHERE t.process_id LIKE 'nap-%'}), '2', 'never more than two at once');

# ---------------------------------------------------------------------------
# Without a free worker slot the task waits its turn: PENDING, its attempt
# not counted, tried again every second until a slot is free. The launcher,
# the logical replication launcher and the scheduler take 3 of the 4 slots
# here; the sleepy task takes the fourth.
$node->append_conf('postgresql.conf', "max_worker_processes = 4\n");
$node->restart;
scheduler_pid($node);
define_sql_type('short-nap', q{SELECT pg_sleep(3)});
start_as('alice', undef, 'slot-holder', 'short-nap');
ok($node->poll_query_until('postgres', sql_workers_are(1)), 'the only free worker slot is taken');
start_as('alice', undef, 'no-slot-1', 'record', '{"k": "no slot"}');
ok($node->poll_query_until('postgres', q{
  SELECT t.status = 'PENDING' AND t.attempt = 0 AND t.ready_at > r.started_at + interval '1 second'
  FROM orch.tasks t JOIN orch.runs r ON r.id = t.run_id WHERE t.process_id = 'no-slot-1'}),
	'without a worker slot the task waits, PENDING, its attempt not counted, tried again');
is(sql("SELECT orch.wait('no-slot-1', '60 seconds')"), 'COMPLETED', 'once the slot is free it runs');
is(task_of('no-slot-1', 'attempt'), '1', 'in its first attempt');
is(sql("SELECT orch.wait('slot-holder', '60 seconds')"), 'COMPLETED', 'after the task that held the slot');

$node->stop;
done_testing();
