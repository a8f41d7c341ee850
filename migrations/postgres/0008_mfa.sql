-- Second factors: a TOTP secret per user (sealed under the master key) with the last
-- time step accepted, and single-use recovery codes (keyed hashes only).

CREATE TABLE mfa_totp (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed BYTEA NOT NULL,
    enabled_at TIMESTAMPTZ,
    last_step BIGINT,
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT mfa_totp_pkey PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE recovery_codes (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT recovery_codes_pkey PRIMARY KEY (tenant_id, user_id, code_hash)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON mfa_totp, recovery_codes TO gatehouse_app;

ALTER TABLE mfa_totp ENABLE ROW LEVEL SECURITY;
ALTER TABLE mfa_totp FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON mfa_totp
    USING (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system')
    WITH CHECK (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system');
ALTER TABLE recovery_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE recovery_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON recovery_codes
    USING (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system')
    WITH CHECK (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system');
