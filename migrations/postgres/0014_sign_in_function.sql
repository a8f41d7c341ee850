-- A password sign-in's four writes (last sign-in time and any upgraded hash, the new
-- session, its first refresh token, the audit event) in one function, so the store
-- sends one statement and no BEGIN or COMMIT: a single statement is its own
-- transaction. The function names its tenant for row-level security first, exactly as
-- `SET LOCAL gatehouse.tenant_id` does in a tenant transaction, and the setting ends
-- with that transaction. SECURITY INVOKER (the default): it runs with the caller's
-- rights, under the same policies. Each insert selects from the one before, so a user
-- who is gone writes nothing; the result is the number of events written (0 or 1).
CREATE FUNCTION gatehouse_record_login(
    p_tenant_id TEXT, p_user_id TEXT, p_last_login_at TIMESTAMPTZ, p_password_hash TEXT,
    p_updated_at TIMESTAMPTZ,
    p_session_id TEXT, p_created_at TIMESTAMPTZ, p_last_seen_at TIMESTAMPTZ, p_expires_at TIMESTAMPTZ,
    p_auth_time TIMESTAMPTZ, p_amr JSONB, p_ip TEXT, p_user_agent TEXT, p_org_id TEXT,
    p_token_hash TEXT, p_token_created_at TIMESTAMPTZ, p_token_expires_at TIMESTAMPTZ,
    e_id TEXT, e_tenant_id TEXT, e_actor_type TEXT, e_actor_id TEXT, e_action TEXT, e_target_type TEXT,
    e_target_id TEXT, e_ip TEXT, e_user_agent TEXT, e_request_id TEXT, e_data JSONB, e_created_at TIMESTAMPTZ
) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    written BIGINT;
BEGIN
    PERFORM set_config('gatehouse.tenant_id', p_tenant_id, true);
    WITH u AS (
        UPDATE users SET last_login_at = p_last_login_at, password_hash = p_password_hash, updated_at = p_updated_at
        WHERE tenant_id = p_tenant_id AND id = p_user_id RETURNING id
    ), s AS (
        INSERT INTO sessions (id, tenant_id, user_id, created_at, last_seen_at, expires_at, auth_time, amr, ip,
                              user_agent, org_id)
        SELECT p_session_id, p_tenant_id, u.id, p_created_at, p_last_seen_at, p_expires_at, p_auth_time, p_amr,
               p_ip, p_user_agent, p_org_id
        FROM u RETURNING id
    ), r AS (
        INSERT INTO refresh_tokens (token_hash, tenant_id, session_id, created_at, expires_at)
        SELECT p_token_hash, p_tenant_id, s.id, p_token_created_at, p_token_expires_at FROM s RETURNING 1
    ), e AS (
        INSERT INTO audit_events (id, tenant_id, actor_type, actor_id, action, target_type, target_id, ip,
                                  user_agent, request_id, data, created_at)
        SELECT e_id, e_tenant_id, e_actor_type, e_actor_id, e_action, e_target_type, e_target_id, e_ip,
               e_user_agent, e_request_id, e_data, e_created_at
        FROM r RETURNING 1
    )
    SELECT count(*) INTO written FROM e;
    RETURN written;
END
$$;
