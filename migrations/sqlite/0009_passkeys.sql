-- Passkeys: WebAuthn credentials of users. A credential id is unique across every
-- tenant, so one authenticator credential can never be registered twice anywhere.

CREATE TABLE passkeys (
    id TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id BLOB NOT NULL,
    name TEXT NOT NULL,
    credential TEXT NOT NULL,
    sign_count INTEGER NOT NULL,
    aaguid TEXT,
    attestation_format TEXT NOT NULL,
    backup_eligible INTEGER NOT NULL,
    backup_state INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
) STRICT;

CREATE UNIQUE INDEX passkeys_credential_id_key ON passkeys (credential_id);
CREATE INDEX passkeys_tenant_user ON passkeys (tenant_id, user_id);
