-- Token signing keys per tenant, sessions, and single-use refresh tokens (hashes only).

CREATE TABLE signing_keys (
    id TEXT NOT NULL CONSTRAINT signing_keys_pkey PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    alg TEXT NOT NULL,
    public_jwk JSONB NOT NULL,
    private_sealed BYTEA NOT NULL,
    status TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    publish_until TIMESTAMPTZ
);
-- One signing key and one next key per tenant at any time.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (tenant_id) WHERE status = 'active';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (tenant_id) WHERE status = 'next';

CREATE TABLE sessions (
    id TEXT NOT NULL CONSTRAINT sessions_pkey PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    auth_time TIMESTAMPTZ NOT NULL,
    amr JSONB NOT NULL,
    ip TEXT,
    user_agent TEXT,
    revoked_at TIMESTAMPTZ,
    revoke_reason TEXT
);
CREATE INDEX sessions_user_id_idx ON sessions (tenant_id, user_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT NOT NULL CONSTRAINT refresh_tokens_pkey PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON signing_keys, sessions, refresh_tokens TO gatehouse_app;

ALTER TABLE signing_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE signing_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON signing_keys
    USING (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system')
    WITH CHECK (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system');
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sessions
    USING (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system')
    WITH CHECK (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system');
ALTER TABLE refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE refresh_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON refresh_tokens
    USING (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system')
    WITH CHECK (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system');
