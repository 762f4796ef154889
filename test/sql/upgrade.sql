-- ALTER EXTENSION pg_orch UPDATE from 0.1 keeps the data, runs the
-- processes, and yields exactly the catalog of a fresh install.
-- (Last in name order: it drops and re-creates the extension.)
\set VERBOSITY terse

-- The extension's catalog, by name and definition (never by oid). The
-- month partitions of orch.events are left out: the scheduler adds them
-- when it first prunes, not the install or upgrade script.
-- A function, not a view: its body names no object that DROP EXTENSION would take with it.
CREATE FUNCTION pg_temp.orch_catalog() RETURNS TABLE (kind text, name text, definition text)
LANGUAGE sql AS $$
SELECT * FROM (
SELECT 'relation' AS kind, c.relname::text AS name,
       concat_ws(' ', c.relkind, c.reloptions::text, c.relrowsecurity, c.relforcerowsecurity, c.relacl::text,
                 pg_get_partkeydef(c.oid), pg_get_expr(c.relpartbound, c.oid)) AS definition
FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = 'orch')
UNION ALL
SELECT 'column', c.relname || '.' || a.attname,
       concat_ws(' ', row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum), format_type(a.atttypid, a.atttypmod),
                 a.attnotnull, a.attidentity, a.attgenerated, pg_get_expr(d.adbin, d.adrelid), a.attacl::text)
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = 'orch')
UNION ALL
SELECT 'constraint', conrelid::regclass::text || '.' || conname || contypid::regtype::text,
       pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = (SELECT oid FROM pg_namespace WHERE nspname = 'orch')
UNION ALL
SELECT 'index', indexrelid::regclass::text, pg_get_indexdef(indexrelid)
FROM pg_index WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = 'orch'))
UNION ALL
SELECT 'function', p.oid::regprocedure::text,
       concat_ws(' ', p.prokind, p.proacl::text,
                 CASE WHEN p.prokind = 'a' THEN (SELECT concat_ws(' ', aggtransfn, aggfinalfn, aggtranstype::regtype, agginitval)
                                                FROM pg_aggregate WHERE aggfnoid = p.oid)
                      ELSE pg_get_functiondef(p.oid) END)
FROM pg_proc p WHERE p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = 'orch')
UNION ALL
SELECT 'trigger', tgrelid::regclass::text || '.' || tgname, pg_get_triggerdef(oid)
FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = 'orch'))
UNION ALL
SELECT 'policy', tablename || '.' || policyname,
       concat_ws(' ', permissive, roles::text, cmd, qual, with_check)
FROM pg_policies WHERE schemaname = 'orch'
UNION ALL
SELECT 'view', c.relname, pg_get_viewdef(c.oid)
FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = 'orch') AND c.relkind = 'v'
UNION ALL
SELECT 'type', t.typname, concat_ws(' ', t.typtype, t.typbasetype::regtype, t.typnotnull, t.typacl::text)
FROM pg_type t WHERE t.typnamespace = (SELECT oid FROM pg_namespace WHERE nspname = 'orch') AND t.typtype IN ('d', 'e', 'c')
UNION ALL
SELECT 'schema', nspname, nspacl::text FROM pg_namespace WHERE nspname = 'orch'
UNION ALL
SELECT 'dumped', c.relname, NULL
FROM pg_extension e, unnest(e.extconfig) AS cfg(oid) JOIN pg_class c ON c.oid = cfg.oid
WHERE e.extname = 'pg_orch'
) AS catalog WHERE name !~ 'events_[0-9]{4}_[0-9]{2}'
$$;

CREATE TEMP TABLE fresh AS SELECT * FROM pg_temp.orch_catalog();
SELECT count(*) > 200 AS described FROM fresh;

DROP EXTENSION pg_orch CASCADE;
CREATE EXTENSION pg_orch VERSION '0.1';
SELECT extversion FROM pg_extension WHERE extname = 'pg_orch';

-- 0.1 data: a type, a scheduled process and one run started but, with the
-- library at 0.2, not run until the update (its scheduler waits for it).
SELECT name FROM orch.define_process_type('kept', $$[{"name": "say", "command": ["/bin/echo", "{{word}}"]}]$$);
SELECT id FROM orch.create_process('kept-1', 'kept', '{"word": "kept"}');
SELECT (orch.set_schedule('kept-1', '0 3 * * *', 'UTC')).schedule;
SELECT orch.start('kept-1') > 0 AS started;
SELECT pg_sleep(0.5);
SELECT r.status, t.status AS task_status FROM orch.runs r JOIN orch.tasks t ON t.run_id = r.id WHERE r.process_id = 'kept-1';

SELECT count(*) AS events_before, max(id) AS last_event FROM orch.events \gset
ALTER EXTENSION pg_orch UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'pg_orch';

-- The catalog is a fresh install's: nothing missing, nothing extra.
(SELECT 'only after the update' AS where_, * FROM pg_temp.orch_catalog() EXCEPT SELECT 'only after the update', * FROM fresh)
UNION ALL
(SELECT 'only in a fresh install', * FROM fresh EXCEPT SELECT 'only in a fresh install', * FROM pg_temp.orch_catalog())
ORDER BY 1, 2, 3;

-- The data is kept and the run runs.
SELECT count(*) = :events_before AS events_kept FROM orch.events WHERE id <= :last_event;
SELECT count(*) = count(DISTINCT id) AS event_ids_unique FROM orch.events;  -- the identity went on from 0.1's
SELECT count(*) AS events_in_0_1_table FROM pg_class WHERE relname = 'events_0_1';
SELECT orch.wait('kept-1', '30 seconds');
SELECT t.name, t.status, t.output FROM orch.tasks t WHERE t.process_id = 'kept-1';
SELECT schedule, timezone, next_run_at IS NOT NULL AS next_tick FROM orch.processes WHERE id = 'kept-1';
SELECT orch.start('kept-1') > 0 AS started_again;
SELECT orch.wait('kept-1', '30 seconds');
SELECT count(*) AS runs FROM orch.runs WHERE process_id = 'kept-1';
