-- Operator accounts (people running Gatehouse) and their sessions. Not tenant-owned:
-- only the system scope reaches them.

CREATE TABLE operators (
    id TEXT NOT NULL CONSTRAINT operators_pkey PRIMARY KEY,
    email TEXT NOT NULL,
    email_normalized TEXT NOT NULL CONSTRAINT operators_email_key UNIQUE,
    name TEXT,
    role TEXT NOT NULL,
    tenant_scope JSONB,
    password_hash TEXT NOT NULL,
    totp_sealed BYTEA,
    totp_last_step BIGINT,
    disabled BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    last_login_at TIMESTAMPTZ
);

CREATE TABLE operator_sessions (
    id TEXT NOT NULL CONSTRAINT operator_sessions_pkey PRIMARY KEY,
    operator_id TEXT NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL CONSTRAINT operator_sessions_token_hash_key UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX operator_sessions_operator ON operator_sessions (operator_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON operators, operator_sessions TO gatehouse_app;
