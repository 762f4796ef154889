-- pg_orch: events. A process subscribed to an event gets a run whenever
-- someone who may start it emits the event (orch.emit), in the emitter's
-- transaction, with the event's payload over its input.

-- Subscribes a process to an event (again: nothing changes).
CREATE FUNCTION orch._api_on_event(process_id text, event text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes;
BEGIN
  PERFORM orch._check_event_name(event);
  proc := orch._lock_process(process_id);
  INSERT INTO orch.event_subscriptions (process_id, event, owner)
  VALUES (proc.id, _api_on_event.event, proc.owner)
  ON CONFLICT DO NOTHING;
  IF FOUND THEN
    PERFORM orch._log('subscribed', proc.owner, proc.id, NULL, jsonb_build_object('event', event));
  END IF;
END
$$;

CREATE FUNCTION orch._api_off_event(process_id text, event text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes;
BEGIN
  PERFORM orch._check_event_name(event);
  proc := orch._lock_process(process_id);
  DELETE FROM orch.event_subscriptions s WHERE s.process_id = proc.id AND s.event = _api_off_event.event;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'process "%" is not subscribed to event "%"', proc.id, event USING ERRCODE = 'undefined_object';
  END IF;
  PERFORM orch._log('unsubscribed', proc.owner, proc.id, NULL, jsonb_build_object('event', event));
END
$$;

CREATE FUNCTION orch._check_event_name(event text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF event IS NULL THEN
    RAISE EXCEPTION 'event name must not be null' USING ERRCODE = 'null_value_not_allowed';
  ELSIF event !~ '^[A-Za-z0-9_.:-]{1,100}$' THEN
    RAISE EXCEPTION 'invalid event name "%"', event USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Use 1 to 100 letters, digits, "_", ".", ":" or "-".';
  END IF;
END
$$;

-- Starts a run of every process subscribed to `event` that the caller may
-- start, by its overlap policy, with input = its input || payload, and
-- returns the runs started (queued or skipped ones are not). Processes the
-- caller may not start are left alone and not mentioned. A process that
-- cannot take this payload (too large, variables that collide) or whose row
-- another transaction holds is skipped, saying why: a subscriber, whoever
-- shared it, never makes the emitter's transaction fail or wait for long.
CREATE FUNCTION orch._api_emit(event text, payload jsonb) RETURNS bigint[]
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET lock_timeout = '200ms'
AS $$
DECLARE
  proc orch.processes;
  input jsonb;
  new_run_id bigint;
  started bigint[] := '{}';
  message text;
  waited_since timestamptz := NULL;
BEGIN
  PERFORM orch._writer('emit events');
  PERFORM orch._check_event_name(event);
  IF payload IS NULL THEN
    RAISE EXCEPTION 'event payload must not be null' USING ERRCODE = 'null_value_not_allowed';
  ELSIF jsonb_typeof(payload) <> 'object' THEN
    RAISE EXCEPTION 'event payload must be a JSON object, not %', jsonb_typeof(payload)
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- Checked before any row is locked: one may not hold up what one may not start.
  FOR proc IN
    SELECT p.* FROM orch.event_subscriptions s JOIN orch.processes p ON p.id = s.process_id
    WHERE s.event = _api_emit.event AND orch._may('edit', p.id, p.owner)
    ORDER BY p.id
  LOOP
    BEGIN
      -- A held row is waited for 200 ms, and for one second in all; then skipped.
      IF waited_since IS NULL OR clock_timestamp() - waited_since < interval '1 second' THEN
        SELECT * INTO proc FROM orch.processes p WHERE p.id = proc.id FOR UPDATE;
      ELSE
        SELECT * INTO proc FROM orch.processes p WHERE p.id = proc.id FOR UPDATE NOWAIT;
      END IF;
      CONTINUE WHEN NOT FOUND;
      input := proc.input_data || payload;
      IF octet_length(input::text) > pg_size_bytes(current_setting('orch.max_input_size')) THEN
        RAISE EXCEPTION 'its input with the payload is % bytes, more than orch.max_input_size (%)',
          octet_length(input::text), current_setting('orch.max_input_size') USING ERRCODE = 'program_limit_exceeded';
      END IF;
      IF EXISTS (SELECT 1 FROM orch.process_type_versions v
                 WHERE v.type = proc.type AND v.version = proc.type_version AND v.runs_os_commands) THEN
        PERFORM orch._check_input_environment(input);
      END IF;
      IF proc.status = 'IN_PROGRESS' AND proc.overlap_policy = 'skip' THEN
        PERFORM orch._log('event_skipped', proc.owner, proc.id, proc.current_run_id,
                          jsonb_build_object('event', event, 'reason', 'a run is in progress'));
      ELSIF proc.status = 'IN_PROGRESS' AND proc.overlap_policy = 'queue' THEN
        IF proc.run_queued THEN
          PERFORM orch._log('event_skipped', proc.owner, proc.id, proc.current_run_id,
                            jsonb_build_object('event', event, 'reason', 'a run is already queued'));
        ELSE
          UPDATE orch.processes p SET run_queued = true, queued_event = _api_emit.event, queued_input = input
          WHERE p.id = proc.id;
          PERFORM orch._log('event_queued', proc.owner, proc.id, proc.current_run_id,
                            jsonb_build_object('event', event));
        END IF;
      ELSE
        new_run_id := orch._start_run(proc.id, proc.owner, false, 'event:' || event, false, 'event_run',
                                      jsonb_build_object('event', event), input);
        started := started || new_run_id;
      END IF;
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS message = MESSAGE_TEXT;
      IF SQLSTATE = '55P03' THEN  -- lock_not_available
        waited_since := coalesce(waited_since, clock_timestamp());
        message := 'another transaction holds the process';
      END IF;
      PERFORM orch._log('event_skipped', proc.owner, proc.id, NULL, jsonb_build_object('event', event, 'reason', message));
    END;
  END LOOP;
  PERFORM orch._log('emitted', orch.current_owner(), NULL, NULL,
                    jsonb_build_object('event', event, 'runs', to_jsonb(started)));
  RETURN started;
END
$$;
