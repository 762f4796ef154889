# One scheduler per database that has the extension, started by the
# launcher without a restart or a setting; DROP DATABASE never waits for
# it; DROP EXTENSION stops it; templates and databases without connections
# get none; a database whose scheduler keeps failing costs the others
# nothing.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use OrchTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = orch_node('every_database', 'orch.poll_interval = 1h');
sub sql_in { return $node->safe_psql($_[0], $_[1]); }
my $dir = PostgreSQL::Test::Utils::tempdir();

sub schedulers_in {
	return sql_in('postgres', "SELECT count(*) FROM pg_stat_activity
	  WHERE backend_type = 'pg_orch scheduler' AND datname = '$_[0]'");
}

# A process that appends its database's name to a file.
sub make_process {
	my ($db) = @_;
	sql_in($db, qq{SELECT orch.define_process_type('note', '[{"name": "w", "command": ["/bin/sh", "-c", "echo $db >> $dir/$db"]}]');
	  SELECT orch.create_process('p', 'note')});
}
sub run_once {
	my ($db) = @_;
	sql_in($db, q{SELECT orch.start('p')});
	return wait_until(30, sub {
		sql_in($db, q{SELECT status FROM orch.runs WHERE process_id = 'p' ORDER BY id DESC LIMIT 1}) eq 'COMPLETED' });
}

# Two databases created and given the extension while the server runs.
for my $db ('db_a', 'db_b') {
	sql_in('postgres', "CREATE DATABASE $db");
	my $start = time;
	sql_in($db, 'CREATE EXTENSION pg_orch');
	ok(wait_until(5, sub { schedulers_in($db) eq '1' }), "$db: a scheduler after CREATE EXTENSION");
	cmp_ok(time - $start, '<', 2, "$db: within 2 s");
	make_process($db);
}
ok(run_once('db_a') && run_once('db_b'), 'each database runs its own process');
is(slurp_file("$dir/db_a") . slurp_file("$dir/db_b"), "db_a\ndb_b\n", 'each in its own database');
is(schedulers_in('postgres'), '1', 'the first database keeps its scheduler');

# A database created from a template that has the extension gets one too;
# the template itself and a database without connections get none.
sql_in('template1', 'CREATE EXTENSION pg_orch');
sql_in('postgres', 'CREATE DATABASE db_copy');
sql_in('postgres', 'CREATE DATABASE db_copy2 TEMPLATE db_a');
ok(wait_until(5, sub { schedulers_in('db_copy2') eq '1' && schedulers_in('db_a') eq '1' }),
	'CREATE DATABASE ... TEMPLATE of a database with a scheduler succeeds; both have one after');
ok(wait_until(5, sub { schedulers_in('db_copy') eq '1' }), 'a copy of a template with the extension gets a scheduler');
sql_in('postgres', 'CREATE DATABASE db_closed TEMPLATE template0');
sql_in('db_closed', 'CREATE EXTENSION pg_orch');
ok(wait_until(5, sub { schedulers_in('db_closed') eq '1' }), 'db_closed has one');
sql_in('postgres', 'ALTER DATABASE db_closed WITH ALLOW_CONNECTIONS false');
sql_in('postgres', q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'db_closed'});
# 0.1's one-database setting is still accepted, and ignored with a warning.
$node->append_conf('postgresql.conf', "orch.database_name = 'db_a'\n");
my $log_at_restart = -s $node->logfile;
$node->restart;
ok(wait_until(10, sub { schedulers_in('db_a') eq '1' && schedulers_in('db_copy') eq '1' }),
	'after a restart, every database with the extension has its scheduler again');
like(slurp_file($node->logfile, $log_at_restart), qr/WARNING:  orch.database_name is ignored/,
	'orch.database_name is ignored, with a warning');
Time::HiRes::sleep(1.5);
is(sql_in('postgres', q{SELECT string_agg(DISTINCT datname, ',' ORDER BY datname) FROM pg_stat_activity
  WHERE backend_type = 'pg_orch scheduler'}), 'db_a,db_b,db_copy,db_copy2,postgres',
	'none in template1 (a template) nor db_closed (no connections), nor for long in a database without it');

# Red team: another user's DROP DATABASE, RENAME of it or DROP EXTENSION
# fails, and must not stop its scheduler meanwhile (one line, repeated,
# would starve it).
sql_in('postgres', 'CREATE ROLE mallory LOGIN CREATEDB');
my $before = scheduler_pid($node, 'db_a');
for my $statement ('DROP DATABASE db_a', 'ALTER DATABASE db_a RENAME TO stolen', 'CREATE DATABASE copy_of_a TEMPLATE db_a') {
	my ($rc, $out, $err) = $node->psql('postgres', $statement, extra_params => ['-U', 'mallory']);
	like($err, qr/must be owner|permission denied/, "mallory: $statement is refused");
}
my (undef, undef, $drop_err) = $node->psql('db_a', 'DROP EXTENSION pg_orch', extra_params => ['-U', 'mallory']);
like($drop_err, qr/must be owner/, 'mallory: DROP EXTENSION pg_orch in db_a is refused');
is(scheduler_pid($node, 'db_a'), $before, "and db_a's scheduler was never stopped");

# DROP DATABASE without FORCE, while a command of that database runs.
sql_in('db_b', q{SELECT orch.define_process_type('sleeper', '[{"name": "s", "command": ["sleep", "300"]}]');
  SELECT orch.create_process('s', 'sleeper'); SELECT orch.start('s')});
my $sleeper;
ok(wait_until(10, sub { ($sleeper = sql_in('db_b', q{SELECT pid FROM orch.tasks WHERE process_id = 's' AND status = 'RUNNING'})) ne '' }),
	'db_b runs a long command');
my $start = time;
my ($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE db_b');
is($rc, 0, 'DROP DATABASE db_b succeeds without FORCE') or diag($err);
cmp_ok(time - $start, '<', 5, 'without waiting for the scheduler (seconds)');
ok(wait_until(10, sub { !alive($sleeper) }), "its command was stopped with its scheduler");
ok(run_once('db_a'), 'db_a goes on');

# ALTER DATABASE ... RENAME: held, then its scheduler is back.
($rc, $out, $err) = $node->psql('postgres', 'ALTER DATABASE db_copy RENAME TO db_renamed');
is($rc, 0, 'ALTER DATABASE ... RENAME succeeds while it has a scheduler') or diag($err);
ok(wait_until(5, sub { schedulers_in('db_renamed') eq '1' }), 'and the scheduler is back under the new name');

# DROP EXTENSION stops the scheduler; CREATE EXTENSION brings it back.
sql_in('db_a', 'DROP EXTENSION pg_orch');
ok(wait_until(5, sub { schedulers_in('db_a') eq '0' }), 'DROP EXTENSION: the scheduler leaves');
Time::HiRes::sleep(2);
is(schedulers_in('db_a'), '0', 'and is not started again');
sql_in('db_a', 'CREATE EXTENSION pg_orch');
ok(wait_until(5, sub { schedulers_in('db_a') eq '1' }), 'CREATE EXTENSION again: it is back');
make_process('db_a');

# DROP EXTENSION while the scheduler starts up (right after CREATE
# EXTENSION) or is busy starting runs: the database's workers leave first,
# so the DROP never meets their locks in the other order (it could fail
# with "deadlock detected").
sql_in('postgres', 'CREATE DATABASE db_churn TEMPLATE template0');
my @failed;
for my $round (1 .. 12) {
	sql_in('db_churn', q{CREATE EXTENSION pg_orch;
	  SELECT orch.define_process_type('t', '[{"name": "w", "command": ["/bin/sleep", "30"]}]');
	  SELECT count(orch.create_process('p' || i, 't')) FROM generate_series(1, 20) i;
	  SELECT count(orch.start('p' || i)) FROM generate_series(1, 20) i});
	Time::HiRes::sleep(0.02 * ($round % 4));
	my ($drop_rc, $drop_out, $drop_err) = $node->psql('db_churn', 'DROP EXTENSION pg_orch');
	next if $drop_rc == 0;
	push @failed, $drop_err;
	sql_in('db_churn', 'DROP EXTENSION pg_orch');
}
is(join('', @failed), '', 'DROP EXTENSION succeeded in each of 12 rounds');
ok(wait_until(5, sub { schedulers_in('db_churn') eq '0' }), 'and no scheduler is left in that database');
# A DROP EXTENSION rolled back leaves the extension: its scheduler is back.
sql_in('db_churn', 'CREATE EXTENSION pg_orch');
ok(wait_until(5, sub { schedulers_in('db_churn') eq '1' }), 'db_churn has a scheduler again');
my $churn_scheduler = scheduler_pid($node, 'db_churn');
sql_in('db_churn', 'BEGIN; DROP EXTENSION pg_orch; ROLLBACK');
ok(wait_until(10, sub { my $pid = scheduler_pid($node, 'db_churn'); $pid ne '' && $pid ne $churn_scheduler }),
	'after a DROP EXTENSION rolled back, a new scheduler runs');

# Red team: a database's owner sets what would break the workers' SQL for
# every session of the database; the scheduler pins its own.
sql_in('postgres', q{ALTER DATABASE db_a SET default_transaction_read_only = on;
  ALTER DATABASE db_a SET statement_timeout = '1ms'; ALTER DATABASE db_a SET default_transaction_isolation = 'serializable'});
my $old_scheduler = scheduler_pid($node, 'db_a');
sql_in('postgres', "SELECT pg_terminate_backend($old_scheduler)");
ok(wait_until(10, sub { my $pid = scheduler_pid($node, 'db_a'); $pid ne '' && $pid ne $old_scheduler }),
	'its scheduler starts again under those settings');
my $unset = 'SET default_transaction_read_only = off; SET statement_timeout = 0;';
sql_in('db_a', "$unset SELECT orch.start('p')");
ok(wait_until(30, sub {
	sql_in('db_a', "$unset SELECT status FROM orch.runs WHERE process_id = 'p' ORDER BY id DESC LIMIT 1") eq 'COMPLETED' }),
	'and runs the process as usual');
sql_in('postgres', q{ALTER DATABASE db_a RESET ALL});

# Red team: any role with CREATEDB may copy a database marked IS_TEMPLATE;
# its scheduler (started before the mark) must not make that fail.
sql_in('postgres', 'CREATE DATABASE db_tmpl');  # (from template1, which has the extension)
ok(wait_until(5, sub { schedulers_in('db_tmpl') eq '1' }), 'db_tmpl has a scheduler');
sql_in('postgres', 'ALTER DATABASE db_tmpl IS_TEMPLATE true');
($rc, $out, $err) = $node->psql('postgres', 'CREATE DATABASE mallorys_copy TEMPLATE db_tmpl', extra_params => ['-U', 'mallory']);
is($rc, 0, 'mallory copies the template') or diag($err);
Time::HiRes::sleep(1.5);
is(schedulers_in('db_tmpl'), '0', 'and the template, a template now, has no scheduler any more');

# A scheduler that keeps failing (a superuser broke its database's
# extension) costs the other databases nothing.
sql_in('db_renamed', 'ALTER FUNCTION orch._claim_tasks(integer, integer) RENAME TO broken');
sql_in('db_renamed', q{SELECT orch.define_process_type('note', '[{"name": "w", "command": ["true"]}]');
  SELECT orch.create_process('p', 'note'); SELECT orch.start('p')});
my $log_offset = -s $node->logfile;
$start = time;
ok(run_once('db_a'), 'db_a runs while db_renamed fails every turn');
cmp_ok(time - $start, '<', 3, 'as fast as usual (seconds)');
ok(wait_until(10, sub { slurp_file($node->logfile, $log_offset) =~ /pg_orch scheduler: .*_claim_tasks/ }),
	'the failure is logged');
sql_in('db_renamed', 'ALTER FUNCTION orch.broken(integer, integer) RENAME TO _claim_tasks');
ok(wait_until(10, sub {
	sql_in('db_renamed', q{SELECT status FROM orch.runs WHERE process_id = 'p'}) eq 'COMPLETED' }),
	'once repaired, db_renamed runs its process');

# A database whose collation orders names unlike C (ICU "en" puts "a"
# before "B"; C puts upper case first): a start finds its type's tasks
# whatever the names (orch._write_run once looked them up in C's order, and
# "p-a" found none).
sql_in('postgres', q{CREATE DATABASE db_icu LOCALE_PROVIDER icu ICU_LOCALE 'en' LOCALE 'C' TEMPLATE template0});
sql_in('db_icu', 'CREATE EXTENSION pg_orch');
sql_in('db_icu', q{SELECT orch.define_process_type(n, '[{"name": "t", "command": ["true"]}]')
  FROM unnest(ARRAY['b', 'Build', 'a', 'C', 'c', 'B']) n});
sql_in('db_icu', q{SELECT orch.create_process('p-' || name, name) FROM orch.process_types});
($rc, $out, $err) = $node->psql('db_icu', q{SELECT count(orch.start(id)) FROM orch.processes});
is($rc, 0, 'db_icu (ICU collation): every process starts') or diag($err);
is(sql_in('db_icu', q{SELECT string_agg(process_id || '=' || n, ' ' ORDER BY process_id COLLATE "C")
  FROM (SELECT process_id, count(*) AS n FROM orch.tasks GROUP BY 1) t}),
	'p-B=1 p-Build=1 p-C=1 p-a=1 p-b=1 p-c=1', 'each with its task');

$node->stop;
done_testing();
