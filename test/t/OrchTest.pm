# Helpers shared by the TAP tests: a cluster with pg_orch preloaded, and
# checks on OS processes.
package OrchTest;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use Exporter 'import';

our @EXPORT = qw(orch_node alive wait_until scheduler_pid reload_and_wait);

# A started node with pg_orch preloaded and created in "postgres".
sub orch_node {
	my ($name, @conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', join("\n",
		"shared_preload_libraries = 'pg_orch'",
		"restart_after_crash = on", @conf) . "\n");
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION pg_orch');
	return $node;
}

# Is the process alive? A zombie (killed, not yet reaped) counts as dead.
sub alive {
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/stat") or return 0;
	my $stat = <$fh>;
	close $fh;
	return $stat =~ /^\d+ \(.*\) ([A-Za-z])/ && $1 ne 'Z';
}

# Polls $check every 20 ms until it returns true or $seconds pass.
sub wait_until {
	my ($seconds, $check) = @_;
	my $deadline = time() + $seconds;
	while (time() < $deadline) {
		return 1 if $check->();
		usleep(20_000);
	}
	return $check->() ? 1 : 0;
}

# Reloads the configuration and waits until every pg_orch worker has it:
# until the postmaster has read it (a new session sees a later
# pg_conf_load_time()) and so signalled the workers, and until no pruner
# started before that is left. A pruner keeps the values of a batch it had
# begun; and one forked just before the reload may never see it, since a
# background worker ignores SIGHUP until it sets its handler.
sub reload_and_wait {
	my ($node) = @_;
	my $before = $node->safe_psql('postgres', 'SELECT pg_conf_load_time()');
	$node->reload;
	my $loaded = '';
	wait_until(30, sub {
		$loaded = $node->safe_psql('postgres',
			"SELECT pg_conf_load_time() FROM (SELECT) s WHERE pg_conf_load_time() > '$before'");
		return $loaded ne '';
	}) or die 'the server did not reload its configuration';
	wait_until(60, sub {
		$node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity
		                              WHERE backend_type = 'pg_orch pruner' AND backend_start <= '$loaded'") eq '0';
	}) or die 'a pruner started before the reload is still running';
	return;
}

# The pid of the scheduler of a database ("postgres" if not given).
sub scheduler_pid {
	my ($node, $database) = @_;
	$database //= 'postgres';
	my $pid;
	wait_until(30, sub {
		$pid = $node->safe_psql('postgres',
			"SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_orch scheduler' AND datname = '$database'");
		return $pid ne '';
	});
	return $pid;
}

1;
