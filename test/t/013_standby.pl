# A streaming standby (pg_basebackup with primary_conninfo and
# standby.signal) runs nothing: no launcher, no scheduler. When the primary
# dies and the standby is promoted, its scheduler starts, recovers the task
# the old primary left RUNNING as after a crash (its command, on this same
# host, is killed by its marker), and the schedules go on.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use OrchTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_orch'\norch.poll_interval = 1h\n");
$primary->start;
sub on { my ($node, $sql) = @_; return $node->safe_psql('postgres', $sql); }
on($primary, q{CREATE EXTENSION pg_orch});
on($primary, q{SELECT orch.define_process_type('tick', '[{"name": "t", "command": ["/bin/true"]}]')});
on($primary, q{SELECT orch.define_process_type('long', '[{"name": "sleep", "command": ["/bin/sleep", "600"], "max_retries": 0}]')});
on($primary, q{SELECT orch.create_process('every-second', 'tick', schedule => '* * * * * *')});
on($primary, q{SELECT orch.create_process('long-1', 'long')});

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

ok(wait_until(30, sub { on($primary, q{SELECT count(*) FROM orch.runs WHERE process_id = 'every-second' AND status = 'COMPLETED'}) >= 2 }),
	'the primary runs the schedule');
on($primary, q{SELECT orch.start('long-1')});
ok(wait_until(30, sub { on($primary, q{SELECT pid IS NOT NULL FROM orch.tasks WHERE process_id = 'long-1' AND status = 'RUNNING'}) eq 't' }),
	'a long command runs on the primary');
my $long_pid = on($primary, q{SELECT pid FROM orch.tasks WHERE process_id = 'long-1'});
$primary->wait_for_catchup($standby);

is(on($standby, q{SELECT pg_is_in_recovery()}), 't', 'the standby is in recovery');
is(on($standby, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'pg_orch%'}), '0',
	'no pg_orch worker runs on the standby');
is(on($standby, q{SELECT status FROM orch.tasks WHERE process_id = 'long-1'}), 'RUNNING',
	'the standby sees the task RUNNING');

# The primary dies (its command lives on: nothing told it), the standby takes over.
$primary->stop('immediate');
ok(alive($long_pid), 'the old primary\'s command outlived it');
my $promoted_at = on($standby, q{SELECT now()});
$standby->promote;
ok(scheduler_pid($standby), 'the promoted standby starts a scheduler');
ok(wait_until(30, sub { on($standby, q{SELECT status FROM orch.tasks WHERE process_id = 'long-1'}) eq 'FAILED' }),
	'the task left RUNNING is recovered');
like(on($standby, q{SELECT error_message FROM orch.tasks WHERE process_id = 'long-1'}),
	qr/the scheduler stopped while the task was running/, 'as after a crash');
ok(wait_until(10, sub { !alive($long_pid) }), 'its command, marked by this cluster and database, is killed');
is(on($standby, q{SELECT count(*) FROM orch.tasks WHERE status IN ('DISPATCHED', 'RUNNING')}), '0',
	'no task is left DISPATCHED or RUNNING');
ok(wait_until(30, sub { on($standby, qq{SELECT count(*) FROM orch.runs WHERE process_id = 'every-second'
                                         AND status = 'COMPLETED' AND started_at > '$promoted_at'}) >= 3 }),
	'the schedule goes on on the promoted standby');

$standby->stop;
done_testing();
