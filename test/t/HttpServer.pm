# A small HTTP/1.1 server on 127.0.0.1 for the http task tests and
# bench/http: a real server in a child process, never a mock.
#   /echo...          200, JSON of the request: method, path (with query), headers, body
#   /status/N         status N, body "status N"
#   /slow/SECONDS     200 after SECONDS (served by a forked child, so others go on)
#   /text             200 text/plain "hello"
#   /redirect         302 to /echo
#   /deep             200, JSON nested 200,000 deep
# Every request is logged to $log as "METHOD PATH", one line each.
package HttpServer;
use strict;
use warnings;
use Exporter 'import';
use IO::Socket::INET;
use POSIX ();

our @EXPORT = qw(start_http_server stop_http_server);

sub json_string {
	my ($s) = @_;
	$s =~ s/(["\\])/\\$1/g;
	$s =~ s/\n/\\n/g;
	$s =~ s/\r/\\r/g;
	$s =~ s/([\x00-\x1f])/sprintf('\u%04x', ord($1))/ge;
	return "\"$s\"";
}

sub respond {
	my ($client, $status, $type, $body, @extra) = @_;
	my $head = "HTTP/1.1 $status X\r\nContent-Type: $type\r\nContent-Length: " . length($body)
	  . "\r\nConnection: close\r\n" . join('', map { "$_\r\n" } @extra) . "\r\n";
	print $client $head, $body;
	close $client;
}

sub serve {
	my ($client, $method, $path, $headers, $body) = @_;
	if ($path =~ m{^/slow/([0-9.]+)}) {
		select(undef, undef, undef, $1);
		respond($client, 200, 'text/plain', 'slept');
	} elsif ($path =~ m{^/status/(\d+)}) {
		respond($client, $1, 'text/plain', "status $1");
	} elsif ($path eq '/text') {
		respond($client, 200, 'text/plain', 'hello');
	} elsif ($path eq '/deep') {
		respond($client, 200, 'application/json', ('[' x 200000) . (']' x 200000));
	} elsif ($path eq '/redirect') {
		respond($client, 302, 'text/plain', 'moved', 'Location: /echo');
	} else {
		my $h = join(',', map { json_string($_) . ':' . json_string($headers->{$_}) } sort keys %$headers);
		respond($client, 200, 'application/json',
			'{"method":' . json_string($method) . ',"path":' . json_string($path)
			  . ',"headers":{' . $h . '},"body":' . json_string($body) . '}');
	}
}

# Returns (pid, port).
sub start_http_server {
	my ($log) = @_;
	my $listener = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1024, ReuseAddr => 1)
	  or die "listen: $!";
	my $port = $listener->sockport;
	my $pid = fork() // die "fork: $!";
	if ($pid == 0) {
		setpgrp(0, 0);  # its own group, with its /slow children: stopped together
		$SIG{CHLD} = 'IGNORE';
		open(my $logfh, '>>', $log) or die "$log: $!";
		$logfh->autoflush(1);
		while (my $client = $listener->accept) {
			binmode $client;
			my $head = '';
			while ($head !~ /\r\n\r\n/) {
				my $got = sysread($client, $head, 4096, length $head);
				last unless $got;
			}
			my ($request_head, $body) = split /\r\n\r\n/, $head, 2;
			$body //= '';
			my ($line, @lines) = split /\r\n/, $request_head;
			next unless defined $line;
			my ($method, $path) = split / /, $line;
			my %headers;
			for (@lines) { $headers{ lc $1 } = $2 if /^([^:]+):\s*(.*)$/; }
			my $length = $headers{'content-length'} // 0;
			while (length($body) < $length) {
				my $got = sysread($client, $body, $length - length($body), length $body);
				last unless $got;
			}
			print $logfh "$method $path\n";
			if ($path =~ m{^/slow/}) {
				my $child = fork();
				if (defined $child && $child == 0) {
					serve($client, $method, $path, \%headers, $body);
					POSIX::_exit(0);
				}
				close $client;
			} else {
				serve($client, $method, $path, \%headers, $body);
			}
		}
		POSIX::_exit(0);
	}
	close $listener;
	return ($pid, $port);
}

sub stop_http_server {
	my ($pid) = @_;
	kill 'TERM', -$pid;
	waitpid($pid, 0);
}

1;
