-- Token signing keys per tenant, sessions, and single-use refresh tokens (hashes only).

CREATE TABLE signing_keys (
    id TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    alg TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    private_sealed BLOB NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    publish_until INTEGER
) STRICT;
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (tenant_id) WHERE status = 'active';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (tenant_id) WHERE status = 'next';

CREATE TABLE sessions (
    id TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    auth_time INTEGER NOT NULL,
    amr TEXT NOT NULL,
    ip TEXT,
    user_agent TEXT,
    revoked_at INTEGER,
    revoke_reason TEXT
) STRICT;
CREATE INDEX sessions_user_id_idx ON sessions (tenant_id, user_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
) STRICT;
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);
