-- Events: orch.on_event, orch.off_event and orch.emit. A subscribed process
-- gets a run in the emitter's transaction, with the payload over its input;
-- processes the emitter may not start are neither started nor revealed.
\set VERBOSITY terse

SELECT name FROM orch.define_process_type('ev-sleep', '[{"name": "wait", "command": ["/bin/sleep", "{{seconds}}"]}]');
CREATE ROLE regress_ev_alice;
CREATE ROLE regress_ev_bob;
GRANT orch_user TO regress_ev_alice, regress_ev_bob;
SELECT orch.grant_process_type('ev-sleep', 'regress_ev_alice');

SET ROLE regress_ev_alice;
SELECT id FROM orch.create_process('ev-a', 'ev-sleep', '{"seconds": "0", "who": "alice"}');
SELECT id FROM orch.create_process('ev-skip', 'ev-sleep', '{"seconds": "60"}', overlap => 'skip');
SELECT id FROM orch.create_process('ev-queue', 'ev-sleep', '{"seconds": "60"}', overlap => 'queue');
SELECT orch.on_event('ev-a', 'file.arrived');
SELECT orch.on_event('ev-a', 'file.arrived');  -- again: nothing changes
SELECT orch.on_event('ev-skip', 'file.arrived'), orch.on_event('ev-queue', 'file.arrived');
SELECT orch.on_event('ev-skip', 'busy.check'), orch.on_event('ev-queue', 'busy.check');
SELECT process_id, event FROM orch.event_subscriptions ORDER BY 1, 2;

-- Bad names and payloads: clear errors.
SELECT orch.on_event('ev-a', 'bad name');
SELECT orch.on_event('ev-a', NULL);
SELECT orch.emit('file.arrived', '[1]');
SELECT orch.off_event('ev-a', 'never.subscribed');
SELECT orch.emit('file.arrived', NULL);

-- A rolled-back emit leaves nothing.
BEGIN;
SELECT cardinality(orch.emit('file.arrived', '{"path": "/x"}')) AS started;
ROLLBACK;
SELECT count(*) AS runs FROM orch.runs;

-- Committed: one run each, triggered by the event, with the payload over the input.
SELECT cardinality(orch.emit('file.arrived', '{"path": "/in/a.csv", "who": "payload"}')) AS started;
SELECT process_id, triggered_by, input_data FROM orch.runs ORDER BY process_id;
SELECT kind, process_id, detail ->> 'event' AS event, jsonb_array_length(detail -> 'runs') AS runs
FROM orch.events WHERE kind IN ('emitted', 'event_run') ORDER BY id;

-- While their runs are in progress: 'skip' skips, 'queue' queues (once).
SELECT (SELECT count(*) FROM orch.processes WHERE status = 'IN_PROGRESS' AND id IN ('ev-skip', 'ev-queue')) AS busy;
SELECT orch.emit('busy.check', '{"n": 1}');
SELECT orch.emit('busy.check', '{"n": 2}');
SELECT id, run_queued, queued_event, queued_input ->> 'n' AS queued_n FROM orch.processes
WHERE id IN ('ev-skip', 'ev-queue') ORDER BY id;
SELECT count(*) FROM orch.runs WHERE process_id IN ('ev-skip', 'ev-queue');
SELECT kind, process_id, detail ->> 'reason' AS reason FROM orch.events
WHERE kind IN ('event_skipped', 'event_queued') ORDER BY id;

-- Someone who may not start them: nothing started, nothing revealed.
SET ROLE regress_ev_bob;
SELECT orch.emit('file.arrived', '{"n": 3}'), orch.emit('busy.check', '{"n": 3}');
SELECT count(*) AS visible FROM orch.event_subscriptions;
SELECT orch.on_event('ev-a', 'other');
SELECT orch.off_event('ev-a', 'file.arrived');
SET ROLE regress_ev_alice;
SELECT count(*) AS runs_of_bob FROM orch.runs WHERE input_data ->> 'n' = '3';

-- From a table trigger: an AFTER INSERT trigger emits the new row.
RESET ROLE;
CREATE TABLE public.ev_files (path text);
GRANT INSERT ON public.ev_files TO regress_ev_alice;
CREATE FUNCTION public.ev_emit_file() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM orch.emit('file.inserted', to_jsonb(NEW));
  RETURN NEW;
END $$;
CREATE TRIGGER ev_files_emit AFTER INSERT ON public.ev_files FOR EACH ROW EXECUTE FUNCTION public.ev_emit_file();
SET ROLE regress_ev_alice;
SELECT id FROM orch.create_process('ev-t', 'ev-sleep', '{"seconds": "0"}');
SELECT orch.on_event('ev-t', 'file.inserted');
INSERT INTO public.ev_files VALUES ('/in/b.csv');
SELECT triggered_by, input_data ->> 'path' AS path FROM orch.runs WHERE process_id = 'ev-t';

SELECT orch.off_event('ev-t', 'file.inserted');
SELECT count(*) AS subscriptions_of_ev_t FROM orch.event_subscriptions WHERE process_id = 'ev-t';

-- Clean up.
SELECT orch.stop(id) IS NOT NULL AS stopped FROM orch.processes WHERE id IN ('ev-skip', 'ev-queue') ORDER BY id;
SELECT id, orch.wait(id, '10 seconds') AS ended FROM orch.processes ORDER BY id;
RESET ROLE;
SELECT orch.delete_process(id) FROM orch.processes ORDER BY id;
SELECT count(*) AS subscriptions_left FROM orch.event_subscriptions;
SELECT orch.drop_process_type('ev-sleep');
DROP TABLE public.ev_files;
DROP FUNCTION public.ev_emit_file();
DROP OWNED BY regress_ev_alice, regress_ev_bob;
DROP ROLE regress_ev_alice, regress_ev_bob;
