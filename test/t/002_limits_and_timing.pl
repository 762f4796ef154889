# Timeouts kill the whole process group (SIGTERM, then SIGKILL after
# orch.kill_grace), orch.max_concurrent_tasks bounds the children and ready
# tasks wait their turn in order, orch.max_output keeps the tail, and a
# start is picked up at commit, not by polling.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use OrchTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = orch_node('limits', 'orch.max_concurrent_tasks = 2', 'orch.max_tasks_per_owner = 2', 'orch.kill_grace = 700ms',
	'orch.max_output = 100', 'orch.poll_interval = 1h');
my $dir = PostgreSQL::Test::Utils::tempdir;

sub run_to_end {
	my ($id, $type, $input) = @_;
	$input //= '{}';
	return $node->safe_psql('postgres', qq{
	  SELECT orch.create_process('$id', '$type', '$input');
	  SELECT orch.start('$id');
	  SELECT orch.wait('$id', '60 seconds');
	});
}

# A timed-out command and its grandchild are both gone.
$node->safe_psql('postgres', qq{
  SELECT orch.define_process_type('hangs', '[{"name": "hang", "timeout": "500ms",
    "command": ["/bin/sh", "-c", "sleep 300 & echo \$! > $dir/hang.pid; wait"]}]');
});
like(run_to_end('hangs-1', 'hangs'), qr/FAILED$/, 'timed-out run FAILED');
is($node->safe_psql('postgres', "SELECT error_message FROM orch.tasks WHERE process_id = 'hangs-1'"),
	'timed out after 500ms', 'timeout recorded');
my $grandchild = slurp_file("$dir/hang.pid");
chomp $grandchild;
ok(wait_until(5, sub { !alive($grandchild) }), 'grandchild of the timed-out command is gone');

# orch.stop() kills the command's whole group too.
$node->safe_psql('postgres', qq{
  SELECT orch.define_process_type('stoppable', '[{"name": "hang",
    "command": ["/bin/sh", "-c", "sleep 300 & echo \$! > $dir/stop.pid; wait"]}]');
  SELECT orch.create_process('stoppable-1', 'stoppable');
  SELECT orch.start('stoppable-1');
});
ok(wait_until(30, sub { -s "$dir/stop.pid" }), 'stoppable command started');
ok($node->poll_query_until('postgres', "SELECT status = 'RUNNING' FROM orch.tasks WHERE process_id = 'stoppable-1'"),
	'stoppable task RUNNING');
is($node->safe_psql('postgres', "SELECT orch.stop('stoppable-1') IS NOT NULL; SELECT orch.wait('stoppable-1', '30 seconds')"),
	"t\nSTOPPED", 'stopped');
is($node->safe_psql('postgres', "SELECT status FROM orch.tasks WHERE process_id = 'stoppable-1'"), 'STOPPED',
	'task STOPPED');
$grandchild = slurp_file("$dir/stop.pid");
chomp $grandchild;
ok(wait_until(5, sub { !alive($grandchild) }), 'grandchild of the stopped command is gone');

# A command that ignores SIGTERM is killed kill_grace later.
$node->safe_psql('postgres', q{
  SELECT orch.define_process_type('stubborn', '[{"name": "ignore-term", "timeout": "300ms",
    "shell": "trap \"\" TERM; sleep 300 & wait; sleep 300"}]');
});
like(run_to_end('stubborn-1', 'stubborn'), qr/FAILED$/, 'stubborn run FAILED');
my $took = $node->safe_psql('postgres',
	"SELECT extract(epoch FROM completed_at - started_at) FROM orch.tasks WHERE process_id = 'stubborn-1'");
cmp_ok($took, '>=', 0.95, "killed after timeout + grace (took $took s)");
cmp_ok($took, '<', 5, 'but not much later');

# max_output keeps the last 100 bytes.
$node->safe_psql('postgres', q{
  SELECT orch.define_process_type('chatty', '[{"name": "talk", "shell": "seq 1 10000"}]');
});
like(run_to_end('chatty-1', 'chatty'), qr/COMPLETED$/, 'chatty run COMPLETED');
is($node->safe_psql('postgres',
	"SELECT length(output) || ' ' || output_truncated || ' ' || right(output, 11) FROM orch.tasks WHERE process_id = 'chatty-1'"),
	"100 true 9999\n10000\n", 'output is the 100-byte tail, marked truncated');

# At most two children at once; the others start in the order they became ready.
$node->safe_psql('postgres', qq{
  SELECT orch.define_process_type('nap', '[{"name": "nap", "shell":
    "echo start \$ORCH_PROCESS_ID \$(date +%s%N) >> $dir/naps; sleep 0.3; echo end \$ORCH_PROCESS_ID \$(date +%s%N) >> $dir/naps"}]');
  SELECT orch.create_process('nap-' || i, 'nap') FROM generate_series(1, 6) i;
});
$node->safe_psql('postgres', "SELECT orch.start('nap-' || i) FROM generate_series(1, 6) i");
ok($node->poll_query_until('postgres', "SELECT count(*) = 6 FROM orch.processes WHERE id LIKE 'nap-%' AND status = 'COMPLETED'"),
	'all six naps COMPLETED');
my (@events, $running, $most);
for my $line (split /\n/, slurp_file("$dir/naps")) {
	my ($what, $id, $ns) = split / /, $line;
	push @events, [ $ns, $what eq 'start' ? 1 : -1, $id ];
}
$running = 0;
$most = 0;
for my $event (sort { $a->[0] <=> $b->[0] || $a->[1] <=> $b->[1] } @events) {
	$running += $event->[1];
	$most = $running if $running > $most;
}
is($most, 2, 'never more than orch.max_concurrent_tasks children');
# Two slots free up together, so starts come in pairs whose members may
# race each other to their first line; the pairs themselves must keep order.
my @order = map { $_->[2] } grep { $_->[1] == 1 } sort { $a->[0] <=> $b->[0] } @events;
my @pairs = map { join ',', sort @order[ 2 * $_, 2 * $_ + 1 ] } 0 .. 2;
is_deeply(\@pairs, [ 'nap-1,nap-2', 'nap-3,nap-4', 'nap-5,nap-6' ],
	'ready tasks started in the order they became ready');

# Picked up at commit: poll_interval is an hour, so only the wake-up can start it quickly.
$node->safe_psql('postgres', q{
  SELECT orch.define_process_type('quick', '[{"name": "q", "command": ["/bin/true"]}]');
  SELECT orch.create_process('quick-' || i, 'quick') FROM generate_series(1, 20) i;
});
my $delays = $node->safe_psql('postgres', q{
  DO $$ BEGIN FOR i IN 1..20 LOOP
    PERFORM orch.start('quick-' || i); COMMIT;
    PERFORM orch.wait('quick-' || i, '10 seconds');
  END LOOP; END $$;
  SELECT max(extract(epoch FROM t.started_at - r.started_at)) FROM orch.tasks t JOIN orch.runs r ON r.id = t.run_id
  WHERE t.process_id LIKE 'quick-%';
});
cmp_ok($delays, '<', 0.5, "every start picked up within 0.5 s of its commit (slowest: $delays s)");

$node->stop;
done_testing();
