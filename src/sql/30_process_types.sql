-- pg_orch: process types
CREATE FUNCTION orch.define_process_type(name text, tasks jsonb, description text DEFAULT NULL)
RETURNS orch.process_types
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  normalized jsonb;
  os_commands boolean;
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
  normalized := orch._parse_process_type(tasks);
  SELECT bool_or(t ->> 'kind' IN ('command', 'shell')) INTO os_commands
    FROM jsonb_array_elements(normalized) AS t;
  -- Running OS commands is as powerful as COPY ... TO PROGRAM.
  IF os_commands AND NOT (
       (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
       OR pg_catalog.pg_has_role(current_user, 'pg_execute_server_program', 'USAGE')) THEN
    RAISE EXCEPTION 'permission denied to define process type "%"', name
      USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'Its tasks run operating system commands.',
            HINT = 'Only superusers and members of pg_execute_server_program may define command or shell tasks.';
  END IF;
  INSERT INTO orch.process_types AS pt (name, description, tasks, runs_os_commands)
  VALUES (define_process_type.name, description, tasks, os_commands)
  ON CONFLICT ON CONSTRAINT process_types_pkey DO UPDATE
    SET description = EXCLUDED.description, tasks = EXCLUDED.tasks,
        runs_os_commands = EXCLUDED.runs_os_commands, updated_at = now()
  RETURNING * INTO result;
  RETURN result;
END
$$;

CREATE FUNCTION orch.drop_process_type(name text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  users bigint;
BEGIN
  PERFORM 1 FROM orch.process_types pt WHERE pt.name = drop_process_type.name FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'process type "%" does not exist', name USING ERRCODE = 'undefined_object';
  END IF;
  SELECT count(*) INTO users FROM orch.processes p WHERE p.type = drop_process_type.name;
  IF users > 0 THEN
    RAISE EXCEPTION 'cannot drop process type "%" because % process(es) use it', name, users
      USING ERRCODE = 'dependent_objects_still_exist',
            HINT = 'Delete those processes first with orch.delete_process().';
  END IF;
  DELETE FROM orch.process_types pt WHERE pt.name = drop_process_type.name;
END
$$;
