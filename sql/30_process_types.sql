-- pg_orch: process types
-- Defines a type, or a new version of one's own type. Processes keep the
-- version they run (see orch.upgrade_process).
CREATE FUNCTION orch._api_define_process_type(name text, tasks jsonb, description text, max_concurrent integer)
RETURNS orch.process_types
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  owner text;
  normalized jsonb;
  os_commands boolean;
  outside_hosts text[];
  result orch.process_types;
BEGIN
  IF name IS NULL OR tasks IS NULL THEN
    RAISE EXCEPTION 'process type name and tasks must not be null' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF name !~ '^[A-Za-z0-9_.-]{1,63}$' THEN
    RAISE EXCEPTION 'invalid process type name "%"', name
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Use 1 to 63 letters, digits, "_", "." or "-".';
  END IF;
  IF max_concurrent < 1 THEN
    RAISE EXCEPTION 'max_concurrent must be at least 1, not %', max_concurrent
      USING ERRCODE = 'invalid_parameter_value', HINT = 'Leave it NULL for no limit.';
  END IF;
  owner := orch._writer('define process types');
  normalized := orch._parse_process_type(tasks);
  SELECT bool_or(t ->> 'kind' IN ('command', 'shell')) INTO os_commands
    FROM jsonb_array_elements(normalized) AS t;
  -- The hosts of its http tasks that orch.http_allowed_hosts does not list.
  SELECT array_agg(DISTINCT h.host ORDER BY h.host) INTO outside_hosts
  FROM jsonb_array_elements(normalized) AS t
  CROSS JOIN LATERAL (SELECT orch._http_host(ARRAY(SELECT jsonb_array_elements_text(t -> 'command')))) AS h(host)
  WHERE t ->> 'kind' = 'http'
    AND h.host NOT IN (SELECT lower(btrim(a)) FROM unnest(string_to_array(current_setting('orch.http_allowed_hosts'), ',')) AS a);
  -- Running OS commands is as powerful as COPY ... TO PROGRAM; so is calling
  -- any host the server can reach.
  IF (os_commands OR outside_hosts IS NOT NULL)
     AND NOT (orch._is_admin() OR pg_catalog.pg_has_role(orch._caller(), 'pg_execute_server_program', 'MEMBER')) THEN
    RAISE EXCEPTION 'permission denied to define process type "%"', name
      USING ERRCODE = 'insufficient_privilege',
            DETAIL = CASE WHEN os_commands THEN 'Its tasks run operating system commands.'
                          ELSE format('Its http tasks call %s, not in orch.http_allowed_hosts.',
                                      array_to_string(outside_hosts, ', ')) END,
            HINT = 'Only superusers, members of pg_execute_server_program and orch_admin may define command or shell '
                   'tasks, or http tasks to hosts outside orch.http_allowed_hosts.';
  END IF;
  -- A name belongs to its first definer: no one else, admins included, may
  -- make a version of it that its users would then run. Checked by the
  -- upsert itself, which waits for a concurrent first definition to commit
  -- and then finds it someone else's.
  INSERT INTO orch.process_types AS pt (name, owner, version, description, tasks, runs_os_commands, max_concurrent)
  VALUES (_api_define_process_type.name, owner, 1, description, tasks, os_commands, max_concurrent)
  ON CONFLICT ON CONSTRAINT process_types_pkey DO UPDATE
    SET version = pt.version + 1, description = EXCLUDED.description, tasks = EXCLUDED.tasks,
        runs_os_commands = EXCLUDED.runs_os_commands, max_concurrent = EXCLUDED.max_concurrent, updated_at = now()
    WHERE pt.owner = EXCLUDED.owner
  RETURNING * INTO result;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'permission denied for process type "%"', name USING ERRCODE = 'insufficient_privilege',
      DETAIL = 'The name belongs to the owner who first defined it.',
      HINT = 'Choose another name; orch_admin may drop the type once no process uses it.';
  END IF;
  INSERT INTO orch.process_type_versions (type, version, owner, description, tasks, runs_os_commands,
                                          max_concurrent, task_count, has_fan_out)
  VALUES (result.name, result.version, result.owner, result.description, result.tasks, result.runs_os_commands,
          result.max_concurrent, jsonb_array_length(normalized),
          EXISTS (SELECT 1 FROM jsonb_array_elements(normalized) AS t WHERE t -> 'fan_out' <> 'null'));
  INSERT INTO orch.process_type_tasks (type, version, owner, task_index, name, kind, command, has_placeholders,
                                       uses_outputs, fan_out, max_parallel, shell, sql, working_directory, env,
                                       timeout, max_retries, retry_delay, retry_backoff, depends_on, slurm)
  SELECT result.name, result.version, result.owner, t.task_index, t.name, t.kind, t.command,
         coalesce(EXISTS (SELECT 1 FROM unnest(t.command) AS a WHERE strpos(a, '{{') > 0), false), t.uses_outputs,
         t.fan_out, t.max_parallel,
         t.shell, t.sql, t.working_directory, coalesce(t.env, '{}'), t.timeout_ms * interval '1 millisecond',
         t.max_retries, t.retry_delay_ms * interval '1 millisecond', t.retry_backoff, t.depends_on, t.slurm
  FROM jsonb_to_recordset(normalized) AS t(task_index int, name text, kind text, command text[], shell text,
                                           sql text, working_directory text, env jsonb, timeout_ms bigint,
                                           max_retries int, retry_delay_ms bigint, retry_backoff float8,
                                           depends_on int[], uses_outputs boolean, fan_out jsonb, max_parallel int,
                                           slurm jsonb);
  PERFORM orch._log('type_defined', result.owner, NULL, NULL,
                    jsonb_build_object('type', name, 'version', result.version, 'runs_os_commands', os_commands));
  RETURN result;
END
$$;

-- Locks a process type the caller owns (or any, for admins), or raises.
CREATE FUNCTION orch._lock_own_type(name text) RETURNS orch.process_types
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  result orch.process_types;
BEGIN
  IF name IS NULL THEN
    RAISE EXCEPTION 'process type name must not be null' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  -- Checked before the row is locked: others must not hold up its owner.
  SELECT * INTO result FROM orch.process_types pt WHERE pt.name = _lock_own_type.name;
  IF FOUND AND ((result.owner = orch.current_owner() AND orch._can_write()) OR orch._is_admin()) THEN
    SELECT * INTO result FROM orch.process_types pt WHERE pt.name = _lock_own_type.name FOR UPDATE;
  END IF;
  IF FOUND AND ((result.owner = orch.current_owner() AND orch._can_write()) OR orch._is_admin()) THEN
    RETURN result;
  ELSIF NOT FOUND AND orch._is_admin() THEN
    RAISE EXCEPTION 'process type "%" does not exist', name USING ERRCODE = 'undefined_object';
  END IF;
  RAISE EXCEPTION 'permission denied for process type "%"', name USING ERRCODE = 'insufficient_privilege',
    HINT = 'Only its owner and orch_admin may change a process type.';
END
$$;

CREATE FUNCTION orch._api_drop_process_type(name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  type orch.process_types := orch._lock_own_type(name);
  users bigint;
BEGIN
  SELECT count(*) INTO users FROM orch.processes p WHERE p.type = _api_drop_process_type.name;
  IF users > 0 THEN
    RAISE EXCEPTION 'cannot drop process type "%" because % process(es) use it', name, users
      USING ERRCODE = 'dependent_objects_still_exist',
            HINT = 'Delete those processes first with orch.delete_process().';
  END IF;
  DELETE FROM orch.process_types pt WHERE pt.name = _api_drop_process_type.name;
  PERFORM orch._log('type_dropped', type.owner, NULL, NULL, jsonb_build_object('type', name));
END
$$;

-- Lets a role (and its members) or an owner name (a JWT "sub") create
-- processes of a type.
CREATE FUNCTION orch._api_grant_process_type(type text, grantee text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  locked orch.process_types := orch._lock_own_type(type);
BEGIN
  IF grantee IS NULL OR grantee = '' THEN
    RAISE EXCEPTION 'grantee must not be empty' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  INSERT INTO orch.process_type_grants (type, grantee, type_owner) VALUES (locked.name, grantee, locked.owner)
  ON CONFLICT DO NOTHING;
  PERFORM orch._log('type_granted', locked.owner, NULL, NULL, jsonb_build_object('type', type, 'grantee', grantee));
END
$$;

CREATE FUNCTION orch._api_revoke_process_type(type text, grantee text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  locked orch.process_types := orch._lock_own_type(type);
BEGIN
  IF grantee IS NULL THEN
    RAISE EXCEPTION 'grantee must not be null' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  DELETE FROM orch.process_type_grants g WHERE g.type = locked.name AND g.grantee = _api_revoke_process_type.grantee;
  PERFORM orch._log('type_revoked', locked.owner, NULL, NULL, jsonb_build_object('type', type, 'grantee', grantee));
END
$$;
