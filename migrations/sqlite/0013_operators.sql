-- Operator accounts (people running Gatehouse) and their sessions.

CREATE TABLE operators (
    id TEXT NOT NULL PRIMARY KEY,
    email TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    name TEXT,
    role TEXT NOT NULL,
    tenant_scope TEXT,
    password_hash TEXT NOT NULL,
    totp_sealed BLOB,
    totp_last_step INTEGER,
    disabled INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    last_login_at INTEGER
) STRICT;
CREATE UNIQUE INDEX operators_email_key ON operators (email_normalized);

CREATE TABLE operator_sessions (
    id TEXT NOT NULL PRIMARY KEY,
    operator_id TEXT NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
CREATE UNIQUE INDEX operator_sessions_token_hash_key ON operator_sessions (token_hash);
CREATE INDEX operator_sessions_operator ON operator_sessions (operator_id);
