-- Verified phone numbers, one-time secrets (link tokens and codes, hashes only), the
-- durable message outbox (bodies sealed under the master key) and tenant templates.

ALTER TABLE users ADD COLUMN phone_verified BOOLEAN NOT NULL DEFAULT FALSE;
-- A verified number signs in one account only.
CREATE UNIQUE INDEX users_tenant_id_verified_phone_key ON users (tenant_id, phone) WHERE phone_verified;

CREATE TABLE one_time_secrets (
    id TEXT NOT NULL CONSTRAINT one_time_secrets_pkey PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    purpose TEXT NOT NULL,
    target TEXT NOT NULL,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT,
    code_hash TEXT,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    data JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    consumed_at TIMESTAMPTZ,
    CONSTRAINT one_time_secrets_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX one_time_secrets_target_idx ON one_time_secrets (tenant_id, purpose, target);

CREATE TABLE outbox (
    id TEXT NOT NULL CONSTRAINT outbox_pkey PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    kind TEXT NOT NULL,
    sealed BYTEA NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    lease_until TIMESTAMPTZ,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    sent_at TIMESTAMPTZ
);
CREATE INDEX outbox_due_idx ON outbox (status, next_attempt_at);
CREATE INDEX outbox_tenant_id_idx ON outbox (tenant_id, id);

CREATE TABLE message_templates (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    kind TEXT NOT NULL,
    locale TEXT NOT NULL,
    subject TEXT NOT NULL,
    html TEXT NOT NULL,
    text TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT message_templates_pkey PRIMARY KEY (tenant_id, kind, locale)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON one_time_secrets, outbox, message_templates TO gatehouse_app;

ALTER TABLE one_time_secrets ENABLE ROW LEVEL SECURITY;
ALTER TABLE one_time_secrets FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON one_time_secrets
    USING (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system')
    WITH CHECK (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system');
ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON outbox
    USING (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system')
    WITH CHECK (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system');
ALTER TABLE message_templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE message_templates FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON message_templates
    USING (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system')
    WITH CHECK (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system');
