# A real single-node Slurm for the tests, run by the tests' own OS user in a
# temporary directory: a private munged (own key and socket), slurmctld and
# slurmd on free ports, no systemd, cgroups or slurmdbd. SLURM_CONF is set
# in %ENV, so servers started afterwards find it too.
package SlurmTest;
use strict;
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use File::Temp ();
use Sys::Hostname;
use Time::HiRes qw(usleep time);

our @EXPORT = qw(start_slurm stop_slurm stop_slurmctld start_slurmctld slurm);

my $dir;

sub slurm {
	my ($command) = @_;
	my $out = `$command 2>&1`;
	chomp $out;
	return $out;
}

sub write_file {
	my ($path, $content) = @_;
	open(my $fh, '>', $path) or die "$path: $!";
	print $fh $content;
	close $fh;
}

sub start_slurmctld {
	system('slurmctld') == 0 or die 'slurmctld did not start: ' . slurm("cat $dir/slurmctld.log");
	my $deadline = time() + 30;
	while (time() < $deadline) {
		return if slurm('sinfo -h -o %t') =~ /^idle/m;
		usleep(100_000);
	}
	die 'the Slurm node did not become idle: ' . slurm('sinfo') . slurm("cat $dir/slurmctld.log $dir/slurmd.log");
}

sub stop_slurmctld {
	my $pid = slurm("cat $dir/slurmctld.pid");
	return unless $pid =~ /^\d+$/;
	kill 'TERM', $pid;
	my $deadline = time() + 30;
	usleep(50_000) while kill(0, $pid) && time() < $deadline;
}

sub start_slurm {
	# Under /tmp, not the test directory: munged refuses a log or socket below
	# a world-writable directory without the sticky bit.
	$dir = File::Temp::tempdir('pg_orch_slurm_XXXXXX', TMPDIR => 1, CLEANUP => 1);
	mkdir "$_" or die "$_: $!" for ("$dir/key", "$dir/munge", "$dir/state", "$dir/spool");
	chmod 0755, $dir, "$dir/munge";  # munged wants its socket's directories reachable, not writable by others
	chmod 0700, "$dir/key", "$dir/state", "$dir/spool";
	open(my $random, '<', '/dev/urandom') or die $!;
	read($random, my $key, 1024);
	write_file("$dir/key/munge.key", $key);
	chmod 0400, "$dir/key/munge.key";
	system('munged', "--key-file=$dir/key/munge.key", "--socket=$dir/munge/munge.socket",
		"--pid-file=$dir/munge/munged.pid", "--log-file=$dir/munge/munged.log", "--seed-file=$dir/munge/seed") == 0
	  or die 'munged did not start: ' . slurm("cat $dir/munge/munged.log");
	my $host = hostname();
	my $user = getpwuid($<);
	my ($ctld_port, $slurmd_port) = (PostgreSQL::Test::Cluster::get_free_port(), PostgreSQL::Test::Cluster::get_free_port());
	write_file("$dir/slurm.conf", <<"CONF");
ClusterName=orch
SlurmctldHost=$host(127.0.0.1)
SlurmUser=$user
SlurmdUser=$user
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.log
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 CPUs=16 RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
	# Slurm 23.11 and later start a cgroup plugin even for proctrack/linuxproc;
	# without a cgroup file system here it must be disabled (22.05 knows no
	# such value).
	my ($major, $minor) = slurm('slurmd -V') =~ /(\d+)\.(\d+)/;
	write_file("$dir/cgroup.conf", "CgroupPlugin=disabled\n") if $major > 23 || ($major == 23 && $minor >= 11);
	$ENV{SLURM_CONF} = "$dir/slurm.conf";
	system('slurmd') == 0 or die 'slurmd did not start: ' . slurm("cat $dir/slurmd.log");
	start_slurmctld();
	return $dir;
}

# Cancels every job (scontrol shutdown leaves them running), then stops the daemons.
sub stop_slurm {
	return unless $dir && -e "$dir/slurmd.pid";
	my $ctld = slurm("cat $dir/slurmctld.pid");
	start_slurmctld() unless $ctld =~ /^\d+$/ && kill(0, $ctld);
	slurm('scancel --user=' . getpwuid($<));
	my $deadline = time() + 30;
	usleep(100_000) while slurm('squeue -h') ne '' && time() < $deadline;
	slurm('scontrol shutdown');
	for my $pid_file ("$dir/slurmctld.pid", "$dir/slurmd.pid") {
		my $pid = slurm("cat $pid_file");
		usleep(50_000) while $pid =~ /^\d+$/ && kill(0, $pid) && time() < $deadline + 10;
	}
	my $munged = slurm("cat $dir/munge/munged.pid");
	kill 'TERM', $munged if $munged =~ /^\d+$/;
	undef $dir;
}

1;
