# The red-team suite with real sessions: PostgREST's authenticator and an
# attacker who logs in as herself, autovacuum running a user's index
# expression, and sql tasks of a JWT user trying to leave their identity.
# Each attack asserts the refusal and that nothing changed. The same attacks
# from one session are in test/sql/red_team.sql; add every new hole to both.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use OrchTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = orch_node('red_team', 'autovacuum_naptime = 1s', 'orch.poll_interval = 1h');
sub sql { return $node->safe_psql('postgres', $_[0]); }

# As a login role: its own session, as an attacker would have it.
sub as {
	my ($user, $statement) = @_;
	my ($stdout, $stderr);
	$node->psql('postgres', $statement, stdout => \$stdout, stderr => \$stderr, extra_params => [ '-U', $user ]);
	$stderr =~ s/^psql:<stdin>:\d+: //mg;
	return $stderr eq '' ? $stdout : "$stdout$stderr";
}

sql(q{
  CREATE ROLE authenticator LOGIN NOINHERIT;
  CREATE ROLE authenticated NOLOGIN IN ROLE orch_user;
  CREATE ROLE anon NOLOGIN IN ROLE orch_user;
  GRANT authenticated, anon TO authenticator;
  CREATE ROLE mallory LOGIN IN ROLE orch_user, authenticated;
  CREATE ROLE alice LOGIN IN ROLE orch_user;
  ALTER ROLE authenticated SET work_mem = '7MB';
  CREATE SCHEMA mallory AUTHORIZATION mallory;
  SELECT orch.define_process_type('lookup', '[{"name": "q", "sql": "SELECT current_user, session_user, orch.current_owner(), (SELECT count(*) FROM orch.processes), current_setting(''work_mem'')"}]');
  SELECT orch.grant_process_type('lookup', 'orch_user');
});

# ---------------------------------------------------------------------------
# PostgREST: bob's request, through the authenticator.
my $bob = q{SET ROLE authenticated; SELECT set_config('request.jwt.claims', '{"sub": "bob", "email": "bob@example.com"}', false) IS NOT NULL;};
like(as('authenticator', "$bob SELECT owner FROM orch.create_process('bob-job', 'lookup')"),
	qr/^t\njwt:bob$/, "bob's request creates a process owned by jwt:bob");

# Mallory logs in as herself and claims to be bob, through each role she may take.
for my $role ('authenticated', 'orch_user') {
	my $forged = qq{SET ROLE $role; SELECT set_config('request.jwt.claims', '{"sub": "bob"}', false) IS NOT NULL;};
	is(as('mallory', "$forged SELECT orch.current_owner(), (SELECT count(*) FROM orch.processes)"), "t\n$role|0",
		"as $role, mallory's forged claims are ignored: she is the role, and sees nothing of bob's");
	for my $call (q{orch.start('bob-job')}, q{orch.delete_process('bob-job')},
		q{orch.share_process('bob-job', 'mallory', true)}, q{orch.set_schedule('bob-job', '* * * * *')}) {
		like(as('mallory', "$forged SELECT $call"), qr/ERROR:  permission denied for process "bob-job"/,
			"as $role, mallory may not $call");
	}
}
is(sql(q{SELECT owner || ' ' || coalesce(schedule, '-') || ' ' || status FROM orch.processes WHERE id = 'bob-job'}),
	'jwt:bob - PENDING', "bob's process is untouched");
is(sql(q{SELECT count(*) FROM orch.events WHERE process_id = 'bob-job' AND actor <> 'jwt:bob'}), '0',
	'and nobody else appears in its audit trail');

# A token without "sub" (PostgREST's anon) writes nothing.
like(as('authenticator', q{SET ROLE anon; SELECT set_config('request.jwt.claims', '{"role": "anon"}', false) IS NOT NULL;
  SELECT orch.create_process('anon-job', 'lookup')}), qr/ERROR:  permission denied to create processes/,
	'a request without "sub" creates nothing');
# And the settings that decide all this are not hers to change.
like(as('mallory', q{SET orch.jwt_authenticators = 'mallory'}),
	qr/ERROR:  permission denied to set parameter "orch.jwt_authenticators"/, 'orch.jwt_authenticators is superuser-only');

# ---------------------------------------------------------------------------
# autovacuum (a superuser process) analyzes mallory's table and evaluates her
# index expression, which calls the API to define a shell type.
as('mallory', q{
  CREATE FUNCTION mallory.define(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
  BEGIN
    BEGIN
      PERFORM orch.define_process_type('pwn', '[{"name": "x", "shell": "id > /tmp/pg_orch_pwned_by_mallory"}]');
      RAISE WARNING 'mallory''s index expression: defined';
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'mallory''s index expression: % (as %)', SQLERRM, session_user;
    END;
    RETURN $1;
  END $$;
  CREATE TABLE mallory.t (x int) WITH (autovacuum_analyze_threshold = 1, autovacuum_analyze_scale_factor = 0);
  CREATE INDEX ON mallory.t (mallory.define(x));
});
my $log_offset = -s $node->logfile;
as('mallory', 'INSERT INTO mallory.t SELECT generate_series(1, 100)');
ok($node->poll_query_until('postgres', "SELECT autoanalyze_count > 0 FROM pg_stat_user_tables WHERE relname = 't'"),
	'autovacuum analyzed the table');
ok($node->log_contains(
	qr/mallory's index expression: pg_orch functions cannot be called within a security-restricted operation/,
	$log_offset), 'the API refused autovacuum\'s call of the index expression');
ok(!$node->log_contains(qr/mallory's index expression: defined/, $log_offset), 'and never defined the type');
is(sql("SELECT count(*) FROM orch.process_types WHERE name = 'pwn'"), '0', 'no type "pwn" exists');

# ---------------------------------------------------------------------------
# bob's sql task runs as authenticated with bob's claims, and no further.
sql(q{
  SELECT orch.define_process_type('escape', $t$[{"name": "q", "sql":
    "CREATE TEMP TABLE t (x int); CREATE FUNCTION pg_temp.f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN ALTER ROLE mallory SUPERUSER; RETURN NULL; END$$; CREATE CONSTRAINT TRIGGER tr AFTER INSERT ON t DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pg_temp.f(); INSERT INTO t VALUES (1)"}]$t$);
  SELECT orch.grant_process_type('escape', 'orch_user');
});
as('authenticator', "$bob SELECT orch.start('bob-job')");
is(sql("SELECT orch.wait('bob-job', '60 seconds')"), 'COMPLETED', "bob's lookup COMPLETED");
# (after the lookup: it counts the processes bob sees)
as('authenticator', "$bob SELECT orch.create_process('bob-escape', 'escape'); SELECT orch.start('bob-escape')");
is(sql(q{SELECT output FROM orch.tasks WHERE process_id = 'bob-job'}), "authenticated\tauthenticated\tjwt:bob\t1\t7MB",
	"it ran as authenticated in its own session, as jwt:bob, seeing only his process, with the role's settings");
is(sql("SELECT orch.wait('bob-escape', '60 seconds')"), 'FAILED', "bob's escape FAILED");
# (PostgreSQL 16 reworded the refusal.)
like(sql(q{SELECT error_message FROM orch.tasks WHERE process_id = 'bob-escape'}),
	qr/^(must be superuser to alter superuser roles or change superuser attribute|permission denied to alter role)$/,
	'its deferred trigger ran as authenticated, not as the worker');
is(sql("SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'"), 'f', 'mallory is no superuser');
ok(!-e '/tmp/pg_orch_pwned_by_mallory', 'no command ran');

# pg_stat_activity shows an sql task as its creator's, who may see and cancel it.
sql(q{SELECT orch.define_process_type('nap', '[{"name": "q", "sql": "SELECT pg_sleep(60)"}]');
      SELECT orch.grant_process_type('nap', 'orch_user')});
as('alice', q{SELECT orch.create_process('alice-nap', 'nap'); SELECT orch.start('alice-nap')});
ok($node->poll_query_until('postgres',
	"SELECT usename = 'alice' FROM pg_stat_activity WHERE backend_type = 'pg_orch sql task' AND query = 'SELECT pg_sleep(60)'"),
	"the running sql task is listed as alice's");
is(as('alice', q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE backend_type = 'pg_orch sql task'}), 't',
	'alice may cancel it');
is(sql("SELECT orch.wait('alice-nap', '60 seconds')"), 'FAILED', 'her cancelled task FAILED');

# ---------------------------------------------------------------------------
# A type's name belongs to its first definer, even while that definition has
# not committed yet: mallory's redefinition waits for alice's, then is refused.
my $first = $node->background_psql('postgres', extra_params => [ '-U', 'alice' ]);
$first->query_safe(q{BEGIN; SELECT orch.define_process_type('race', '[{"name": "q", "sql": "SELECT 1"}]')});
my $second = $node->background_psql('postgres', extra_params => [ '-U', 'mallory' ], on_error_stop => 0);
$second->query_until(qr/sent/, q{\echo sent
SELECT orch.define_process_type('race', '[{"name": "q", "sql": "INSERT INTO mallory.t VALUES (666)"}]');
\echo done
});
ok($node->poll_query_until('postgres',
	"SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE usename = 'mallory' AND query LIKE '%define_process_type%'"),
	"mallory's definition waits for alice's");
$first->query_safe('COMMIT');
$second->query_until(qr/done/, '');
like($second->{stderr}, qr/ERROR:  permission denied for process type "race"/, "then mallory's is refused");
$first->quit;
$second->quit;
is(sql(q{SELECT owner || ' ' || version || ' ' || (tasks -> 0 ->> 'sql') FROM orch.process_types WHERE name = 'race'}),
	'alice 1 SELECT 1', 'the type is alice\'s first version, alone');

# ---------------------------------------------------------------------------
# With nothing scheduled the scheduler sleeps: it once computed "next tick
# in 0 ms" when there was none and spun.
sql(q{UPDATE orch.processes SET next_run_at = NULL});
my $scheduler = scheduler_pid($node);
sub cpu_ticks {
	open(my $fh, '<', "/proc/$_[0]/stat") or die "no /proc/$_[0]/stat";
	my @fields = split ' ', (<$fh> =~ s/^.*\) //r);
	close $fh;
	return $fields[11] + $fields[12];  # utime + stime
}
my $before = cpu_ticks($scheduler);
sleep 2;
my $used = cpu_ticks($scheduler) - $before;
cmp_ok($used, '<', 20, "an idle scheduler used $used CPU ticks in 2 s");

$node->stop;
done_testing();
