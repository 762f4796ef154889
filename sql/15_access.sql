-- pg_orch: who may do what. The API functions' SECURITY DEFINER bodies
-- (orch._api_*, reached through 80_api.sql) ask these; the tables' row level
-- security policies (90_security.sql) say the same for reads, so a user sees
-- through SELECT exactly what the functions let them act on.

-- Superusers and members of orch_admin see and manage everything. (C, in
-- src/pg/identity.cpp, as the two below: asked at every call and row.)
CREATE FUNCTION orch._is_admin() RETURNS boolean
LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'orch_is_admin';

-- Members of orch_user (and admins) may create and change; orch_viewer only
-- reads; a caller without an owner name writes nothing.
CREATE FUNCTION orch._can_write() RETURNS boolean
LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'orch_can_write';

-- The owner of what the caller creates, or the error that says why the
-- caller may create nothing.
CREATE FUNCTION orch._writer(what text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  owner text := orch.current_owner();
BEGIN
  IF owner IS NULL AND orch._jwt_claims() IS NOT NULL THEN
    RAISE EXCEPTION 'permission denied to %', what USING ERRCODE = 'insufficient_privilege',
      DETAIL = 'The request''s JWT has no "sub" claim, so it is no one''s.',
      HINT = 'Sign the user in: pg_orch takes the owner of what a request creates from its "sub".';
  ELSIF owner IS NULL THEN
    RAISE EXCEPTION 'permission denied to %', what USING ERRCODE = 'insufficient_privilege',
      DETAIL = format('Role names starting with "jwt:" are reserved for JWT owners, and the role is %s.',
                      orch._caller());
  ELSIF NOT orch._can_write() THEN
    RAISE EXCEPTION 'permission denied to %', what USING ERRCODE = 'insufficient_privilege',
      HINT = 'Members of orch_user and orch_admin may create and change pg_orch objects.';
  END IF;
  RETURN owner;
END
$$;

-- The names a grant can be made to that mean the caller: its owner name and
-- every role it is a member of, except roles named like JWT owners (a role
-- "jwt:carol" is not the JWT user carol).
CREATE FUNCTION orch._identities() RETURNS text[]
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN ARRAY[orch.current_owner()] ||
         ARRAY(SELECT r.rolname::text FROM pg_catalog.pg_roles r
               WHERE pg_catalog.pg_has_role(orch._caller(), r.oid, 'MEMBER') AND left(r.rolname, 4) <> 'jwt:');
END
$$;

-- May the caller see (need 'view'), change (need 'edit': start, stop,
-- retry, schedule) or own (need 'own': delete, share, upgrade) this process?
CREATE FUNCTION orch._may(need text, process_id text, owner text) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN orch._is_admin()
      OR ((need = 'view' OR orch._can_write())
          AND (owner = orch.current_owner()
               OR (need <> 'own'
                   AND EXISTS (SELECT 1 FROM orch.process_permissions pp
                               WHERE pp.process_id = _may.process_id AND pp.grantee = ANY (orch._identities())
                                 AND (pp.can_edit OR (need = 'view' AND pp.can_view))))));
END
$$;

-- May the caller create processes of this type?
CREATE FUNCTION orch._may_use_type(type orch.process_types) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
  SELECT orch._is_admin()
      OR (orch._can_write()
          AND (type.owner = orch.current_owner()
               OR EXISTS (SELECT 1 FROM orch.process_type_grants g
                          WHERE g.type = type.name AND g.grantee = ANY (orch._identities()))))
$$;

-- The one error for a process type the caller may not use
-- (orch._may_use_type). Like orch._refuse_process, it does not say whether
-- the type exists; only admins are told that it does not.
CREATE FUNCTION orch._refuse_type_use(type text, found boolean) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT found AND orch._is_admin() THEN
    RAISE EXCEPTION 'process type "%" does not exist', type USING ERRCODE = 'undefined_object';
  END IF;
  RAISE EXCEPTION 'permission denied for process type "%"', type
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'Process types are usable by their owner, by roles and owners they are granted to '
                 '(orch.grant_process_type), and by orch_admin.';
END
$$;

-- The one error for a process the caller may not act on. It does not say
-- whether the process exists; only admins are told that it does not.
CREATE FUNCTION orch._refuse_process(id text, found boolean) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT found AND orch._is_admin() THEN
    RAISE EXCEPTION 'process "%" does not exist', id USING ERRCODE = 'undefined_object';
  END IF;
  RAISE EXCEPTION 'permission denied for process "%"', id
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'Processes can be changed by their owner, by roles they are shared with for editing, and by orch_admin.';
END
$$;
