# Events start runs: a run queued by an event while another was in progress
# starts when that one ends, with the event's payload over the input, and a
# sequence of emits from a table trigger in committed transactions all run.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use OrchTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes;

my $node = orch_node('events', 'orch.poll_interval = 1h');
sub sql { return $node->safe_psql('postgres', $_[0]); }
my $dir = PostgreSQL::Test::Utils::tempdir();

sql(qq{SELECT orch.define_process_type('note', \$json\$[
  {"name": "write", "command": ["/bin/sh", "-c", "sleep \$1; echo \$2 >> $dir/notes", "sh", "{{pause}}", "{{n}}"]}
]\$json\$)});
sql(q{SELECT orch.create_process('queued', 'note', '{"pause": "1", "n": "start"}', overlap => 'queue');
      SELECT orch.on_event('queued', 'tick')});

sql(q{SELECT orch.start('queued')});
ok(wait_until(10, sub { sql(q{SELECT status FROM orch.processes WHERE id = 'queued'}) eq 'IN_PROGRESS' }),
	'a run is in progress');
is(sql(q{SELECT orch.emit('tick', '{"n": "from-event", "pause": "0"}')}), '{}', 'the event queues a run');
is(sql(q{SELECT orch.emit('tick', '{"n": "dropped"}')}), '{}', 'a second one is skipped: one queued run at most');
ok(wait_until(30, sub {
	sql(q{SELECT count(*) FROM orch.runs WHERE process_id = 'queued' AND status = 'COMPLETED'}) eq '2' }),
	'the queued run ran after the first one ended');
is(slurp_file("$dir/notes"), "start\nfrom-event\n", 'with the payload of the event that queued it');
is(sql(q{SELECT triggered_by FROM orch.runs WHERE process_id = 'queued' ORDER BY id DESC LIMIT 1}), 'event:tick',
	'triggered by the event');

# From a table trigger, one committed insert after another: every emit runs.
sql(q{
  CREATE TABLE public.arrivals (n int);
  CREATE FUNCTION public.emit_arrival() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN PERFORM orch.emit('arrival', jsonb_build_object('n', NEW.n::text, 'pause', '0')); RETURN NEW; END $$;
  CREATE TRIGGER arrivals_emit AFTER INSERT ON public.arrivals FOR EACH ROW EXECUTE FUNCTION public.emit_arrival();
  SELECT orch.create_process('parallel', 'note', '{"pause": "0", "n": "0"}', overlap => 'parallel');
  SELECT orch.on_event('parallel', 'arrival');
});
sql("INSERT INTO public.arrivals VALUES ($_)") for 1 .. 5;
sql(q{BEGIN; INSERT INTO public.arrivals VALUES (99); ROLLBACK;});
ok(wait_until(30, sub {
	sql(q{SELECT count(*) FROM orch.runs WHERE process_id = 'parallel' AND status = 'COMPLETED'}) eq '5' }),
	'five committed inserts, five runs');
is(sql(q{SELECT string_agg(input_data ->> 'n', ',' ORDER BY (input_data ->> 'n')::int) FROM orch.runs
         WHERE process_id = 'parallel'}), '1,2,3,4,5', 'each with its row; the rolled-back one started nothing');

# A subscriber never makes the emitter fail or wait for long: one whose row
# another transaction holds, or whose input cannot take the payload, is
# skipped, saying why; the others start.
sql(q{
  SELECT orch.create_process('held', 'note', '{"pause": "0", "n": "held"}');
  SELECT orch.create_process('collides', 'note', '{"pause": "0", "n": "c", "a_b": "1"}');
  SELECT orch.create_process('fine', 'note', '{"pause": "0", "n": "fine"}');
  SELECT orch.on_event(id, 'shared') FROM orch.processes WHERE id IN ('held', 'collides', 'fine');
});
my $holder = $node->background_psql('postgres');
$holder->query_safe(q{BEGIN; SELECT orch.pause('held')});
my $began = Time::HiRes::time();
is(sql(q{SELECT cardinality(orch.emit('shared', '{"a-b": "2"}'))}), '1', 'only the fine one starts');
ok(Time::HiRes::time() - $began < 5, 'without waiting for the held row');
$holder->query_safe('COMMIT');
$holder->quit;
is(sql(q{SELECT string_agg(process_id || ': ' || (detail ->> 'reason'), ' / ' ORDER BY process_id) FROM orch.events
         WHERE kind = 'event_skipped' AND detail ->> 'event' = 'shared'}),
	'collides: input data keys "a-b" and "a_b" both map to environment variable ORCH_INPUT_A_B / '
	. 'held: another transaction holds the process', 'each skip says why');

$node->stop;
done_testing();
