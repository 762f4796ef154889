-- pg_orch: process types
CREATE FUNCTION orch.define_process_type(name text, tasks jsonb, description text DEFAULT NULL)
RETURNS orch.process_types
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  normalized jsonb;
  os_commands boolean;
  existing orch.process_types;
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
  IF NOT orch._can_write() THEN
    RAISE EXCEPTION 'permission denied to define process types' USING ERRCODE = 'insufficient_privilege',
      HINT = 'Members of orch_user and orch_admin may define process types.';
  END IF;
  normalized := orch._parse_process_type(tasks);
  SELECT bool_or(t ->> 'kind' IN ('command', 'shell')) INTO os_commands
    FROM jsonb_array_elements(normalized) AS t;
  -- Running OS commands is as powerful as COPY ... TO PROGRAM.
  IF os_commands AND NOT (orch._is_admin()
                          OR pg_catalog.pg_has_role(orch._caller(), 'pg_execute_server_program', 'MEMBER')) THEN
    RAISE EXCEPTION 'permission denied to define process type "%"', name
      USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'Its tasks run operating system commands.',
            HINT = 'Only superusers, members of pg_execute_server_program and orch_admin may define command or shell tasks.';
  END IF;
  SELECT * INTO existing FROM orch.process_types pt WHERE pt.name = define_process_type.name FOR UPDATE;
  IF FOUND AND existing.owner <> orch.current_owner() AND NOT orch._is_admin() THEN
    RAISE EXCEPTION 'permission denied for process type "%"', name USING ERRCODE = 'insufficient_privilege',
      HINT = 'Only its owner and orch_admin may redefine a process type.';
  END IF;
  INSERT INTO orch.process_types AS pt (name, description, tasks, runs_os_commands)
  VALUES (define_process_type.name, description, tasks, os_commands)
  ON CONFLICT ON CONSTRAINT process_types_pkey DO UPDATE
    SET description = EXCLUDED.description, tasks = EXCLUDED.tasks,
        runs_os_commands = EXCLUDED.runs_os_commands, updated_at = now()
  RETURNING * INTO result;
  PERFORM orch._log('type_defined', result.owner, NULL, NULL,
                    jsonb_build_object('type', name, 'runs_os_commands', os_commands));
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
  SELECT * INTO result FROM orch.process_types pt WHERE pt.name = _lock_own_type.name FOR UPDATE;
  IF FOUND AND (result.owner = orch.current_owner() OR orch._is_admin()) THEN
    RETURN result;
  ELSIF NOT FOUND AND orch._is_admin() THEN
    RAISE EXCEPTION 'process type "%" does not exist', name USING ERRCODE = 'undefined_object';
  END IF;
  RAISE EXCEPTION 'permission denied for process type "%"', name USING ERRCODE = 'insufficient_privilege',
    HINT = 'Only its owner and orch_admin may change a process type.';
END
$$;

CREATE FUNCTION orch.drop_process_type(name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  type orch.process_types := orch._lock_own_type(name);
  users bigint;
BEGIN
  SELECT count(*) INTO users FROM orch.processes p WHERE p.type = drop_process_type.name;
  IF users > 0 THEN
    RAISE EXCEPTION 'cannot drop process type "%" because % process(es) use it', name, users
      USING ERRCODE = 'dependent_objects_still_exist',
            HINT = 'Delete those processes first with orch.delete_process().';
  END IF;
  DELETE FROM orch.process_types pt WHERE pt.name = drop_process_type.name;
  PERFORM orch._log('type_dropped', type.owner, NULL, NULL, jsonb_build_object('type', name));
END
$$;

-- Lets a role (and its members) or an owner name (a JWT "sub") create
-- processes of a type.
CREATE FUNCTION orch.grant_process_type(type text, grantee text) RETURNS void
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

CREATE FUNCTION orch.revoke_process_type(type text, grantee text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  locked orch.process_types := orch._lock_own_type(type);
BEGIN
  DELETE FROM orch.process_type_grants g WHERE g.type = locked.name AND g.grantee = revoke_process_type.grantee;
  PERFORM orch._log('type_revoked', locked.owner, NULL, NULL, jsonb_build_object('type', type, 'grantee', grantee));
END
$$;
