# Workflows: outputs flow between tasks. A command writes JSON to
# $ORCH_OUTPUT, a shell task reads its ancestors' outputs in ORCH_OUTPUTS,
# an sql task gets them as $2 and returns rows (its output), and a command
# uses a part of one with {{tasks.NAME.output.PATH}}. A PATH that is not in
# the output fails that task and skips what depends on it; invalid output
# fails the attempt saying why; retry keeps completed tasks' outputs.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use OrchTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = orch_node('workflows', 'orch.max_output_data = 200', 'orch.poll_interval = 1h');
sub sql { return $node->safe_psql('postgres', $_[0]); }
my $dir = PostgreSQL::Test::Utils::tempdir();

sql(q{CREATE ROLE wf_user NOLOGIN; GRANT orch_user TO wf_user;});

# Runs as the superuser: command and shell tasks are an admin's to define.
sql(qq{SELECT orch.define_process_type('pipeline', \$json\$[
  {"name": "extract", "shell": "printf '{\\"files\\": [\\"a b.csv\\", \\"c;d.csv\\"], \\"rows\\": 40}' > \\"\$ORCH_OUTPUT\\""},
  {"name": "count", "shell": "printf '%s' \\"\$ORCH_OUTPUTS\\" > $dir/outputs.json; echo 2 > \\"\$ORCH_OUTPUT\\""},
  {"name": "sum", "sql": "SELECT (\$2 -> 'extract' ->> 'rows')::int + (\$2 ->> 'count')::int AS total, \$1 ->> 'tag' AS tag"},
  {"name": "report", "command": ["/bin/sh", "-c", "printf '%s|%s|%s' \\"\$1\\" \\"\$2\\" \\"\$3\\" > $dir/report.txt",
                                 "sh", "{{tasks.sum.output.0.total}}", "{{tasks.extract.output.files.0}}",
                                 "{{tasks.extract.output.files}}"]}
]\$json\$)});
sql(q{SELECT orch.grant_process_type('pipeline', 'wf_user')});
sql(q{SET ROLE wf_user; SELECT orch.create_process('p1', 'pipeline', '{"tag": "nightly"}')});
sql(q{SET ROLE wf_user; SELECT orch.start('p1')});
ok(wait_until(30, sub { sql(q{SELECT status FROM orch.processes WHERE id = 'p1'}) eq 'COMPLETED' }),
	'the pipeline completes')
	or diag(sql(q{SELECT string_agg(name || ' ' || status || ' ' || coalesce(error_message, ''), '; ')
	              FROM orch.tasks WHERE process_id = 'p1'}));
is(sql(q{SELECT output_data FROM orch.tasks WHERE process_id = 'p1' AND name = 'extract'}),
	'{"rows": 40, "files": ["a b.csv", "c;d.csv"]}', 'a shell task\'s $ORCH_OUTPUT is its output');
is(slurp_file("$dir/outputs.json"), '{"extract": {"rows": 40, "files": ["a b.csv", "c;d.csv"]}}',
	'ORCH_OUTPUTS holds the ancestors\' outputs by name');
is(sql(q{SELECT output_data FROM orch.tasks WHERE process_id = 'p1' AND name = 'sum'}),
	'[{"tag": "nightly", "total": 42}]', 'an sql task sees them as $2 and its rows are its output');
is(slurp_file("$dir/report.txt"), '42|a b.csv|["a b.csv","c;d.csv"]',
	'{{tasks.NAME.output.PATH}} fills one argument each, whatever the value holds');
is(sql(q{SELECT command[6] FROM orch.tasks WHERE process_id = 'p1' AND name = 'report'}), 'a b.csv',
	'the command as it ran is recorded');
is(sql(q{SELECT r.output_data IS NULL FROM orch.runs r WHERE r.process_id = 'p1'}), 't',
	'the run\'s output is its sinks\' outputs: report, the only one, wrote none');

# The run's output: the outputs of the tasks nothing depends on, by name.
sql(qq{SELECT orch.define_process_type('sinks', \$json\$[
  {"name": "a", "shell": "echo 1 > \\"\$ORCH_OUTPUT\\"", "depends_on": []},
  {"name": "b", "shell": "echo '[2]' > \\"\$ORCH_OUTPUT\\"", "depends_on": ["a"]},
  {"name": "c", "shell": "echo 3 > \\"\$ORCH_OUTPUT\\"", "depends_on": []}
]\$json\$)});
sql(q{SELECT orch.create_process('s1', 'sinks'); SELECT orch.start('s1')});
ok(wait_until(30, sub { sql(q{SELECT status FROM orch.processes WHERE id = 's1'}) eq 'COMPLETED' }), 'sinks complete');
is(sql(q{SELECT output_data FROM orch.runs WHERE process_id = 's1'}), '{"b": [2], "c": 3}', 'the run\'s output');

# A PATH that is not in the output fails that task, saying which, and skips its dependents.
sql(qq{SELECT orch.define_process_type('missing', \$json\$[
  {"name": "first", "shell": "echo '{\\"a\\": 1}' > \\"\$ORCH_OUTPUT\\""},
  {"name": "second", "command": ["echo", "{{tasks.first.output.b}}"]},
  {"name": "third", "command": ["true"]}
]\$json\$)});
sql(q{SELECT orch.create_process('m1', 'missing'); SELECT orch.start('m1')});
ok(wait_until(30, sub { sql(q{SELECT status FROM orch.processes WHERE id = 'm1'}) eq 'FAILED' }), 'the run fails');
is(sql(q{SELECT string_agg(name || ':' || status || ':' || coalesce(error_message, ''), ' / ' ORDER BY task_index)
         FROM orch.tasks WHERE process_id = 'm1'}),
	'first:COMPLETED: / second:FAILED:task "second": placeholder {{tasks.first.output.b}}: the output of "first" has no "b" / '
	. 'third:SKIPPED:a task it depends on did not complete', 'the missing PATH is named, the dependent skipped');

# Invalid or oversized output fails the attempt, saying why.
sql(qq{SELECT orch.define_process_type('bad-output', \$json\$[
  {"name": "invalid", "shell": "echo 'not json' > \\"\$ORCH_OUTPUT\\"", "depends_on": []},
  {"name": "large", "shell": "seq 1 100 | tr '\\\\n' ' ' | sed 's/^/[/; s/ \$/]/; s/ /,/g' > \\"\$ORCH_OUTPUT\\"", "depends_on": []},
  {"name": "rows", "sql": "SELECT g, repeat('x', 50) AS pad FROM generate_series(1, 10) g", "depends_on": []}
]\$json\$)});
sql(q{SELECT orch.grant_process_type('bad-output', 'wf_user')});
sql(q{SET ROLE wf_user; SELECT orch.create_process('b1', 'bad-output'); SELECT orch.start('b1')});
ok(wait_until(30, sub { sql(q{SELECT status FROM orch.processes WHERE id = 'b1'}) eq 'FAILED' }), 'bad outputs fail');
is(sql(q{SELECT string_agg(name || ':' || status || ':' || coalesce(error_message, ''), ' / ' ORDER BY task_index)
         FROM orch.tasks WHERE process_id = 'b1'}),
	'invalid:FAILED:the output in $ORCH_OUTPUT is not one valid JSON value / '
	. 'large:FAILED:the output in $ORCH_OUTPUT is more than orch.max_output_data (200 bytes) / '
	. 'rows:FAILED:the rows it returned are more than orch.max_output_data (200 bytes) as JSON',
	'each says why');
is(sql(q{SELECT count(*) FROM orch.tasks WHERE process_id = 'b1' AND output_data IS NOT NULL}), '0',
	'and none of them has an output');

# Retry keeps completed tasks and their outputs; the failed one runs again.
sql(qq{SELECT orch.define_process_type('flaky', \$json\$[
  {"name": "make", "shell": "echo '{\\"n\\": 7}' > \\"\$ORCH_OUTPUT\\"; echo x >> $dir/make_runs"},
  {"name": "use", "command": ["/bin/sh", "-c", "test -e $dir/fixed && echo \$1 > $dir/used", "sh", "{{tasks.make.output.n}}"]}
]\$json\$)});
sql(q{SELECT orch.create_process('f1', 'flaky'); SELECT orch.start('f1')});
ok(wait_until(30, sub { sql(q{SELECT status FROM orch.processes WHERE id = 'f1'}) eq 'FAILED' }), 'first try fails');
append_to_file("$dir/fixed", '');
sql(q{SELECT orch.retry(current_run_id) FROM orch.processes WHERE id = 'f1'});
ok(wait_until(30, sub { sql(q{SELECT status FROM orch.processes WHERE id = 'f1'}) eq 'COMPLETED' }), 'the retry completes');
is(slurp_file("$dir/used"), "7\n", 'with the kept output');
is(slurp_file("$dir/make_runs"), "x\n", 'and the completed task did not run again');
is(sql(q{SELECT output_data FROM orch.tasks WHERE process_id = 'f1' AND name = 'make'}), '{"n": 7}', 'its output kept');

# A retried attempt is numbered 1 again, but its $ORCH_OUTPUT is a new file:
# what the failed attempt left running (out of its process group) and writes
# later is not the retry's output. The first attempt fails (once the
# leftover has left its group); the retry writes nothing and ends once the
# leftover has written 99 to the old file (10 s at most).
sql(qq{SELECT orch.define_process_type('stale', \$json\$[
  {"name": "a", "shell": "if test -e $dir/stale_again; then for i in \$(seq 100); do test -e $dir/stale_wrote && break; sleep 0.1; done; else setsid sh -c 'sleep 1; echo 99 > \$0; touch $dir/stale_wrote' \$ORCH_OUTPUT & sleep 0.3; exit 1; fi"}
]\$json\$)});
sql(q{SELECT orch.create_process('stale1', 'stale'); SELECT orch.start('stale1')});
ok(wait_until(30, sub { sql(q{SELECT status FROM orch.processes WHERE id = 'stale1'}) eq 'FAILED' }), 'stale: the first attempt fails');
append_to_file("$dir/stale_again", '');
sql(q{SELECT orch.retry(current_run_id) FROM orch.processes WHERE id = 'stale1'});
ok(wait_until(30, sub { sql(q{SELECT status FROM orch.processes WHERE id = 'stale1'}) eq 'COMPLETED' }), 'stale: the retry completes');
ok(-e "$dir/stale_wrote", 'stale: the leftover wrote before the retry ended');
is(sql(q{SELECT attempt || ' ' || coalesce(output_data::text, 'none') FROM orch.tasks WHERE process_id = 'stale1'}), '1 none',
	'stale: the retry has no output');

$node->stop;
done_testing();
