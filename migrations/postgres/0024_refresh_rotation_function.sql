-- A refresh-token rotation in one function, so the store sends one statement instead
-- of BEGIN + SET LOCAL, the locking read, the write and COMMIT: five round trips, each
-- a wake-up of the backend while the presented token's row is locked, become one. As in
-- gatehouse_record_login (0014), the function names its tenant for row-level security
-- first, and the setting ends with the statement's own transaction.
--
-- The decisions are the ones the store made in Rust before, in the same order: an
-- unknown token, a session that ended or rows of another tenant → 'invalid'; a token
-- spent at or after p_raced_since that kept its sealed successor → 'raced' (the caller
-- opens the successor); any other spent token → 'reused', and the session is revoked; an
-- expired token → 'invalid'; otherwise the token is spent, the sealed successors of the
-- session's earlier tokens cleared, the successor inserted, the session marked seen and
-- the rotation's audit event recorded → 'rotated'. The event is the caller's, made before
-- anyone knew whose token it was: the function names the session's user as actor and
-- target and adds the session's id to its data (an object), as `RotationEvent::for_session`
-- does for SQLite.
--
-- Under READ COMMITTED each statement of the function sees what committed before it
-- began, so a rotation that waited for the token's lock reads the token as the winner
-- left it, exactly as the separate statements did. The session and user come back as
-- whole rows as they were read (callers expand them with `(r.sess).*` and
-- `(r.account).*`), so this file does not repeat the tables' columns.
CREATE FUNCTION gatehouse_rotate_refresh_token(
    p_tenant_id TEXT, p_presented TEXT, p_now TIMESTAMPTZ, p_raced_since TIMESTAMPTZ, p_sealed BYTEA,
    p_successor_hash TEXT, p_successor_created_at TIMESTAMPTZ, p_successor_expires_at TIMESTAMPTZ,
    e_id TEXT, e_tenant_id TEXT, e_action TEXT, e_ip TEXT, e_user_agent TEXT, e_request_id TEXT, e_data JSONB,
    e_created_at TIMESTAMPTZ
) RETURNS TABLE (outcome TEXT, sess sessions, account users, successor_sealed BYTEA) LANGUAGE plpgsql AS $$
DECLARE
    t_session_id TEXT;
    t_expires_at TIMESTAMPTZ;
    t_used_at TIMESTAMPTZ;
    t_sealed BYTEA;
    s sessions;
    u users;
BEGIN
    PERFORM set_config('gatehouse.tenant_id', p_tenant_id, true);
    SELECT r.session_id, r.expires_at, r.used_at, r.successor_sealed
        INTO t_session_id, t_expires_at, t_used_at, t_sealed
        FROM refresh_tokens r WHERE r.tenant_id = p_tenant_id AND r.token_hash = p_presented FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'invalid'::TEXT, NULL::sessions, NULL::users, NULL::BYTEA;
        RETURN;
    END IF;
    SELECT * INTO s FROM sessions WHERE id = t_session_id;
    IF FOUND THEN
        SELECT * INTO u FROM users WHERE id = s.user_id;
    END IF;
    IF u.id IS NULL OR s.tenant_id <> p_tenant_id OR u.tenant_id <> p_tenant_id
       OR s.revoked_at IS NOT NULL OR s.expires_at <= p_now THEN
        RETURN QUERY SELECT 'invalid'::TEXT, NULL::sessions, NULL::users, NULL::BYTEA;
        RETURN;
    END IF;
    IF t_used_at IS NOT NULL AND t_sealed IS NOT NULL AND t_used_at >= p_raced_since THEN
        RETURN QUERY SELECT 'raced'::TEXT, s, u, t_sealed;
        RETURN;
    END IF;
    IF t_used_at IS NOT NULL THEN
        UPDATE sessions SET revoked_at = p_now, revoke_reason = 'refresh_token_reuse'
            WHERE tenant_id = p_tenant_id AND id = s.id AND revoked_at IS NULL;
        s.revoked_at := p_now;
        s.revoke_reason := 'refresh_token_reuse';
        RETURN QUERY SELECT 'reused'::TEXT, s, u, NULL::BYTEA;
        RETURN;
    END IF;
    IF t_expires_at <= p_now THEN
        RETURN QUERY SELECT 'invalid'::TEXT, NULL::sessions, NULL::users, NULL::BYTEA;
        RETURN;
    END IF;
    -- The spend finds the session's earlier tokens through the partial index of rows
    -- that still carry a sealed successor (0016) and changes rows by primary key only.
    UPDATE refresh_tokens
        SET used_at = CASE WHEN token_hash = p_presented THEN p_now ELSE used_at END,
            successor_sealed = CASE WHEN token_hash = p_presented THEN p_sealed ELSE NULL END
        WHERE tenant_id = p_tenant_id
          AND token_hash IN (SELECT p_presented UNION ALL
                             SELECT e.token_hash FROM refresh_tokens e
                             WHERE e.tenant_id = p_tenant_id AND e.session_id = s.id
                               AND e.successor_sealed IS NOT NULL);
    INSERT INTO refresh_tokens (token_hash, tenant_id, session_id, created_at, expires_at)
        VALUES (p_successor_hash, p_tenant_id, s.id, p_successor_created_at, p_successor_expires_at);
    UPDATE sessions SET last_seen_at = p_now WHERE tenant_id = p_tenant_id AND id = s.id;
    INSERT INTO audit_events (id, tenant_id, actor_type, actor_id, action, target_type, target_id, ip,
                              user_agent, request_id, data, created_at)
        VALUES (e_id, e_tenant_id, 'user', s.user_id, e_action, 'user', s.user_id, e_ip, e_user_agent,
                e_request_id, e_data || jsonb_build_object('session_id', s.id), e_created_at);
    s.last_seen_at := p_now;
    RETURN QUERY SELECT 'rotated'::TEXT, s, u, NULL::BYTEA;
END
$$;
