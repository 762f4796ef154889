-- pg_orch: schedules
-- A schedule's zone: the one given, else orch.timezone, else the session's TimeZone.
CREATE FUNCTION orch._effective_time_zone(timezone text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN coalesce(timezone, nullif(current_setting('orch.timezone'), ''), current_setting('TimeZone'));
END
$$;

-- The first tick strictly after `after`, or NULL (no schedule, or none left).
CREATE FUNCTION orch._next_run_at(schedule text, timezone text, after timestamptz) RETURNS timestamptz
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN (orch._next_run_times(schedule, timezone, after, 1))[1];
END
$$;

-- Validates a schedule and its policies; returns the zone to store (NULL
-- without a schedule).
CREATE FUNCTION orch._check_schedule(schedule text, timezone text, overlap text, misfire text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  zone text := orch._effective_time_zone(timezone);
BEGIN
  IF overlap IS NULL OR overlap NOT IN ('skip', 'queue', 'parallel') THEN
    RAISE EXCEPTION 'invalid overlap policy "%"', overlap
      USING ERRCODE = 'invalid_parameter_value', HINT = 'Use skip, queue or parallel.';
  END IF;
  IF misfire IS NULL OR misfire NOT IN ('run_once', 'skip') THEN
    RAISE EXCEPTION 'invalid misfire policy "%"', misfire
      USING ERRCODE = 'invalid_parameter_value', HINT = 'Use run_once or skip.';
  END IF;
  IF schedule IS NULL AND timezone IS NOT NULL THEN
    RAISE EXCEPTION 'a time zone needs a schedule' USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Give the schedule too, or leave the time zone out.';
  ELSIF schedule IS NULL THEN
    RETURN NULL;
  END IF;
  PERFORM orch._check_time_zone(zone);
  -- Raises for a bad expression, naming the field and why.
  IF cardinality(orch._next_run_times(schedule, zone, clock_timestamp(), 1)) = 0 THEN
    RAISE EXCEPTION 'schedule "%" never fires', schedule USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Check the day of the month against the month (February has no 30th); orch.next_runs() shows when a schedule fires.';
  END IF;
  RETURN zone;
END
$$;

-- The next `count` times a schedule fires after `from`: to check an
-- expression before using it.
CREATE FUNCTION orch.next_runs(schedule text, timezone text DEFAULT NULL, "from" timestamptz DEFAULT now(),
                               count integer DEFAULT 5)
RETURNS SETOF timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
  SELECT unnest(orch._next_run_times(schedule, orch._effective_time_zone(timezone), "from", count))
$$;

-- Sets or changes a process's schedule; it takes effect at once. A NULL
-- schedule makes the process manual only; NULL policies keep the current ones.
CREATE FUNCTION orch._api_set_schedule(id text, schedule text, timezone text, overlap text, misfire text)
RETURNS orch.processes
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes := orch._lock_process(id);
  zone text;
  result orch.processes;
BEGIN
  overlap := coalesce(overlap, proc.overlap_policy);
  misfire := coalesce(misfire, proc.misfire_policy);
  zone := orch._check_schedule(schedule, timezone, overlap, misfire);
  UPDATE orch.processes p
  SET schedule = _api_set_schedule.schedule, timezone = zone, overlap_policy = overlap, misfire_policy = misfire,
      next_run_at = CASE WHEN p.is_active THEN orch._next_run_at(_api_set_schedule.schedule, zone, clock_timestamp()) END,
      run_queued = p.run_queued AND _api_set_schedule.schedule IS NOT NULL, updated_at = clock_timestamp()
  WHERE p.id = proc.id
  RETURNING * INTO result;
  PERFORM orch._log('schedule_changed', result.owner, result.id, NULL,
                          jsonb_build_object('schedule', schedule, 'timezone', zone));
  PERFORM orch._wake_scheduler_at_commit(false);
  RETURN result;
END
$$;

-- Turns the schedule off; manual starts still work.
CREATE FUNCTION orch._api_pause(id text) RETURNS orch.processes
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes := orch._lock_process(id);
  result orch.processes;
BEGIN
  UPDATE orch.processes p SET is_active = false, next_run_at = NULL, run_queued = false,
                              updated_at = clock_timestamp()
  WHERE p.id = proc.id RETURNING * INTO result;
  PERFORM orch._log('paused', result.owner, result.id, NULL, NULL);
  RETURN result;
END
$$;

-- Turns the schedule on again; the next tick is the first one from now.
CREATE FUNCTION orch._api_resume(id text) RETURNS orch.processes
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes := orch._lock_process(id);
  result orch.processes;
BEGIN
  UPDATE orch.processes p SET is_active = true,
         next_run_at = orch._next_run_at(p.schedule, p.timezone, clock_timestamp()), updated_at = clock_timestamp()
  WHERE p.id = proc.id RETURNING * INTO result;
  PERFORM orch._log('resumed', result.owner, result.id, NULL, NULL);
  PERFORM orch._wake_scheduler_at_commit(false);
  RETURN result;
END
$$;


-- A start by the system: a tick (triggered_by SCHEDULED) or a queued event
-- ('event:<name>', with its input). A run that cannot be made (say, the
-- type was redefined with a placeholder the input lacks) is recorded as a
-- FAILED run saying why, instead of failing the scheduler's transaction.
CREATE FUNCTION orch._start_scheduled_run(proc orch.processes, catch_up boolean, triggered_by text DEFAULT 'SCHEDULED',
                                          input jsonb DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  new_run_id bigint;
  message text;
  kind orch.event_kind := CASE WHEN triggered_by <> 'SCHEDULED' THEN 'event_run'
                               WHEN catch_up THEN 'catch_up_run' ELSE 'scheduled_run' END;
BEGIN
  BEGIN
    new_run_id := orch._start_run(proc.id, proc.owner, false, triggered_by, catch_up, kind, NULL, input);
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS message = MESSAGE_TEXT;
    INSERT INTO orch.runs (process_id, owner, status, triggered_by, catch_up, total_tasks, completed_at, error_message)
    VALUES (proc.id, proc.owner, 'FAILED', triggered_by, catch_up, 0, clock_timestamp(),
            CASE WHEN triggered_by = 'SCHEDULED' THEN 'the scheduled run' ELSE 'the run for ' || triggered_by END
              || ' could not start: ' || message)
    RETURNING id INTO new_run_id;
    IF proc.status <> 'IN_PROGRESS' THEN
      UPDATE orch.processes p SET status = 'FAILED', current_run_id = new_run_id, last_run_at = clock_timestamp()
      WHERE p.id = proc.id;
    END IF;
    PERFORM orch._log(kind, proc.owner, proc.id, new_run_id, NULL);
  END;
END
$$;

-- Fires due ticks, at most max_count a call (so that the first commands of
-- a burst start while the rest are still being fired), by each process's
-- policies, and returns the milliseconds until the next tick (0 if more are
-- due now), or NULL if there is none. A tick is missed when it came while
-- no scheduler was running (before this one started) or a later tick has
-- passed too: misfire 'skip' then drops it, 'run_once' starts one catch-up
-- run for all the missed ticks.
CREATE FUNCTION orch._fire_due_schedules(max_count integer DEFAULT 100) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes;
  now_ timestamptz := clock_timestamp();
  scheduler_started timestamptz := (SELECT a.backend_start FROM pg_catalog.pg_stat_get_activity(pg_backend_pid()) a);
  due text[];
  more_due boolean;
  tick timestamptz;
  missed boolean;
  message text;
BEGIN
  -- The due ticks, earliest first (an index scan), one more than a batch.
  due := ARRAY(SELECT p.id FROM orch.processes p WHERE p.next_run_at <= now_
               ORDER BY p.next_run_at, p.id LIMIT max_count + 1);
  more_due := cardinality(due) > max_count;
  IF more_due THEN
    -- More than a batch is due: owners take turns, as for claiming tasks,
    -- every owner's k-th due tick before anyone's k+1-th, so thousands of
    -- one owner's schedules delay another's tick by one batch at most. One
    -- index probe per owner with schedules.
    due := ARRAY(
      WITH RECURSIVE owners AS (
        (SELECT p.owner FROM orch.processes p WHERE p.next_run_at IS NOT NULL ORDER BY p.owner LIMIT 1)
        UNION ALL
        SELECT (SELECT p.owner FROM orch.processes p WHERE p.next_run_at IS NOT NULL AND p.owner > o.owner
                ORDER BY p.owner LIMIT 1)
        FROM owners o WHERE o.owner IS NOT NULL)
      SELECT d.id
      FROM owners o CROSS JOIN LATERAL (
        SELECT p.id, p.next_run_at, row_number() OVER (ORDER BY p.next_run_at, p.id) AS turn
        FROM orch.processes p WHERE p.owner = o.owner AND p.next_run_at <= now_
        ORDER BY p.next_run_at, p.id LIMIT max_count) d
      WHERE o.owner IS NOT NULL
      ORDER BY d.turn, d.next_run_at, d.id LIMIT max_count);
  END IF;
  IF cardinality(due) > 0 THEN
    FOR proc IN
      SELECT p.* FROM unnest(due) WITH ORDINALITY AS d(id, n) JOIN orch.processes p ON p.id = d.id
      WHERE p.next_run_at <= now_
      ORDER BY d.n
      FOR UPDATE OF p SKIP LOCKED
    LOOP
      BEGIN
        tick := proc.next_run_at;
        missed := tick < scheduler_started OR orch._next_run_at(proc.schedule, proc.timezone, tick) <= now_;
        UPDATE orch.processes p SET next_run_at = orch._next_run_at(proc.schedule, proc.timezone, now_)
        WHERE p.id = proc.id;
        IF missed AND proc.misfire_policy = 'skip' THEN
          PERFORM orch._log('tick_missed', proc.owner, proc.id, NULL, jsonb_build_object('tick', tick));
        ELSIF proc.status = 'IN_PROGRESS' AND proc.overlap_policy = 'skip' THEN
          PERFORM orch._log('tick_skipped', proc.owner, proc.id, proc.current_run_id,
                                  jsonb_build_object('tick', tick, 'reason', 'a run is in progress'));
        ELSIF proc.status = 'IN_PROGRESS' AND proc.overlap_policy = 'queue' THEN
          IF proc.run_queued THEN
            PERFORM orch._log('tick_skipped', proc.owner, proc.id, proc.current_run_id,
                                    jsonb_build_object('tick', tick, 'reason', 'a run is already queued'));
          ELSE
            UPDATE orch.processes p SET run_queued = true, queued_event = NULL, queued_input = NULL WHERE p.id = proc.id;
            PERFORM orch._log('tick_queued', proc.owner, proc.id, proc.current_run_id, jsonb_build_object('tick', tick));
          END IF;
        ELSE
          PERFORM orch._start_scheduled_run(proc, missed);
        END IF;
      EXCEPTION WHEN OTHERS THEN
        -- Nothing of one process may fail the others' ticks: its schedule is
        -- paused, saying why, rather than tried again every turn.
        GET STACKED DIAGNOSTICS message = MESSAGE_TEXT;
        UPDATE orch.processes p SET is_active = false, next_run_at = NULL, run_queued = false WHERE p.id = proc.id;
        PERFORM orch._log('schedule_paused', proc.owner, proc.id, NULL,
                                jsonb_build_object('tick', proc.next_run_at, 'error', message));
      END;
    END LOOP;
  END IF;
  -- 0 when more than this batch was due; NULL when no schedule is left
  -- (greatest() would make that 0: a busy loop); min() is one index probe.
  -- A tick still due after the batch is one whose row someone holds (SKIP
  -- LOCKED): looked at again a little later, not at once.
  IF more_due THEN
    RETURN 0;
  END IF;
  RETURN (SELECT CASE WHEN n.next_tick <= clock_timestamp() THEN 100
                      ELSE ceil(extract(epoch FROM n.next_tick - clock_timestamp()) * 1000)::bigint END
          FROM (SELECT min(p.next_run_at) AS next_tick FROM orch.processes p) n WHERE n.next_tick IS NOT NULL);
END
$$;

-- Starts the queued run (a tick's or an event's) of processes whose run
-- just ended (overlap 'queue').
CREATE FUNCTION orch._start_queued_runs(run_ids bigint[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  proc orch.processes;
BEGIN
  FOR proc IN SELECT p.* FROM orch.runs r JOIN orch.processes p ON p.id = r.process_id
              WHERE r.id = ANY (run_ids) AND p.current_run_id = r.id AND p.run_queued AND p.status <> 'IN_PROGRESS'
              FOR UPDATE OF p LOOP
    UPDATE orch.processes p SET run_queued = false, queued_event = NULL, queued_input = NULL WHERE p.id = proc.id;
    IF proc.queued_event IS NULL THEN
      PERFORM orch._start_scheduled_run(proc, false);
    ELSE
      PERFORM orch._start_scheduled_run(proc, false, 'event:' || proc.queued_event, proc.queued_input);
    END IF;
  END LOOP;
END
$$;
