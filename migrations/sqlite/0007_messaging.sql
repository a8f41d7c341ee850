-- Verified phone numbers, one-time secrets (link tokens and codes, hashes only), the
-- durable message outbox (bodies sealed under the master key) and tenant templates.

ALTER TABLE users ADD COLUMN phone_verified INTEGER NOT NULL DEFAULT 0;
-- A verified number signs in one account only.
CREATE UNIQUE INDEX users_tenant_id_verified_phone_key ON users (tenant_id, phone) WHERE phone_verified;

CREATE TABLE one_time_secrets (
    id TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    purpose TEXT NOT NULL,
    target TEXT NOT NULL,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT,
    code_hash TEXT,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    data TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    consumed_at INTEGER
) STRICT;
CREATE UNIQUE INDEX one_time_secrets_token_hash_key ON one_time_secrets (token_hash);
CREATE INDEX one_time_secrets_target_idx ON one_time_secrets (tenant_id, purpose, target);

CREATE TABLE outbox (
    id TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    kind TEXT NOT NULL,
    sealed BLOB NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_until INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    sent_at INTEGER
) STRICT;
CREATE INDEX outbox_due_idx ON outbox (status, next_attempt_at);
CREATE INDEX outbox_tenant_id_idx ON outbox (tenant_id, id);

CREATE TABLE message_templates (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    kind TEXT NOT NULL,
    locale TEXT NOT NULL,
    subject TEXT NOT NULL,
    html TEXT NOT NULL,
    text TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, kind, locale)
) STRICT;
