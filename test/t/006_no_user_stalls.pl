# No user can stall the scheduler or take every slot: a transaction holding
# a process's row, sql tasks of one run completing in parallel, input that
# would be copied into every task, and one owner keeping every slot busy.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use OrchTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = orch_node('no_user_stalls', 'orch.max_concurrent_tasks = 4', 'max_worker_processes = 16',
	'orch.poll_interval = 1h');
sub sql { return $node->safe_psql('postgres', $_[0]); }
sub as {
	my ($user, $statement) = @_;
	return $node->safe_psql('postgres', $statement, extra_params => [ '-U', $user ]);
}

sql(q{
  CREATE ROLE alice LOGIN IN ROLE orch_user;
  CREATE ROLE bob LOGIN IN ROLE orch_user;
  SELECT orch.define_process_type('quick', '[{"name": "q", "command": ["/bin/true"]}]');
  SELECT orch.define_process_type('nap', '[{"name": "n", "command": ["/bin/sleep", "{{seconds}}"]}]');
  SELECT orch.grant_process_type(t, 'orch_user') FROM unnest(ARRAY['quick', 'nap']) t;
});

# Starts bob's one-task process and returns how long it took to complete.
my $bob_runs = 0;
sub bob_run_seconds {
	my $id = 'bob-' . ++$bob_runs;
	my $started = time();
	as('bob', "SELECT orch.create_process('$id', 'quick'); SELECT orch.start('$id')");
	my $status = as('bob', "SELECT orch.wait('$id', '30 seconds')");
	my $took = time() - $started;
	is($status, 'COMPLETED', "bob's run $id COMPLETED");
	return $took;
}

# ---------------------------------------------------------------------------
# Alice holds her process's row in an open transaction (orch.pause) while its
# command finishes. The scheduler does not wait for her: bob's run completes
# at once; hers ends when she lets go.
as('alice', q{SELECT orch.create_process('alice-held', 'nap', '{"seconds": "0.3"}'); SELECT orch.start('alice-held')});
my $holder = $node->background_psql('postgres', extra_params => [ '-U', 'alice' ]);
$holder->query_safe(q{BEGIN; SELECT orch.pause('alice-held')});
ok($node->poll_query_until('postgres', "SELECT status = 'COMPLETED' FROM orch.tasks WHERE process_id = 'alice-held'"),
	"alice's command COMPLETED while she holds her process's row");
my $took = bob_run_seconds();
cmp_ok($took, '<', 2, "meanwhile bob's run took $took s");
is(sql("SELECT status FROM orch.processes WHERE id = 'alice-held'"), 'IN_PROGRESS',
	"alice's run is not ended under her lock");
$holder->query_safe('COMMIT');
$holder->quit;
is(sql("SELECT orch.wait('alice-held', '30 seconds')"), 'COMPLETED', 'and ends once she commits');

# Bob, who may not change alice's process, does not even wait for her lock:
# he is refused at once, and holds up nobody.
$holder = $node->background_psql('postgres', extra_params => [ '-U', 'alice' ]);
$holder->query_safe(q{BEGIN; SELECT orch.pause('alice-held')});
my ($rc, $stdout, $stderr) = $node->psql('postgres', q{SET statement_timeout = '3s'; SELECT orch.pause('alice-held')},
	extra_params => [ '-U', 'bob' ]);
like($stderr, qr/ERROR:  permission denied for process "alice-held"/,
	"bob's call on alice's locked process is refused without waiting for her lock");
$holder->query_safe('COMMIT');
$holder->quit;

# ---------------------------------------------------------------------------
# With overlap 'parallel', an earlier run can outlive the current one. While
# it runs, the process cannot be deleted (its tasks' rows are how they are
# found, counted against their owner and stopped), and orch.stop stops it.
sql(q{SELECT orch.define_process_type('even-runs-long',
        '[{"name": "s", "shell": "if [ $((ORCH_RUN_ID % 2)) -eq 0 ]; then sleep 60; fi"}]');
      SELECT orch.grant_process_type('even-runs-long', 'orch_user')});
as('alice', q{SELECT orch.create_process('overlapping', 'even-runs-long', schedule => '* * * * * *', overlap => 'parallel')});
ok($node->poll_query_until('postgres', q{
  SELECT p.status = 'COMPLETED' AND EXISTS (SELECT 1 FROM orch.runs r WHERE r.process_id = p.id AND r.status = 'IN_PROGRESS')
  FROM orch.processes p WHERE p.id = 'overlapping'}), 'an earlier run is in progress after the current one completed');
as('alice', q{SELECT orch.pause('overlapping')});
($rc, $stdout, $stderr) = $node->psql('postgres', q{SELECT orch.delete_process('overlapping')}, extra_params => [ '-U', 'alice' ]);
like($stderr, qr/ERROR:  cannot delete process "overlapping" while it is in progress/, 'delete is refused');
as('alice', q{SELECT orch.stop('overlapping')});
is(sql(q{SELECT count(*) FROM orch.runs WHERE process_id = 'overlapping' AND status = 'IN_PROGRESS'}), '0',
	'orch.stop stopped every run in progress');
ok($node->poll_query_until('postgres', q{
  SELECT count(*) = 0 FROM orch.tasks WHERE process_id = 'overlapping' AND status IN ('DISPATCHED', 'RUNNING')}),
	'and the scheduler killed their commands');
as('alice', q{SELECT orch.delete_process('overlapping')});
is(sql(q{SELECT count(*) FROM orch.processes WHERE id = 'overlapping'}), '0', 'then it is deleted');

# ---------------------------------------------------------------------------
# Four sql tasks of one run in parallel, each recording its own completion:
# every run ends.
sql(q{SELECT orch.define_process_type('parallel-sql', '[
  {"name": "a", "sql": "SELECT pg_sleep(0.05)", "depends_on": []},
  {"name": "b", "sql": "SELECT pg_sleep(0.05)", "depends_on": []},
  {"name": "c", "sql": "SELECT pg_sleep(0.05)", "depends_on": []},
  {"name": "d", "sql": "SELECT pg_sleep(0.05)", "depends_on": []}]');
  SELECT orch.grant_process_type('parallel-sql', 'orch_user')});
as('alice', q{SELECT orch.create_process('par-' || i, 'parallel-sql') FROM generate_series(1, 10) i;
              SELECT orch.start('par-' || i) FROM generate_series(1, 10) i});
ok($node->poll_query_until('postgres', q{
  SELECT count(*) = 10 FROM orch.processes WHERE id LIKE 'par-%' AND status = 'COMPLETED'}),
	'all 10 runs of four parallel sql tasks COMPLETED');
is(sql(q{SELECT count(*) FROM orch.tasks WHERE process_id LIKE 'par-%' AND status = 'COMPLETED'}), '40',
	'with their 40 tasks');

# ---------------------------------------------------------------------------
# Input is bounded by orch.max_input_size (1MB) and stored once per run, not
# in each of a 1,000-task type's tasks.
my $thousand = join ',', map { qq{{"name": "t$_", "sql": "SELECT 1"}} } 1 .. 1000;
as('alice', "SELECT orch.define_process_type('thousand', '[$thousand]')");
($rc, $stdout, $stderr) = $node->psql('postgres',
	q{SELECT orch.create_process('too-big', 'thousand', jsonb_build_object('x', repeat('a', 1024 * 1024)))},
	extra_params => [ '-U', 'alice' ]);
like($stderr, qr/ERROR:  input data is 1048585 bytes, more than orch.max_input_size \(1MB\)/,
	'1 MB of input is refused');
as('alice', q{SELECT orch.create_process('big', 'thousand', jsonb_build_object('x', repeat('a', 900 * 1024)));
              SELECT orch.start('big'); SELECT orch.stop('big')});
is(sql(q{SELECT count(*) || ' ' || (sum(pg_column_size(t.env)) < 100000)
         FROM orch.tasks t WHERE t.process_id = 'big'}), '1000 true', '1,000 tasks made, the input copied into none');
is(sql(q{SELECT count(*) FROM orch.runs WHERE process_id = 'big' AND input_data ? 'x'}), '1', 'the run holds it once');

# ---------------------------------------------------------------------------
# Fair share: alice starts more long tasks than there are slots (4). She
# gets at most orch.max_tasks_per_owner (default: half, 2) at once, and bob's
# run completes at once.
as('alice', q{SELECT orch.create_process('long-' || i, 'nap', '{"seconds": "20"}') FROM generate_series(1, 6) i;
              SELECT orch.start('long-' || i) FROM generate_series(1, 6) i});
ok($node->poll_query_until('postgres', q{
  SELECT count(*) = 2 FROM orch.tasks WHERE process_id LIKE 'long-%' AND status = 'RUNNING'}),
	'alice has two long tasks running');
$took = bob_run_seconds();
cmp_ok($took, '<', 2, "bob's run took $took s while alice's tasks wait for her slots");
is(sql(q{SELECT count(*) FILTER (WHERE status IN ('DISPATCHED', 'RUNNING')) || ' ' || count(*) FILTER (WHERE status = 'PENDING')
         FROM orch.tasks WHERE process_id LIKE 'long-%'}), '2 4', 'alice still has two running and four waiting');
sql(q{SELECT orch.stop('long-' || i) FROM generate_series(1, 6) i});


# ---------------------------------------------------------------------------
# A type's "max_concurrent" holds across all its runs and owners.
sql(q{SELECT orch.define_process_type('one-at-a-time', '[{"name": "n", "command": ["/bin/sleep", "0.5"]}]',
                                       max_concurrent => 1);
      SELECT orch.grant_process_type('one-at-a-time', 'orch_user')});
as('alice', q{SELECT orch.create_process('solo-a' || i, 'one-at-a-time') FROM generate_series(1, 2) i;
              SELECT orch.start('solo-a' || i) FROM generate_series(1, 2) i});
as('bob', q{SELECT orch.create_process('solo-b', 'one-at-a-time'); SELECT orch.start('solo-b')});
ok($node->poll_query_until('postgres', q{
  SELECT count(*) = 3 FROM orch.processes WHERE id LIKE 'solo-%' AND status = 'COMPLETED'}), 'all three runs COMPLETED');
is(sql(q{SELECT count(*) FROM orch.tasks a JOIN orch.tasks b ON a.id < b.id
         WHERE a.process_id LIKE 'solo-%' AND b.process_id LIKE 'solo-%'
           AND a.started_at < b.completed_at AND b.started_at < a.completed_at}), '0',
	'never two of its tasks at once');

# ---------------------------------------------------------------------------
# A thousand of one owner's due ticks do not go before another's: owners
# take turns for ticks too. With the scheduler off, alice's 1,000 and bob's
# one per-second schedules all come due; then it fires them.
sql(q{SELECT orch.define_process_type('tick', '[{"name": "t", "sql": "SELECT 1"}]');
      SELECT orch.grant_process_type('tick', 'orch_user');
      ALTER SYSTEM SET orch.enabled = off});
reload_and_wait($node);
as('alice', q{SELECT count(orch.create_process('flood-' || i, 'tick', schedule => '* * * * * *'))
              FROM generate_series(1, 1000) i});
as('bob', q{SELECT orch.create_process('bob-ticks', 'tick', schedule => '* * * * * *')});
ok($node->poll_query_until('postgres', q{SELECT count(*) = 1001 FROM orch.processes WHERE next_run_at <= now()}),
	'all 1,001 ticks are due');
sql(q{ALTER SYSTEM RESET orch.enabled});
reload_and_wait($node);
ok($node->poll_query_until('postgres', q{SELECT count(*) > 0 FROM orch.runs WHERE process_id = 'bob-ticks'}),
	"bob's tick fired");
my $before_bob = sql(q{SELECT count(*) FROM orch.runs r WHERE r.process_id LIKE 'flood-%'
                         AND r.started_at < (SELECT min(b.started_at) FROM orch.runs b WHERE b.process_id = 'bob-ticks')});
cmp_ok($before_bob, '<', 10, "only $before_bob of alice's 1,000 ticks fired before bob's");
sql(q{UPDATE orch.processes SET is_active = false, next_run_at = NULL WHERE id LIKE 'flood-%' OR id = 'bob-ticks'});

# ---------------------------------------------------------------------------
# max_concurrent belongs to a type's version: alice's new version with a
# limit of 1, held by her long task, does not hold up bob's process, which
# kept the version without a limit.
sql(q{SELECT orch.grant_process_type('quick', 'orch_user')});
as('alice', q{SELECT orch.define_process_type('shared', '[{"name": "s", "sql": "SELECT 1"}]');
              SELECT orch.grant_process_type('shared', 'orch_user')});
as('bob', q{SELECT orch.create_process('bob-shared', 'shared')});
as('alice', q{SELECT orch.define_process_type('shared', '[{"name": "s", "sql": "SELECT pg_sleep(60)"}]', max_concurrent => 1);
              SELECT orch.create_process('alice-shared', 'shared'); SELECT orch.start('alice-shared')});
ok($node->poll_query_until('postgres', q{SELECT status = 'RUNNING' FROM orch.tasks WHERE process_id = 'alice-shared'}),
	"alice's version 2 task holds its only slot");
as('bob', q{SELECT orch.start('bob-shared')});
is(as('bob', q{SELECT orch.wait('bob-shared', '30 seconds')}), 'COMPLETED', "bob's version 1 run is not held up");

# A delayed retry is woken for while other ready tasks wait for their limit.
as('alice', q{SELECT orch.create_process('alice-shared-2', 'shared'); SELECT orch.start('alice-shared-2')});
as('bob', q{SELECT orch.define_process_type('fails-twice',
              '[{"name": "f", "sql": "SELECT 1/0", "max_retries": 1, "retry_delay": "1 second"}]');
            SELECT orch.create_process('bob-retry', 'fails-twice'); SELECT orch.start('bob-retry')});
is(as('bob', q{SELECT orch.wait('bob-retry', '15 seconds')}), 'FAILED', "bob's retried run ends within seconds");
is(sql(q{SELECT attempt FROM orch.tasks WHERE process_id = 'bob-retry'}), '2', 'after its retry');
sql(q{SELECT orch.stop(id) FROM orch.processes WHERE id LIKE 'alice-shared%'});

# A user holding her own due process's row does not make the scheduler spin.
as('alice', q{SELECT orch.create_process('held-tick', 'quick', schedule => '* * * * * *')});
my $ticker = $node->background_psql('postgres', extra_params => [ '-U', 'alice' ]);
$ticker->query_safe(q{BEGIN; SELECT orch.pause('held-tick') IS NOT NULL});
my $scheduler = scheduler_pid($node);
sub cpu_ticks {
	open(my $fh, '<', "/proc/$_[0]/stat") or die "no /proc/$_[0]/stat";
	my @fields = split ' ', (<$fh> =~ s/^.*\) //r);
	close $fh;
	return $fields[11] + $fields[12];  # utime + stime
}
ok($node->poll_query_until('postgres', q{SELECT next_run_at <= now() FROM orch.processes WHERE id = 'held-tick'}),
	'her tick is due under her lock');
my $before = cpu_ticks($scheduler);
sleep 2;  # the measurement window
my $used = cpu_ticks($scheduler) - $before;
cmp_ok($used, '<', 40, "the scheduler used $used CPU ticks in 2 s meanwhile");
$ticker->query_safe('ROLLBACK');
$ticker->quit;

$node->stop;
done_testing();
