-- Second factors: a TOTP secret per user (sealed under the master key) with the last
-- time step accepted, and single-use recovery codes (keyed hashes only).

CREATE TABLE mfa_totp (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed BLOB NOT NULL,
    enabled_at INTEGER,
    last_step INTEGER,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
) STRICT;

CREATE TABLE recovery_codes (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at INTEGER,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id, code_hash)
) STRICT;
