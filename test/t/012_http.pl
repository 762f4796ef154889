# http tasks against a real HTTP server on 127.0.0.1 (HttpServer.pm): a
# templated POST whose input cannot leave the url's path and query or add a
# header, JSON output used by the next task, 5xx retried then failed, 4xx
# and redirects failed at once, a hanging endpoint timed out while commands
# keep running, a stop, a refused connection, and who may call which host.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use OrchTest;
use HttpServer;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $dir = PostgreSQL::Test::Utils::tempdir();
my $log = "$dir/requests.log";
my ($server, $port) = start_http_server($log);
END { local $?; stop_http_server($server) if $server; }
my $base = "http://127.0.0.1:$port";

my $node = orch_node('http', "orch.http_allowed_hosts = '127.0.0.1'", 'orch.poll_interval = 1h');
sub sql { return $node->safe_psql('postgres', $_[0]); }
sub as_user { return $node->safe_psql('postgres', "SET ROLE http_user; $_[0]"); }
sub refused {
	my ($statement) = @_;
	my ($rc, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nSET ROLE http_user; $statement");
	return $err;
}
sub hits { my ($line) = @_; return scalar grep { $_ eq $line } split /\n/, (-e $log ? slurp_file($log) : ''); }
sub run_to_end {
	my ($id) = @_;
	as_user("SELECT orch.start('$id')");
	wait_until(30, sub { sql("SELECT status FROM orch.processes WHERE id = '$id'") =~ /^(COMPLETED|FAILED|STOPPED)$/ });
	return sql("SELECT status FROM orch.processes WHERE id = '$id'");
}
sub task { my ($id, $column) = @_; return sql("SELECT $column FROM orch.tasks WHERE process_id = '$id' ORDER BY task_index LIMIT 1"); }

sql(q{CREATE ROLE http_user NOLOGIN; GRANT orch_user TO http_user;});

# An ordinary user's templated POST to an allowed host; its output feeds the next task.
as_user(qq{SELECT orch.define_process_type('post', \$j\$[
  {"name": "call", "http": {"method": "POST", "url": "$base/echo/{{id}}?q={{q}}",
                            "headers": {"X-Token": "{{token}}"}, "body": {"name": "{{name}}", "n": 1}}},
  {"name": "next", "http": {"url": "$base/echo/again?path={{tasks.call.output.body.path}}"}}
]\$j\$)});
as_user(q{SELECT orch.create_process('p1', 'post',
  $j${"id": "../admin", "q": "a&b=c#d", "token": "t0k3n", "name": "say \"hi\"\n"}$j$)});
is(run_to_end('p1'), 'COMPLETED', 'a templated POST and the request using its output complete');
my $call = "SELECT %s FROM orch.tasks WHERE process_id = 'p1' AND name = 'call'";
is(sql(sprintf($call, "output_data -> 'status'")), '200', 'the output has the status');
is(sql(sprintf($call, "output_data -> 'body' ->> 'path'")), '/echo/..%2Fadmin?q=a%26b%3Dc%23d',
	'input reaches the path and query percent-encoded');
is(sql(sprintf($call, "output_data -> 'body' -> 'headers' ->> 'x-token'")), 't0k3n', 'headers are templated');
is(sql(sprintf($call, "(output_data -> 'body' ->> 'body')::jsonb")), '{"n": 1, "name": "say \"hi\"\n"}',
	'a JSON body gets input as JSON strings');
is(sql(sprintf($call, "output_data -> 'body' -> 'headers' ->> 'content-type'")), 'application/json',
	'a JSON body is sent as application/json');
is(sql(sprintf($call, "output_data -> 'headers' ->> 'content-type'")), 'application/json',
	'the output has the response headers');
is(sql(sprintf($call, "execution_name")), "POST $base/echo/..%2Fadmin?q=a%26b%3Dc%23d",
	'execution_name names the request');
like(sql(sprintf($call, "output")), qr/^\{"method":"POST"/, 'the output text is the body');
is(sql(sprintf($call, "pid IS NULL AND exit_code IS NULL")), 't', 'no pid and no exit code');
is(sql("SELECT output_data -> 'body' ->> 'path' FROM orch.tasks WHERE process_id = 'p1' AND name = 'next'"),
	'/echo/again?path=%2Fecho%2F..%252Fadmin%3Fq%3Da%2526b%253Dc%2523d',
	'an output used in a url is percent-encoded too');

# 5xx: retried, then failed. 4xx and redirects: failed at once.
as_user(qq{SELECT orch.define_process_type('flaky', \$j\$[{"name": "call", "http": {"url": "$base/status/503"},
  "max_retries": 2}]\$j\$)});
as_user(q{SELECT orch.create_process('p503', 'flaky')});
is(run_to_end('p503'), 'FAILED', 'a 503 fails the task once its retries are used');
is(task('p503', "attempt || ' ' || error_message"), '3 HTTP status 503 (expected 2xx)', 'after three attempts');
is(hits('GET /status/503'), 3, 'the server saw three requests');
is(task('p503', "output_data ->> 'body'"), 'status 503', "a failed request's response is kept");

as_user(qq{SELECT orch.define_process_type('missing', \$j\$[{"name": "call", "http": {"url": "$base/status/404"},
  "max_retries": 2}]\$j\$)});
as_user(q{SELECT orch.create_process('p404', 'missing')});
is(run_to_end('p404'), 'FAILED', 'a 404 fails the task');
is(task('p404', 'attempt'), '1', 'without retrying it');

as_user(qq{SELECT orch.define_process_type('gone', \$j\$[{"name": "call", "http": {"url": "$base/status/404"},
  "expect_status": [404]}]\$j\$)});
as_user(q{SELECT orch.create_process('pgone', 'gone')});
is(run_to_end('pgone'), 'COMPLETED', 'a status in expect_status completes the task');

as_user(qq{SELECT orch.define_process_type('moved', \$j\$[{"name": "call", "http": {"url": "$base/redirect"}}]\$j\$)});
as_user(q{SELECT orch.create_process('pmoved', 'moved')});
is(run_to_end('pmoved'), 'FAILED', 'a redirect is not followed: it fails the task');
is(task('pmoved', "output_data -> 'headers' ->> 'location'"), '/echo', 'with the Location in its output');

# A refused connection is a retryable failure with curl's reason.
my $closed = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1)->sockport;
as_user(qq{SELECT orch.define_process_type('closed', \$j\$[{"name": "call", "http": {"url": "http://127.0.0.1:$closed/"},
  "max_retries": 1}]\$j\$)});
as_user(q{SELECT orch.create_process('pclosed', 'closed')});
is(run_to_end('pclosed'), 'FAILED', 'a refused connection fails the task');
like(task('pclosed', "attempt || ' ' || error_message"), qr/^2 Could(n't| not) connect to server/,
	'after its retry, saying why');

# A hanging endpoint times out; commands keep running meanwhile.
as_user(qq{SELECT orch.define_process_type('hang', \$j\$[{"name": "call", "http": {"url": "$base/slow/60"},
  "timeout": "2s"}]\$j\$)});
as_user(q{SELECT orch.create_process('phang', 'hang')});
sql(q{SELECT orch.define_process_type('quick', '[{"name": "q", "command": ["/bin/true"]}]')});
sql(q{SELECT orch.create_process('pquick', 'quick')});
my $started = time();
as_user(q{SELECT orch.start('phang')});
ok(wait_until(10, sub { task('phang', 'status') eq 'RUNNING' }), 'the slow request is running');
sql(q{SELECT orch.start('pquick')});
ok(wait_until(1, sub { sql(q{SELECT status FROM orch.processes WHERE id = 'pquick'}) eq 'COMPLETED' }),
	'a command completes within a second while the request hangs');
ok(wait_until(10, sub { sql(q{SELECT status FROM orch.processes WHERE id = 'phang'}) eq 'FAILED' }),
	'the hanging request fails');
my $elapsed = time() - $started;
is(task('phang', 'error_message'), 'timed out after 2s', 'timed out');
ok($elapsed >= 2 && $elapsed < 6, "after its timeout (${elapsed}s)");

# A stop ends the request at once.
as_user(q{SELECT orch.create_process('pstop', 'hang')});
as_user(q{SELECT orch.start('pstop')});
ok(wait_until(10, sub { task('pstop', 'status') eq 'RUNNING' }), 'a second slow request is running');
as_user(q{SELECT orch.stop('pstop')});
ok(wait_until(1.5, sub { task('pstop', 'status') eq 'STOPPED' }), 'orch.stop ends it');

# Who may call which host, and what is literal.
like(refused(qq{SELECT orch.define_process_type('elsewhere', \$j\$[{"name": "c", "http": {"url": "http://localhost:$port/"}}]\$j\$)}),
	qr/42501: permission denied to define process type "elsewhere".*DETAIL:  Its http tasks call localhost, not in orch.http_allowed_hosts/s,
	'an ordinary user may not call a host outside orch.http_allowed_hosts');
like(refused(q{SELECT orch.define_process_type('sneaky', $j$[{"name": "c", "http": {"url": "http://127.0.0.1@example.com/"}}]$j$)}),
	qr/must name its host literally/, 'user info cannot smuggle another host in');
like(refused(q{SELECT orch.define_process_type('templ', $j$[{"name": "c", "http": {"url": "http://{{host}}/x"}}]$j$)}),
	qr/22023: .*must name its host literally/, 'a placeholder in the host is refused at definition');
like(refused(q{SELECT orch.define_process_type('port', $j$[{"name": "c", "http": {"url": "http://127.0.0.1:{{port}}/x"}}]$j$)}),
	qr/invalid port/, 'a placeholder in the port is refused at definition');
like(refused(q{SET orch.http_allowed_hosts = 'example.com'}), qr/permission denied to set parameter/,
	'orch.http_allowed_hosts is superuser-only');
is(sql(qq{SELECT (orch.define_process_type('admin-elsewhere', \$j\$[{"name": "c", "http": {"url": "http://localhost:$port/"}}]\$j\$)).version}),
	'1', 'a superuser may call any host');

# A header value with a line break, from input, fails the start, not the scheduler.
as_user(qq{SELECT orch.define_process_type('hdr', \$j\$[{"name": "c", "http": {"url": "$base/echo",
  "headers": {"X-A": "{{a}}"}}}]\$j\$)});
as_user(q{SELECT orch.create_process('phdr', 'hdr', '{"a": "1\r\nX-Admin: yes"}')});
like(refused(q{SELECT orch.start('phdr')}), qr/a value for header "X-A" must be one line/,
	'a line break from input cannot add a header');

# Red team: what a response or a value can do.
my $scheduler = scheduler_pid($node);
as_user(qq{SELECT orch.define_process_type('deep', \$j\$[{"name": "call", "http": {"url": "$base/deep"}}]\$j\$)});
as_user(q{SELECT orch.create_process('pdeep', 'deep')});
is(run_to_end('pdeep'), 'COMPLETED', 'a response nested 200,000 deep completes the task');
is(task('pdeep', "jsonb_typeof(output_data -> 'body')"), 'string', 'its body kept as text');
is(scheduler_pid($node), $scheduler, 'and the scheduler lives on');

as_user(qq{SELECT orch.define_process_type('climb', \$j\$[{"name": "call", "http": {"url": "$base/echo/t/{{t}}/r"}}]\$j\$)});
as_user(q{SELECT orch.create_process('pclimb', 'climb', '{"t": ".."}')});
is(run_to_end('pclimb'), 'FAILED', 'a value of ".." in the path fails the task');
is(task('pclimb', 'error_message'), 'a value put a "." or ".." segment into the url\'s path', 'saying why');
is(scalar(grep { m{^GET /echo/(t/|r)} } split /\n/, slurp_file($log)), 0, 'and nothing was sent');

as_user(qq{SELECT orch.define_process_type('relay', \$j\$[{"name": "a", "http": {"url": "$base/echo/a"}},
  {"name": "b", "http": {"url": "$base/echo/b", "headers": {"X-B": "{{h}}", "X-A": "{{tasks.a.output.status}}"}}}]\$j\$)});
as_user(q{SELECT orch.create_process('prelay', 'relay', '{"h": "{{tasks.a.output}}"}')});
like(refused(q{SELECT orch.start('prelay')}), qr/placeholder \{\{h\}\} value contains "\{\{", which a later step would read as a placeholder/,
	'a value is never read as a template by a later step');

$node->stop;
done_testing();
