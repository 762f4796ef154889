# The scheduler is killed with SIGKILL, and the server restarted, while
# commands run: afterwards no task stays DISPATCHED or RUNNING, each is
# retried if attempts remain or FAILED saying why, and no process of the
# lost command's group survives.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use OrchTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = orch_node('crash');
my $dir = PostgreSQL::Test::Utils::tempdir;

# The task leaves a grandchild in its process group and records its pid.
$node->safe_psql('postgres', qq{
  SELECT orch.define_process_type('lingers', '[{"name": "work", "command": ["/bin/sh", "-c",
    "sleep 300 & echo \$! > $dir/{{tag}}.pid; wait"]}]');
  SELECT orch.define_process_type('lingers-retry', '[{"name": "work", "command": ["/bin/sh", "-c",
    "if [ -e $dir/{{tag}}.pid ]; then echo second attempt; exit 0; fi; sleep 300 & echo \$! > $dir/{{tag}}.pid; wait"],
    "max_retries": 1}]');
});

sub start_and_wait_running {
	my ($id, $type, $tag) = @_;
	$node->safe_psql('postgres', qq{
	  SELECT orch.create_process('$id', '$type', '{"tag": "$tag"}');
	  SELECT orch.start('$id');
	});
	ok(wait_until(30, sub { -s "$dir/$tag.pid" }), "$id: command started");
	ok($node->poll_query_until('postgres',
		"SELECT status = 'RUNNING' FROM orch.tasks WHERE process_id = '$id'"), "$id: task RUNNING");
	my $pid = slurp_file("$dir/$tag.pid");
	chomp $pid;
	ok(alive($pid), "$id: grandchild $pid alive");
	return $pid;
}

# 1. kill -9 of the scheduler (the postmaster then restarts all backends).
my $lost = start_and_wait_running('killed', 'lingers', 'killed');
my $retried = start_and_wait_running('killed-retry', 'lingers-retry', 'killed-retry');
my $scheduler = scheduler_pid($node);
kill 'KILL', $scheduler;

ok($node->poll_query_until('postgres', "SELECT status = 'FAILED' FROM orch.processes WHERE id = 'killed'"),
	'process without retries FAILED after the crash');
is($node->safe_psql('postgres', "SELECT status || ' / ' || error_message FROM orch.tasks WHERE process_id = 'killed'"),
	'FAILED / the scheduler stopped while the task was running (server crash or restart); its process group was killed',
	'task FAILED with the reason');
like($node->safe_psql('postgres', "SELECT error_message FROM orch.runs WHERE process_id = 'killed'"),
	qr/^task "work" failed: the scheduler stopped/, 'run says which task and why');
ok(wait_until(10, sub { !alive($lost) }), 'grandchild of the lost command is gone');

ok($node->poll_query_until('postgres', "SELECT status = 'COMPLETED' FROM orch.processes WHERE id = 'killed-retry'"),
	'process with a retry left COMPLETED on its second attempt');
is($node->safe_psql('postgres', "SELECT attempt || ' ' || output FROM orch.tasks WHERE process_id = 'killed-retry'"),
	"2 second attempt\n", 'second attempt ran');
ok(wait_until(10, sub { !alive($retried) }), 'grandchild of the first attempt is gone');
isnt(scheduler_pid($node), $scheduler, 'a new scheduler runs');

# 2. A server restart (fast shutdown) while a command runs.
my $restarted = start_and_wait_running('restarted', 'lingers', 'restarted');
$node->restart;
ok($node->poll_query_until('postgres', "SELECT status = 'FAILED' FROM orch.processes WHERE id = 'restarted'"),
	'process FAILED after the restart');
ok(wait_until(10, sub { !alive($restarted) }), 'grandchild gone after the restart');

# 3. An immediate shutdown (no clean exit at all) while a command runs.
my $immediate = start_and_wait_running('immediate', 'lingers', 'immediate');
$node->stop('immediate');
$node->start;
ok($node->poll_query_until('postgres', "SELECT status = 'FAILED' FROM orch.processes WHERE id = 'immediate'"),
	'process FAILED after an immediate shutdown');
ok(wait_until(10, sub { !alive($immediate) }), 'grandchild gone after the immediate shutdown');

is($node->safe_psql('postgres', "SELECT count(*) FROM orch.tasks WHERE status IN ('DISPATCHED', 'RUNNING')"),
	'0', 'no task left DISPATCHED or RUNNING');

$node->stop;
done_testing();
