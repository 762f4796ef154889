# The slurm executor against a real single-node Slurm (SlurmTest.pm): exit
# codes, output and $ORCH_OUTPUT, options, stop and timeout (the job is
# cancelled in Slurm), a scheduler restart while a job runs (adopted, it
# completes), and a controller that goes away mid-run.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use OrchTest;
use SlurmTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

start_slurm();
END { local $?; stop_slurm(); }

my $node = orch_node('slurm', 'orch.slurm_unreachable_timeout = 3s', 'orch.poll_interval = 1h');
sub sql { return $node->safe_psql('postgres', $_[0]); }
sub task { my ($id, $column) = @_; return sql("SELECT $column FROM orch.tasks WHERE process_id = '$id'"); }
sub ends {
	my ($id, $seconds) = @_;
	wait_until($seconds // 30, sub { sql("SELECT status FROM orch.processes WHERE id = '$id'") =~ /^(COMPLETED|FAILED|STOPPED)$/ });
	return sql("SELECT status FROM orch.processes WHERE id = '$id'");
}
sub job_state { my ($job) = @_; return slurm("scontrol show job -o $job") =~ /JobState=(\w+)/ ? $1 : 'unknown'; }
sub running_job {
	my ($id) = @_;
	wait_until(30, sub { task($id, "status = 'RUNNING' AND execution_name IS NOT NULL") eq 't' }) or return '';
	my $job = task($id, 'execution_name');
	wait_until(30, sub { job_state($job) eq 'RUNNING' });
	return $job;
}

sql(q{SELECT orch.define_process_type('report', $j$[
  {"name": "r", "executor": "slurm", "max_retries": 0,
   "shell": "echo \"hello from job $SLURM_JOB_ID on $(hostname)\"; printf '{\"n\": %s}' \"$ORCH_INPUT_CODE\" > \"$ORCH_OUTPUT\"; exit $ORCH_INPUT_CODE"}
]$j$)});
sql(q{SELECT orch.create_process('ok', 'report', '{"code": 0}')});
sql(q{SELECT orch.create_process('three', 'report', '{"code": 3}')});
sql(q{SELECT orch.start('ok'); SELECT orch.start('three')});
is(ends('ok'), 'COMPLETED', 'a Slurm job that exits with 0 completes its task');
my $job = task('ok', 'execution_name');
like($job, qr/^\d+$/, 'execution_name is the Slurm job id');
like(task('ok', 'output'), qr/^hello from job $job on /, "the output is the job's output");
is(task('ok', 'output_data'), '{"n": 0}', '$ORCH_OUTPUT is read back');
is(task('ok', 'pid IS NULL'), 't', 'no local pid');
is(ends('three'), 'FAILED', 'a job that exits with 3 fails its task');
is(task('three', "exit_code || ' ' || error_message"), '3 exited with code 3', 'with its exit code');
is(job_state(task('three', 'execution_name')), 'FAILED', 'Slurm saw it fail too');

sql(q{SELECT orch.define_process_type('echo', $j$[
  {"name": "e", "executor": "slurm", "slurm": {"partition": "debug", "cpus": 2, "mem": "100M", "time": "5"},
   "command": ["/bin/echo", "{{word}}"]}
]$j$)});
sql(q{SELECT orch.create_process('echo-1', 'echo', $j${"word": "a b; $(id)"}$j$)});
sql(q{SELECT orch.start('echo-1')});
is(ends('echo-1'), 'COMPLETED', 'a command with Slurm options completes')
	or diag(task('echo-1', 'error_message'));
is(task('echo-1', 'output'), "a b; \$(id)\n", 'its argument stays one literal argument');
my $shown = slurm('scontrol show job -o ' . task('echo-1', 'execution_name'));
ok($shown =~ /\bNumCPUs=2\b/ && $shown =~ /\bTimeLimit=00:05:00\b/ && $shown =~ /\bMinMemoryNode=100M\b/
	&& $shown =~ /\bPartition=debug\b/, 'the options reach sbatch') or diag($shown);

# Stop and timeout cancel the job.
sql(q{SELECT orch.define_process_type('sleepy', $j$[{"name": "s", "executor": "slurm", "command": ["/bin/sleep", "300"]}]$j$)});
sql(q{SELECT orch.create_process('stopped', 'sleepy')});
sql(q{SELECT orch.start('stopped')});
$job = running_job('stopped');
ok($job, "the job runs in Slurm ($job)");
sql(q{SELECT orch.stop('stopped')});
is(ends('stopped', 10), 'STOPPED', 'orch.stop stops the task');
ok(wait_until(10, sub { job_state($job) eq 'CANCELLED' }), 'and cancels its job');

sql(q{SELECT orch.define_process_type('late', $j$[{"name": "s", "executor": "slurm", "timeout": "3s",
  "command": ["/bin/sleep", "300"]}]$j$)});
sql(q{SELECT orch.create_process('late-1', 'late')});
my $started = time();
sql(q{SELECT orch.start('late-1')});
is(ends('late-1'), 'FAILED', 'a job past its timeout fails');
my $elapsed = time() - $started;
is(task('late-1', 'error_message'), 'timed out after 3s', 'timed out');
ok($elapsed >= 3 && $elapsed < 10, "after its timeout (${elapsed}s)");
is(job_state(task('late-1', 'execution_name')), 'CANCELLED', 'its job is cancelled');

# A restart while a job runs: the job is adopted and completes.
sql(q{SELECT orch.define_process_type('steady', $j$[{"name": "s", "executor": "slurm", "max_retries": 0,
  "shell": "sleep 4; echo '\"done\"' > \"$ORCH_OUTPUT\""}]$j$)});
sql(q{SELECT orch.create_process('adopted', 'steady')});
sql(q{SELECT orch.start('adopted')});
$job = running_job('adopted');
ok($job, 'a job runs');
$node->restart;
is(job_state($job), 'RUNNING', 'the restart left the job running');
is(ends('adopted'), 'COMPLETED', 'the new scheduler watches it to its end');
is(task('adopted', "attempt || ' ' || execution_name || ' ' || output_data"), "1 $job \"done\"",
	'as the same attempt of the same job, with its output');

# The controller goes away mid-run: the attempt fails saying why.
sql(q{SELECT orch.create_process('orphan', 'sleepy')});
sql(q{SELECT orch.start('orphan')});
$job = running_job('orphan');
ok($job, 'a job runs');
stop_slurmctld();
is(ends('orphan', 20), 'FAILED', 'a controller that stays unreachable fails the attempt');
like(task('orphan', 'error_message'), qr/^Slurm could not be reached for 3s: /, "with Slurm's message");
start_slurmctld();

$node->stop;
done_testing();
