-- pg_orch: history that stays bounded (seed 003's retention and archive).
-- orch.history_retention prunes finished runs with their tasks, keeping
-- each process's latest run; orch.events_retention prunes events, whose
-- table is partitioned by month so that an expired month goes as a
-- partition. The pruner (src/pg/pruner.hpp), which an idle scheduler
-- starts, prunes batches of at most 1,000 rows, one transaction each;
-- orch.prune_history() prunes everything due now. With
-- orch.archive_directory set, rows are first written there (gzip-compressed
-- JSON lines, one file per batch and kind, or per month of events) and
-- listed in orch.archives; a write that fails keeps the rows (an expired
-- month's in its detached table until it succeeds).

CREATE TABLE orch.archives (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  file        text NOT NULL,  -- its name in orch.archive_directory
  kind        text NOT NULL CHECK (kind IN ('runs', 'tasks', 'events')),
  row_count   bigint NOT NULL,
  bytes       bigint NOT NULL,
  first_at    timestamptz,  -- earliest and latest time of its rows (a run's end, a task's end, an event's time)
  last_at     timestamptz,
  written_at  timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION orch._write_archive(name text, query text) RETURNS bigint
LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'orch_write_archive';
-- Removes NAME.partial files of this database's that a crash left.
CREATE FUNCTION orch._remove_partial_archives(prefix text) RETURNS integer
LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'orch_remove_partial_archives';

-- How this database's archive files begin: its name, safe characters only.
CREATE FUNCTION orch._archive_prefix() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$ SELECT format('pg_orch_%s_', regexp_replace(current_database(), '[^A-Za-z0-9_-]', '_', 'g')) $$;

-- Writes the rows of `query` (row_to_json text first, their time second) as
-- one archive file and lists it; false, with a WARNING in the log saying
-- why, when it cannot (then the caller keeps the rows).
CREATE FUNCTION orch._archive(kind text, query text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  name text := format('%s%s_%s_%s.jsonl.gz', orch._archive_prefix(), kind,
                      to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISSUS'), txid_current());
  size bigint;
  rows bigint;
  first_at timestamptz;
  last_at timestamptz;
BEGIN
  IF current_setting('orch.archive_directory') = '' THEN
    RETURN true;
  END IF;
  EXECUTE format('SELECT count(*), min(at), max(at) FROM (%s) AS q(line, at)', query) INTO rows, first_at, last_at;
  IF rows = 0 THEN
    RETURN true;
  END IF;
  BEGIN
    size := orch._write_archive(name, format('SELECT line FROM (%s) AS q(line, at)', query));
  EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'pg_orch could not archive % pruned %: %; they are kept', rows, kind, SQLERRM;
    RETURN false;
  END;
  INSERT INTO orch.archives (file, kind, row_count, bytes, first_at, last_at)
  VALUES (name, kind, rows, size, first_at, last_at);
  RETURN true;
END
$$;

-- A month's partition of orch.events for the current month and the next,
-- named events_YYYY_MM (UTC); events of other times go to events_default,
-- and rows of the month already there move into the new partition (after
-- an upgrade from 0.1, once). It takes orch.events alone, so that no insert
-- routed before the change lands in the wrong partition (which fails it):
-- it waits at most 100 ms for that, and is tried again at the next prune.
CREATE FUNCTION orch._add_event_partitions() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET session_replication_role = replica
  SET lock_timeout = '100ms'
AS $$
DECLARE
  month timestamp;
  name text;
  low timestamptz;
  high timestamptz;
BEGIN
  FOR month IN SELECT date_trunc('month', now() AT TIME ZONE 'UTC') + m * interval '1 month'
               FROM generate_series(0, 1) AS m LOOP
    name := 'events_' || to_char(month, 'YYYY_MM');
    CONTINUE WHEN to_regclass('orch.' || name) IS NOT NULL;
    low := month AT TIME ZONE 'UTC';
    high := (month + interval '1 month') AT TIME ZONE 'UTC';
    BEGIN
      LOCK TABLE orch.events IN ACCESS EXCLUSIVE MODE;
      CONTINUE WHEN to_regclass('orch.' || name) IS NOT NULL;  -- another pruner (an admin's call) was first
      EXECUTE format('CREATE TABLE orch.%I (LIKE orch.events INCLUDING DEFAULTS)', name);
      EXECUTE format('WITH moved AS (DELETE FROM orch.events_default WHERE at >= %L AND at < %L RETURNING *)
                      INSERT INTO orch.%I SELECT * FROM moved', low, high, name);
      EXECUTE format('ALTER TABLE orch.events ATTACH PARTITION orch.%I FOR VALUES FROM (%L) TO (%L)', name, low, high);
    EXCEPTION WHEN lock_not_available OR duplicate_table THEN
      RAISE LOG 'pg_orch could not add the partition orch.% yet: %', name, SQLERRM;
    END;
  END LOOP;
END
$$;

-- Expired months leave orch.events first, in a transaction of their own:
-- detaching waits (100 ms at most) for the transactions writing to
-- orch.events, and after it nothing writes to the month, so that
-- orch._prune_batch archives exactly what it drops, without holding
-- orch.events meanwhile. Returns how many months it detached.
CREATE FUNCTION orch._detach_expired_months() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET lock_timeout = '100ms'
AS $$
DECLARE
  keep_events interval := current_setting('orch.events_retention')::interval;
  month record;
  detached integer := 0;
BEGIN
  IF keep_events <= interval '0' THEN
    RETURN 0;
  END IF;
  FOR month IN
    SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'orch.events'::regclass AND c.relname ~ '^events_\d{4}_\d{2}$'
      AND (to_date(substr(c.relname, 8), 'YYYY_MM') + interval '1 month') AT TIME ZONE 'UTC' <= now() - keep_events
  LOOP
    BEGIN
      EXECUTE format('ALTER TABLE orch.events DETACH PARTITION orch.%I', month.relname);
      detached := detached + 1;
    EXCEPTION WHEN lock_not_available THEN
      RAISE LOG 'pg_orch could not detach the expired month orch.% yet: %', month.relname, SQLERRM;
    END;
  END LOOP;
  RETURN detached;
END
$$;

-- One batch: at most max_rows rows of runs and tasks, then of events.
-- Triggers are off (session_replication_role) so that the append-only
-- events can be pruned; only this function deletes them. It waits at most
-- 100 ms for any lock (a reader of orch.events, when a month is dropped).
CREATE FUNCTION orch._prune_batch(max_rows integer DEFAULT 1000, OUT runs bigint, OUT tasks bigint, OUT events bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET session_replication_role = replica
  SET lock_timeout = '100ms'
AS $$
DECLARE
  history interval := current_setting('orch.history_retention')::interval;
  keep_events interval := current_setting('orch.events_retention')::interval;
  run_ids bigint[];
  task_ids bigint[];
  event_ids bigint[];
  month record;
BEGIN
  runs := 0; tasks := 0; events := 0;
  PERFORM orch._add_event_partitions();

  IF history > interval '0' THEN
    -- Finished runs, oldest first; not any process's latest.
    run_ids := ARRAY(
      SELECT r.id FROM orch.runs r
      WHERE r.completed_at < now() - history AND r.status IN ('COMPLETED', 'FAILED', 'STOPPED')
        AND NOT EXISTS (SELECT 1 FROM orch.processes p WHERE p.id = r.process_id AND p.current_run_id = r.id)
        -- (a stopped run's command may still be dying: it counts against the limits until it has.
        -- Said as the limits say it, so that it reads the few active tasks by their partial
        -- index: without fan_out, each batch read all of orch.tasks, 97 ms with 1M rows.)
        AND NOT EXISTS (SELECT 1 FROM orch.tasks t
                        WHERE t.run_id = r.id AND t.status IN ('DISPATCHED', 'RUNNING') AND t.fan_out IS NULL)
      ORDER BY r.completed_at LIMIT greatest(max_rows / 10, 1) FOR UPDATE OF r SKIP LOCKED);
    -- Their tasks, as many as fit; a run goes once all its tasks have.
    task_ids := ARRAY(SELECT t.id FROM orch.tasks t WHERE t.run_id = ANY (run_ids)
                      ORDER BY t.run_id, t.id LIMIT max_rows - cardinality(run_ids));
    run_ids := ARRAY(SELECT r FROM unnest(run_ids) AS r
                     WHERE NOT EXISTS (SELECT 1 FROM orch.tasks t WHERE t.run_id = r AND t.id <> ALL (task_ids)));
    IF orch._archive('tasks', format('SELECT row_to_json(t)::text, t.completed_at FROM orch.tasks t WHERE t.id = ANY (%L::bigint[])', task_ids))
       AND orch._archive('runs', format('SELECT row_to_json(r)::text, r.completed_at FROM orch.runs r WHERE r.id = ANY (%L::bigint[])', run_ids)) THEN
      DELETE FROM orch.tasks WHERE id = ANY (task_ids);
      GET DIAGNOSTICS tasks = ROW_COUNT;
      DELETE FROM orch.runs WHERE id = ANY (run_ids);
      GET DIAGNOSTICS runs = ROW_COUNT;
    END IF;
  END IF;

  IF keep_events > interval '0' THEN
    -- A detached month first (orch._detach_expired_months): archived as one
    -- file, then dropped.
    FOR month IN
      SELECT c.relname FROM pg_class c
      WHERE c.relnamespace = 'orch'::regnamespace AND c.relkind = 'r' AND NOT c.relispartition
        AND c.relname ~ '^events_\d{4}_\d{2}$'
      ORDER BY c.relname LIMIT 1
    LOOP
      IF orch._archive('events', format('SELECT row_to_json(e)::text, e.at FROM orch.%I e ORDER BY e.id', month.relname)) THEN
        EXECUTE format('SELECT count(*) FROM orch.%I', month.relname) INTO events;
        EXECUTE format('DROP TABLE orch.%I', month.relname);
      END IF;
      RETURN;
    END LOOP;
    -- Then rows, in events_default and the months not wholly expired (an
    -- expired month goes whole once it is detached): chosen once, so that
    -- what is archived is what is deleted.
    IF runs + tasks < max_rows THEN
      event_ids := ARRAY(
        SELECT id FROM orch.events
        WHERE at < now() - keep_events
          AND (tableoid = 'orch.events_default'::regclass
               OR at >= date_trunc('month', (now() - keep_events) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')
        ORDER BY id LIMIT max_rows - runs - tasks);
      IF orch._archive('events', format(
           'SELECT row_to_json(e)::text, e.at FROM orch.events e WHERE e.id = ANY (%L::bigint[]) AND e.at < %L',
           event_ids, now() - keep_events)) THEN
        DELETE FROM orch.events WHERE id = ANY (event_ids) AND at < now() - keep_events;
        GET DIAGNOSTICS events = ROW_COUNT;
      END IF;
    END IF;
  END IF;
END
$$;

-- orch.prune_history(): every batch due now, in this transaction (admins).
-- A month it detaches keeps orch.events locked until the caller commits.
CREATE FUNCTION orch._api_prune_history(OUT runs bigint, OUT tasks bigint, OUT events bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  batch record;
BEGIN
  IF NOT orch._is_admin() THEN
    RAISE EXCEPTION 'permission denied to prune history' USING ERRCODE = 'insufficient_privilege',
      HINT = 'Members of orch_admin may prune history.';
  END IF;
  runs := 0; tasks := 0; events := 0;
  PERFORM orch._detach_expired_months();
  LOOP
    batch := orch._prune_batch();
    runs := runs + batch.runs;
    tasks := tasks + batch.tasks;
    events := events + batch.events;
    EXIT WHEN batch.runs + batch.tasks + batch.events = 0;
  END LOOP;
END
$$;
