-- Foundation: tenants, management credentials, the audit log.
-- Same tables, columns and constraint names as migrations/postgres. Times are INTEGER
-- microseconds since the Unix epoch (exact comparisons); JSON is TEXT. Unique
-- constraints are named indexes so their names match Postgres.

CREATE TABLE tenants (
    id TEXT NOT NULL PRIMARY KEY,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    settings TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
) STRICT;
CREATE UNIQUE INDEX tenants_slug_key ON tenants (slug);

CREATE TABLE secret_keys (
    id TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    display_prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    expires_at INTEGER,
    revoked_at INTEGER
) STRICT;
CREATE UNIQUE INDEX secret_keys_secret_hash_key ON secret_keys (secret_hash);
CREATE INDEX secret_keys_tenant_id_idx ON secret_keys (tenant_id, id);

CREATE TABLE admin_tokens (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    display_prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    tenant_scope TEXT,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
) STRICT;
CREATE UNIQUE INDEX admin_tokens_secret_hash_key ON admin_tokens (secret_hash);

CREATE TABLE audit_events (
    id TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT,
    actor_type TEXT NOT NULL,
    actor_id TEXT,
    action TEXT NOT NULL,
    target_type TEXT,
    target_id TEXT,
    ip TEXT,
    user_agent TEXT,
    request_id TEXT,
    data TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX audit_events_tenant_id_idx ON audit_events (tenant_id, id);
CREATE INDEX audit_events_action_idx ON audit_events (action, id);
CREATE INDEX audit_events_actor_id_idx ON audit_events (actor_id, id);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
