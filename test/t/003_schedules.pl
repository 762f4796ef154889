# Real ticks: a 1-second schedule runs on time with triggered_by SCHEDULED,
# manual starts work between ticks, the overlap policies (skip, queue,
# parallel) and misfire policies (run_once, skip) across a server stopped
# over several ticks, and pause / resume.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use OrchTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);

my $node = orch_node('schedules');
sub sql { return $node->safe_psql('postgres', $_[0]); }

sql(q{
  SELECT orch.define_process_type('quick', '[{"name": "q", "command": ["/bin/true"]}]');
  SELECT orch.define_process_type('slow', '[{"name": "s", "command": ["/bin/sleep", "2.5"]}]');
});

# Every second, on time.
sql("SELECT orch.create_process('every-second', 'quick', schedule => '* * * * * *')");
ok($node->poll_query_until('postgres', "SELECT count(*) >= 4 FROM orch.runs WHERE process_id = 'every-second'"),
	'four ticks ran');
is(sql("SELECT string_agg(DISTINCT triggered_by, ',') FROM orch.runs WHERE process_id = 'every-second'"),
	'SCHEDULED', 'ticks are triggered_by SCHEDULED');
my $gaps = sql(q{
  SELECT min(gap) || ' ' || max(gap) FROM (
    SELECT extract(epoch FROM started_at - lag(started_at) OVER (ORDER BY id)) AS gap
    FROM orch.runs WHERE process_id = 'every-second') g WHERE gap IS NOT NULL});
my ($shortest, $longest) = split / /, $gaps;
cmp_ok($shortest, '>', 0.5, "ticks at least half a second apart ($shortest s)");
cmp_ok($longest, '<', 1.8, "ticks at most 1.8 s apart ($longest s)");
is(sql("SELECT bool_and(started_at - date_trunc('second', started_at) < interval '400 ms')
        FROM orch.runs WHERE process_id = 'every-second'"), 't', 'each run starts within 400 ms of its second');
ok(sql("SELECT last_run_at IS NOT NULL AND next_run_at > now() FROM orch.processes WHERE id = 'every-second'") eq 't',
	'last_run_at and next_run_at are current');

# Pause stops the ticks; resume starts them again.
sql("SELECT orch.pause('every-second')");
my $paused_runs = sql("SELECT count(*) FROM orch.runs WHERE process_id = 'every-second'");
sleep(2.2);
is(sql("SELECT count(*) FROM orch.runs WHERE process_id = 'every-second'"), $paused_runs, 'no tick while paused');
sql("SELECT orch.resume('every-second')");
ok($node->poll_query_until('postgres',
	"SELECT count(*) > $paused_runs FROM orch.runs WHERE process_id = 'every-second'"), 'ticks again after resume');
sql("SELECT orch.pause('every-second')");

# A manual start between ticks of an hourly schedule.
sql("SELECT orch.create_process('hourly', 'quick', schedule => '0 * * * *')");
sql("SELECT orch.start('hourly')");
is(sql("SELECT orch.wait('hourly', '30 seconds') || ' ' || triggered_by FROM orch.runs WHERE process_id = 'hourly'"),
	'COMPLETED MANUAL', 'manual start between ticks');

# Overlap: a 2.5 s task ticked every second.
sql(q{
  SELECT orch.create_process('overlap-skip', 'slow', schedule => '* * * * * *', overlap => 'skip');
  SELECT orch.create_process('overlap-queue', 'slow', schedule => '* * * * * *', overlap => 'queue');
  SELECT orch.create_process('overlap-parallel', 'slow', schedule => '* * * * * *', overlap => 'parallel');
});
sleep(6);
sql("SELECT orch.pause(id) FROM orch.processes WHERE id LIKE 'overlap-%'");
my $skip = sql(q{
  SELECT count(*) || ' ' || (SELECT count(*) FROM orch.events WHERE process_id = 'overlap-skip' AND kind = 'tick_skipped')
  FROM orch.runs WHERE process_id = 'overlap-skip'});
my ($skip_runs, $skipped_ticks) = split / /, $skip;
ok($skip_runs >= 1 && $skip_runs <= 3, "skip: $skip_runs runs in 6 s of a 2.5 s task");
cmp_ok($skipped_ticks, '>=', 3, "skip: $skipped_ticks ticks recorded as skipped");
is(sql(q{SELECT count(*) FROM (SELECT r.id FROM orch.runs r JOIN orch.runs s ON s.process_id = r.process_id
         AND s.id <> r.id AND s.started_at < coalesce(r.completed_at, now()) AND s.started_at >= r.started_at
         WHERE r.process_id = 'overlap-skip') o}), '0', 'skip: runs never overlap');

is(sql(q{SELECT count(*) FROM orch.events WHERE process_id = 'overlap-queue' AND kind = 'tick_queued'}) > 0 ? 'yes' : 'no',
	'yes', 'queue: a tick was queued');
my $queue_gap = sql(q{
  SELECT max(extract(epoch FROM r2.started_at - r1.completed_at)) FROM orch.runs r1 JOIN orch.runs r2
    ON r2.process_id = r1.process_id AND r2.id = (SELECT min(id) FROM orch.runs WHERE process_id = r1.process_id AND id > r1.id)
  WHERE r1.process_id = 'overlap-queue'});
cmp_ok($queue_gap, '<', 0.5, "queue: the queued run starts as the previous one ends (gap $queue_gap s)");
cmp_ok($queue_gap, '>=', 0, 'queue: never while the previous one runs');

cmp_ok(sql(q{SELECT max(c) FROM (SELECT (SELECT count(*) FROM orch.runs s WHERE s.process_id = r.process_id
         AND s.started_at <= r.started_at AND coalesce(s.completed_at, now()) > r.started_at) AS c
         FROM orch.runs r WHERE r.process_id = 'overlap-parallel') x}), '>=', 2,
	'parallel: runs overlap');

# Misfire: the server is down across several ticks. The slow runs end
# first: their tasks hold this owner's slots (orch.max_tasks_per_owner), and
# a misfire tick's task left waiting across the restart would keep its run in
# progress, so that the missed ticks are rightly skipped (overlap 'skip').
ok($node->poll_query_until('postgres', "SELECT NOT EXISTS (SELECT 1 FROM orch.runs WHERE status = 'IN_PROGRESS')"),
	'the slow runs ended');
sql(q{
  SELECT orch.create_process('misfire-once', 'quick', schedule => '* * * * * *', misfire => 'run_once');
  SELECT orch.create_process('misfire-skip', 'quick', schedule => '* * * * * *', misfire => 'skip');
});
ok($node->poll_query_until('postgres',
	"SELECT count(DISTINCT process_id) = 2 FROM orch.runs WHERE process_id LIKE 'misfire-%' AND status = 'COMPLETED'"),
	'misfire processes ticking');
$node->stop;
sleep(4);
$node->start;
ok($node->poll_query_until('postgres', q{
  SELECT count(*) > 0 FROM orch.runs WHERE process_id = 'misfire-once' AND started_at > pg_postmaster_start_time()
  AND NOT catch_up}), 'run_once: back on schedule after the restart');
sql("SELECT orch.pause(id) FROM orch.processes WHERE id LIKE 'misfire-%'");
is(sql(q{SELECT count(*) FROM orch.runs WHERE process_id = 'misfire-once' AND catch_up}), '1',
	'run_once: exactly one catch-up run');
is(sql(q{SELECT triggered_by FROM orch.runs WHERE process_id = 'misfire-once' AND catch_up}), 'SCHEDULED',
	'the catch-up run is SCHEDULED');
is(sql(q{SELECT count(*) FROM orch.runs WHERE process_id = 'misfire-skip' AND catch_up}), '0',
	'skip: no catch-up run');
is(sql(q{SELECT count(*) FROM orch.events WHERE process_id = 'misfire-skip' AND kind = 'tick_missed'}), '1',
	'skip: the missed ticks are recorded');
ok($node->poll_query_until('postgres', q{SELECT true}), 'server up');

$node->stop;
done_testing();
