-- Passkeys: WebAuthn credentials of users. A credential id is unique across every
-- tenant (the unique index is not subject to row-level security), so one authenticator
-- credential can never be registered twice anywhere.

CREATE TABLE passkeys (
    id TEXT NOT NULL CONSTRAINT passkeys_pkey PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id BYTEA NOT NULL,
    name TEXT NOT NULL,
    credential JSONB NOT NULL,
    sign_count BIGINT NOT NULL,
    aaguid TEXT,
    attestation_format TEXT NOT NULL,
    backup_eligible BOOLEAN NOT NULL,
    backup_state BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    CONSTRAINT passkeys_credential_id_key UNIQUE (credential_id)
);

CREATE INDEX passkeys_tenant_user ON passkeys (tenant_id, user_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON passkeys TO gatehouse_app;

ALTER TABLE passkeys ENABLE ROW LEVEL SECURITY;
ALTER TABLE passkeys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON passkeys
    USING (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system')
    WITH CHECK (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system');
