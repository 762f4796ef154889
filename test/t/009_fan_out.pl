# Fan-out and join: a task with "for_each" or "count" runs once per item, a
# dependent waits for every instance and gets their outputs in item order;
# max_parallel bounds the instances running at once; a failed instance
# fails the task (others finish, dependents are skipped) and retry runs only
# the failed ones again; an empty list completes at once; too many items fail.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use OrchTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = orch_node('fan_out', 'orch.max_fan_out = 1500', 'orch.max_tasks_per_owner = 8', 'orch.poll_interval = 1h');
sub sql { return $node->safe_psql('postgres', $_[0]); }
my $dir = PostgreSQL::Test::Utils::tempdir();
sql(q{CREATE ROLE fan_user NOLOGIN; GRANT orch_user TO fan_user;});
sub tasks_of {
	my ($process, $what) = @_;
	return sql(qq{SELECT string_agg($what, ' / ' ORDER BY task_index, item_index NULLS FIRST)
	              FROM orch.tasks WHERE process_id = '$process'});
}
sub ended {
	my ($process, $status) = @_;
	return wait_until(60, sub { sql(qq{SELECT status FROM orch.processes WHERE id = '$process'}) eq $status });
}

# 1,000 items from an output, squared by a command each, summed by sql.
sql(q{SELECT orch.define_process_type('squares', $json$[
  {"name": "list", "shell": "seq 1 1000 | paste -sd, | sed 's/^/[/; s/$/]/' > \"$ORCH_OUTPUT\""},
  {"name": "square", "for_each": "{{tasks.list.output}}",
   "command": ["/bin/sh", "-c", "echo $(($1 * $1)) > \"$ORCH_OUTPUT\"", "sh", "{{item}}"]},
  {"name": "sum", "sql": "SELECT sum(x::bigint) AS total, count(*) AS n FROM jsonb_array_elements_text($2 -> 'square') x"}
]$json$)});
sql(q{SELECT orch.grant_process_type('squares', 'fan_user')});
sql(q{SET ROLE fan_user; SELECT orch.create_process('sq', 'squares'); SELECT orch.start('sq')});
ok(ended('sq', 'COMPLETED'), '1,000 instances and the join complete')
	or diag(sql(q{SELECT string_agg(DISTINCT status || ': ' || coalesce(error_message, ''), '; ') FROM orch.tasks}));
is(sql(q{SELECT count(*) FROM orch.tasks WHERE process_id = 'sq' AND item_index IS NOT NULL}), '1000',
	'one row per instance');
is(sql(q{SELECT tasks_done || '/' || tasks_total FROM orch.process_state('sq')}), '1002/1002',
	'process_state counts each instance as a task');
is(sql(q{SELECT output_data FROM orch.tasks WHERE process_id = 'sq' AND name = 'sum'}),
	'[{"n": 1000, "total": 333833500}]', 'the join sees every output: the exact sum of squares');
is(sql(q{SELECT jsonb_build_array(output_data -> 0, output_data -> 999) FROM orch.tasks
         WHERE process_id = 'sq' AND name = 'square' AND item_index IS NULL}), '[1, 1000000]',
	'the fan-out\'s output is its instances\' in item order');

# count, {{item_index}}, ORCH_ITEM, {{item.PATH}}.
sql(qq{SELECT orch.define_process_type('counted', \$json\$[
  {"name": "each", "count": 3, "command": ["/bin/sh", "-c", "echo \\"\$ORCH_ITEM_INDEX \$ORCH_ITEM \$1\\" >> $dir/counted", "sh", "{{item_index}}"]},
  {"name": "objects", "for_each": [{"f": "a b"}, {"f": "c;d"}],
   "command": ["/bin/sh", "-c", "printf '%s|' \\"\$1\\" >> $dir/objects", "sh", "{{item.f}}"], "max_parallel": 1}
]\$json\$)});
sql(q{SELECT orch.create_process('c1', 'counted'); SELECT orch.start('c1')});
ok(ended('c1', 'COMPLETED'), 'count and objects complete');
is(join(',', sort split /\n/, slurp_file("$dir/counted")), '0 0 0,1 1 1,2 2 2',
	'count: items 0 .. N-1, as {{item_index}}, ORCH_ITEM_INDEX and ORCH_ITEM');
is(slurp_file("$dir/objects"), 'a b|c;d|', '{{item.PATH}} stays one argument');

# max_parallel: never more instances running at once.
sql(qq{SELECT orch.define_process_type('limited', \$json\$[
  {"name": "slow", "for_each": [1, 2, 3, 4, 5, 6], "max_parallel": 2,
   "shell": "mkdir -p $dir/running; touch $dir/running/\$ORCH_ITEM_INDEX; ls $dir/running | wc -l >> $dir/concurrency; sleep 0.3; rm $dir/running/\$ORCH_ITEM_INDEX"}
]\$json\$)});
sql(q{SELECT orch.create_process('l1', 'limited'); SELECT orch.start('l1')});
ok(ended('l1', 'COMPLETED'), 'the limited fan-out completes');
my @seen = split /\s+/, slurp_file("$dir/concurrency");
is(scalar(@seen), 6, 'six instances ran');
is((sort { $b <=> $a } @seen)[0], 2, 'never more than max_parallel (2) at once, and 2 at times');

# A failed instance: the others finish, the task fails, dependents are skipped; retry reruns it alone.
sql(qq{SELECT orch.define_process_type('flaky', \$json\$[
  {"name": "each", "for_each": [1, 2, 3, 4],
   "command": ["/bin/sh", "-c", "echo \$1 >> $dir/flaky_runs; test -e $dir/fixed || test \$1 -ne 3", "sh", "{{item}}"]},
  {"name": "after", "command": ["true"]}
]\$json\$)});
sql(q{SELECT orch.create_process('f1', 'flaky'); SELECT orch.start('f1')});
ok(ended('f1', 'FAILED'), 'a failed instance fails the run');
is(tasks_of('f1', q{name || coalesce('[' || item_index || ']', '') || ':' || status}),
	'each:FAILED / each[0]:COMPLETED / each[1]:COMPLETED / each[2]:FAILED / each[3]:COMPLETED / after:SKIPPED',
	'the others completed, the task failed, its dependent was skipped');
is(sql(q{SELECT error_message FROM orch.tasks WHERE process_id = 'f1' AND name = 'each' AND item_index IS NULL}),
	'instance 2 (item 3): exited with code 1', 'saying which instance');
append_to_file("$dir/fixed", '');
sql(q{SELECT orch.retry(current_run_id) FROM orch.processes WHERE id = 'f1'});
ok(ended('f1', 'COMPLETED'), 'the retry completes');
is(join(',', sort split /\n/, slurp_file("$dir/flaky_runs")), '1,2,3,3,4', 'only the failed instance ran again');

# A fan-out alone in its type: retry runs its failed instance and the run ends.
sql(qq{SELECT orch.define_process_type('alone', \$json\$[
  {"name": "each", "for_each": [1, 2], "command": ["/bin/sh", "-c", "test -e $dir/alone_fixed || test \$1 -ne 2", "sh", "{{item}}"]}
]\$json\$)});
sql(q{SELECT orch.create_process('a1', 'alone'); SELECT orch.start('a1')});
ok(ended('a1', 'FAILED'), 'a lone fan-out fails');
append_to_file("$dir/alone_fixed", '');
sql(q{SELECT orch.retry(current_run_id) FROM orch.processes WHERE id = 'a1'});
ok(ended('a1', 'COMPLETED'), 'and its retry completes');

# Empty: completes at once with [], and the dependent sees [].
sql(qq{SELECT orch.define_process_type('empty', \$json\$[
  {"name": "none", "for_each": "{{files}}", "command": ["false"]},
  {"name": "after", "shell": "printf '%s' \\"\$ORCH_OUTPUTS\\" > $dir/empty"}
]\$json\$)});
sql(q{SELECT orch.create_process('e1', 'empty', '{"files": []}'); SELECT orch.start('e1')});
ok(ended('e1', 'COMPLETED'), 'an empty fan-out completes');
is(slurp_file("$dir/empty"), '{"none": []}', 'with output []');

# Too many items, or not an array: the task fails clearly.
sql(q{SELECT orch.define_process_type('many', $json$[
  {"name": "list", "shell": "seq 1 2000 | paste -sd, | sed 's/^/[/; s/$/]/' > \"$ORCH_OUTPUT\""},
  {"name": "each", "for_each": "{{tasks.list.output}}", "command": ["true"]}
]$json$)});
sql(q{SELECT orch.create_process('m1', 'many'); SELECT orch.start('m1')});
ok(ended('m1', 'FAILED'), 'too many items fail');
is(sql(q{SELECT error_message FROM orch.tasks WHERE process_id = 'm1' AND name = 'each'}),
	'task "each": "for_each" has 2000 items, more than orch.max_fan_out (1500)', 'saying how many');
sql(q{SELECT orch.create_process('e2', 'empty', '{"files": "a.csv"}'); SELECT orch.start('e2')});
ok(ended('e2', 'FAILED'), 'a placeholder that is not an array fails');
is(sql(q{SELECT error_message FROM orch.tasks WHERE process_id = 'e2' AND name = 'none'}),
	'task "none": "for_each" {{files}} is not an array but a string', 'saying what it is');

# A large input value in the command of thousands of instances is refused, not copied.
sql(q{SELECT orch.define_process_type('copies', $json$[
  {"name": "each", "count": 1000, "command": ["echo", "{{blob}}"]}
]$json$)});
sql(q{SELECT orch.create_process('big', 'copies', jsonb_build_object('blob', repeat('x', 200000)));
      SELECT orch.start('big')});
ok(ended('big', 'FAILED'), 'the copies are refused');
like(sql(q{SELECT error_message FROM orch.tasks WHERE process_id = 'big' AND item_index IS NULL}),
	qr/^task "each": 1000 instances of a 2000\d\d byte command are more than 100MB$/, 'saying why');
is(sql(q{SELECT count(*) FROM orch.tasks WHERE process_id = 'big'}), '1', 'and no instance was made');

$node->stop;
done_testing();
