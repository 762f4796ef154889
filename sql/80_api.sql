-- pg_orch: the API functions that change something. Each is the C entry
-- point orch_api (src/pg/identity.cpp), which refuses to run inside a
-- security-restricted operation, takes the caller to be the role calling it
-- (current_user at the call), and runs the function's body, the SECURITY
-- DEFINER orch._api_<name> with the same arguments, which only it can call.
CREATE FUNCTION orch.define_process_type(name text, tasks jsonb, description text DEFAULT NULL,
                                         max_concurrent integer DEFAULT NULL)
RETURNS orch.process_types LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.drop_process_type(name text) RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.grant_process_type(type text, grantee text) RETURNS void
LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.revoke_process_type(type text, grantee text) RETURNS void
LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';

CREATE FUNCTION orch.create_process(id text, type text, input_data jsonb DEFAULT '{}',
                                    schedule text DEFAULT NULL, timezone text DEFAULT NULL,
                                    overlap text DEFAULT 'skip', misfire text DEFAULT 'run_once')
RETURNS orch.processes LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.upgrade_process(id text) RETURNS orch.processes LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.start(id text, triggered_by text DEFAULT 'MANUAL') RETURNS bigint
LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.stop(id text) RETURNS bigint LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.retry(run_id bigint) RETURNS bigint LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.delete_process(id text) RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.share_process(id text, grantee text, can_edit boolean DEFAULT false) RETURNS void
LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.unshare_process(id text, grantee text) RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';

CREATE FUNCTION orch.on_event(process_id text, event text) RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.off_event(process_id text, event text) RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.emit(event text, payload jsonb DEFAULT '{}') RETURNS bigint[]
LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';

CREATE FUNCTION orch.set_schedule(id text, schedule text, timezone text DEFAULT NULL, overlap text DEFAULT NULL,
                                  misfire text DEFAULT NULL)
RETURNS orch.processes LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.pause(id text) RETURNS orch.processes LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.resume(id text) RETURNS orch.processes LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
CREATE FUNCTION orch.prune_history(OUT runs bigint, OUT tasks bigint, OUT events bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'orch_api';
