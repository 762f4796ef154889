# Bounded history: with 1-second retention the scheduler prunes finished
# runs (keeping each process's latest), their tasks and events, in batches;
# archives them first as gzip JSON lines listed in orch.archives; drops an
# expired month of events as a partition; leaves the statistics unchanged;
# and keeps the rows, saying why, when the archive directory is not writable.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use OrchTest;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = orch_node('history');
sub sql { return $node->safe_psql('postgres', $_[0]); }
my $archive = PostgreSQL::Test::Utils::tempdir();

sql(q{SELECT orch.define_process_type('quick', '[{"name": "a", "command": ["true"]}, {"name": "b", "command": ["true"]}]')});
for my $p ('h1', 'h2') {
	sql(qq{SELECT orch.create_process('$p', 'quick')});
	for (1 .. 3) {
		sql(qq{SELECT orch.start('$p')});
		is(sql(qq{SELECT orch.wait('$p', '30 seconds')}), 'COMPLETED', "$p ran");
	}
}
my $month = sql(q{SELECT 'events_' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM')});
ok(wait_until(30, sub { sql(qq{SELECT to_regclass('orch.$month') IS NOT NULL}) eq 't' }),
	"the scheduler added this month's partition of orch.events ($month)");
is(sql(q{SELECT count(*) FROM orch.events_default}), '0', 'and no event went to the default partition');

# An expired month, as if kept from long ago.
sql(q{CREATE TABLE orch.events_2020_01 PARTITION OF orch.events FOR VALUES FROM ('2020-01-01 UTC') TO ('2020-02-01 UTC');
      INSERT INTO orch.events (at, owner, kind) SELECT '2020-01-15 UTC'::timestamptz + i * interval '1 minute', 'old', 'created'
      FROM generate_series(1, 50) AS i});
my $stats = sql(q{SELECT * FROM orch.task_stats ORDER BY type, task});
my $latest = sql(q{SELECT string_agg(current_run_id::text, ',' ORDER BY id) FROM orch.processes});

$node->append_conf('postgresql.conf', "orch.history_retention = '1s'\norch.events_retention = '1s'\norch.archive_directory = '$archive'\n");
reload_and_wait($node);
ok(wait_until(30, sub { sql(q{SELECT count(*) FROM orch.runs}) eq '2' }), 'the scheduler pruned the old runs by itself');
is(sql(q{SELECT string_agg(id::text, ',' ORDER BY process_id) FROM orch.runs}), $latest, "each process's latest run is kept");
is(sql(q{SELECT count(*) FROM orch.tasks WHERE run_id NOT IN (SELECT id FROM orch.runs)}), '0', 'no task of a pruned run is left');
is(sql(q{SELECT count(*) FROM orch.tasks}), '4', 'the kept runs keep their tasks');
ok(wait_until(30, sub { sql(q{SELECT count(*) FROM orch.events WHERE at < now() - interval '3 seconds'}) eq '0' }),
	'events older than the retention are pruned');
is(sql(q{SELECT to_regclass('orch.events_2020_01') IS NULL}), 't', 'the expired month went as a partition');
is(sql(q{SELECT * FROM orch.task_stats ORDER BY type, task}), $stats, 'the statistics are unchanged');

# The archives: every pruned row once, readable with zcat.
is(sql(q{SELECT string_agg(kind || '=' || n, ' ' ORDER BY kind) FROM (SELECT kind, sum(row_count) AS n FROM orch.archives GROUP BY kind) k
         WHERE kind <> 'events'}), 'runs=4 tasks=8', 'orch.archives lists 4 runs and their 8 tasks');
is(sql(q{SELECT count(*) FROM orch.archives WHERE kind = 'events' AND row_count = 50 AND last_at < '2020-02-01'}), '1',
	'the expired month is one file of its 50 events');
my $lines = 0;
my $files = 0;
for my $row (split /\n/, sql(q{SELECT file || '|' || row_count || '|' || bytes FROM orch.archives})) {
	my ($file, $count, $bytes) = split /\|/, $row;
	my $text = `zcat $archive/$file`;
	is($? >> 8, 0, "zcat reads $file");
	is(scalar(() = $text =~ /\n/g), $count, "$file holds its $count rows");
	is(-s "$archive/$file", $bytes, "$file is $bytes bytes as listed");
	is(sprintf('%o', (stat("$archive/$file"))[2] & 0777), '600', "$file is the server user's alone");
	$files++;
}
ok($files >= 3, "$files archive files");
like(`zcat $archive/*_runs_*`, qr/^\{"id":\d+,"process_id":"h[12]","owner":"postgres","status":"COMPLETED"/m,
	'a run is a JSON object per line');

# Red team: a reader holding orch.events (any orch_viewer may) while a month
# expires: the month is neither archived again and again nor dropped
# without its rows; once the reader is gone, it goes as one file of all of
# them, written after the last of its rows.
sql(q{CREATE TABLE orch.events_2020_02 PARTITION OF orch.events FOR VALUES FROM ('2020-02-01 UTC') TO ('2020-03-01 UTC');
      INSERT INTO orch.events (at, owner, kind) SELECT '2020-02-15 UTC'::timestamptz + i * interval '1 second', 'old', 'created'
      FROM generate_series(1, 2000) AS i;
      CREATE ROLE peeker LOGIN IN ROLE orch_viewer});
my $reader = $node->background_psql('postgres', extra_params => ['-U', 'peeker']);
$reader->query_safe('BEGIN; SELECT count(*) FROM orch.events');
my $files_before = sql(q{SELECT count(*) FROM orch.archives WHERE kind = 'events'});
my $log_at_read = -s $node->logfile;
ok(wait_until(30, sub { my $tries = () = slurp_file($node->logfile, $log_at_read) =~ /could not detach the expired month orch\.events_2020_02/g; $tries >= 2 }),
	'the pruner tried to detach the month, twice, and waited for the reader');
is(sql(q{SELECT count(*) FROM orch.archives WHERE kind = 'events'}), $files_before,
	'while a reader holds orch.events, the expired month is not archived (nor again and again)');
is(sql(q{SELECT count(*) FROM orch.events_2020_02}), '2000', 'and keeps its rows');
$reader->query_safe('COMMIT');
$reader->quit;
ok(wait_until(30, sub { sql(q{SELECT to_regclass('orch.events_2020_02') IS NULL}) eq 't' }),
	'once the reader is gone, the month goes');
is(sql(q{SELECT string_agg(row_count::text, ',') FROM orch.archives WHERE kind = 'events' AND first_at < '2020-03-01'
         AND first_at >= '2020-02-01'}), '2000', 'as one file of all its rows');

# Red team: a stopped run whose command ignores SIGTERM is not pruned while
# the command still runs (it counts against the limits until it is gone).
sql(q{SELECT orch.define_process_type('stubborn', $$[{"name": "s", "shell": "trap '' TERM; sleep 60"}]$$);
      SELECT orch.create_process('st', 'stubborn')});
$node->append_conf('postgresql.conf', "orch.kill_grace = '60s'\n");
reload_and_wait($node);
sql(q{SELECT orch.start('st')});
ok(wait_until(10, sub { sql(q{SELECT status FROM orch.tasks WHERE process_id = 'st'}) eq 'RUNNING' }), 'the stubborn command runs');
sql(q{SELECT orch.stop('st')});
sql(q{SELECT orch.start('st')});
my $stopped = sql(q{SELECT min(id) FROM orch.runs WHERE process_id = 'st'});
sleep 3;
is(sql(qq{SELECT r.status || ' ' || t.status FROM orch.runs r JOIN orch.tasks t ON t.run_id = r.id WHERE r.id = $stopped}),
	'STOPPED RUNNING', 'its stopped run is kept while the command still runs');
sql(q{SELECT orch.stop('st')});
$node->append_conf('postgresql.conf', "orch.kill_grace = '1s'\n");
reload_and_wait($node);

# An archive directory the server cannot write: rows are kept, the log says why.
my $closed = PostgreSQL::Test::Utils::tempdir();
chmod 0500, $closed;
$node->append_conf('postgresql.conf', "orch.archive_directory = '$closed'\n");
reload_and_wait($node);
my $offset = -s $node->logfile;
for (1 .. 2) {
	sql(q{SELECT orch.start('h1')});
	sql(q{SELECT orch.wait('h1', '30 seconds')});
}
ok(wait_until(30, sub { slurp_file($node->logfile, $offset) =~ /pg_orch could not archive \d+ pruned tasks: .*Permission denied.*; they are kept/ }),
	"the pruner's log says why");
is(sql(q{SELECT (runs, tasks) FROM orch.prune_history()}), '(0,0)', 'orch.prune_history() prunes nothing it cannot archive');
is(sql(q{SELECT count(*) FROM orch.runs WHERE process_id = 'h1'}), '3', 'the runs are kept');

# No archive: the rest goes (the scheduler or orch.prune_history(), whichever comes first).
$node->append_conf('postgresql.conf', "orch.archive_directory = ''\n");
reload_and_wait($node);
ok(wait_until(10, sub { sql(q{SHOW orch.archive_directory}) eq '' }), 'no archive');
sql(q{SELECT orch.prune_history()});
is(sql(q{SELECT count(*) FROM orch.runs WHERE process_id = 'h1'}), '1', 'without an archive, the rest went');

# The pruner gives way to starts: while runs are being started (one every
# 20 ms here, for 4 s) it prunes at most one batch (1,000 rows) in 10 s,
# and a second if a start took over 100 ms (a slow machine); without it,
# all 5,500 rows go in well under a second. Once the starts stop, the rest
# goes.
sql(q{SELECT orch.define_process_type('busy', '[{"name": "a", "command": ["true"]}]')});
sql(q{SELECT count(orch.create_process('busy-' || i, 'busy')) FROM generate_series(1, 200) i});
my ($busy_out, $busy_err) = ('', '');
my $busy = IPC::Run::start(
	[ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c',
	  q{DO $$ BEGIN FOR i IN 1..200 LOOP PERFORM orch.start('busy-' || i); COMMIT; PERFORM pg_sleep(0.02); END LOOP; END $$} ],
	'>', \$busy_out, '2>', \$busy_err);
ok(wait_until(10, sub { sql(q{SELECT count(*) FROM orch.runs WHERE process_id LIKE 'busy-%'}) >= 10 }), 'runs are being started');
sql(q{INSERT INTO orch.runs (process_id, owner, status, triggered_by, total_tasks, started_at, completed_at)
      SELECT 'old-' || i, 'postgres', 'COMPLETED', 'SCHEDULED', 10, now() - interval '1 hour', now() - interval '1 hour'
      FROM generate_series(1, 500) i;
      INSERT INTO orch.tasks (run_id, process_id, owner, type, type_version, task_index, name, kind, status)
      SELECT r.id, r.process_id, r.owner, 'old', 1, t, 'step-' || t, 'command', 'COMPLETED'
      FROM orch.runs r, generate_series(0, 9) t WHERE r.process_id LIKE 'old-%'});
my $expired = q{SELECT (SELECT count(*) FROM orch.runs WHERE process_id LIKE 'old-%')
                       + (SELECT count(*) FROM orch.tasks WHERE process_id LIKE 'old-%')};
sleep 2;
my $starting = sql(q{SELECT count(*) FROM orch.runs WHERE process_id LIKE 'busy-%'});
my $left = sql($expired);
cmp_ok($left, '>=', 5500 - 2000, "while runs were being started ($starting so far), the pruner gave way ($left of 5500 rows left)");
$busy->finish;
is($busy_err, '', 'every start succeeded');
ok(wait_until(30, sub { sql($expired) eq '0' }), 'once the starts stopped, the rest went');

$node->stop;
done_testing();
