-- The read that starts a password sign-in (the account by its normalised email, and
-- whether it has a TOTP secret or passkeys) as one function, so the store sends one
-- statement instead of BEGIN + SET LOCAL, the SELECT and a ROLLBACK. As in
-- gatehouse_record_login (0014), the function names its tenant for row-level security
-- first and the setting ends with the statement's own transaction. The order matters:
-- the second factors are read by the next statement, after the tenant is named, so the
-- policies can never see an unnamed tenant and hide a factor. The account comes back
-- as the whole `users` row (callers expand it with `(r.account).*`), so this file does
-- not repeat the table's columns.
CREATE FUNCTION gatehouse_sign_in_user(p_tenant_id TEXT, p_email_normalized TEXT)
RETURNS TABLE (account users, factor_totp BOOLEAN, factor_passkeys BIGINT) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('gatehouse.tenant_id', p_tenant_id, true);
    RETURN QUERY
        SELECT u,
               EXISTS (SELECT 1 FROM mfa_totp t
                       WHERE t.tenant_id = u.tenant_id AND t.user_id = u.id AND t.enabled_at IS NOT NULL),
               (SELECT count(*) FROM passkeys p WHERE p.tenant_id = u.tenant_id AND p.user_id = u.id)
        FROM users u
        WHERE u.tenant_id = p_tenant_id AND u.email_normalized = p_email_normalized;
END
$$;
