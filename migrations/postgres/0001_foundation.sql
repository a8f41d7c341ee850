-- Foundation: tenants, management credentials, the audit log.
-- Constraint names follow Postgres defaults ({table}_{column}_key, {table}_pkey); the
-- SQLite set uses the same names so both stores report identical conflicts.

-- The role the application runs as (SET ROLE after connecting). It owns nothing, so
-- row-level security applies to it.
DO $$ BEGIN
    CREATE ROLE gatehouse_app NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

DO $$ BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO gatehouse_app', current_schema());
END $$;

CREATE TABLE tenants (
    id TEXT NOT NULL CONSTRAINT tenants_pkey PRIMARY KEY,
    slug TEXT NOT NULL CONSTRAINT tenants_slug_key UNIQUE,
    name TEXT NOT NULL,
    settings JSONB NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    deleted_at TIMESTAMPTZ
);

CREATE TABLE secret_keys (
    id TEXT NOT NULL CONSTRAINT secret_keys_pkey PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    display_prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL CONSTRAINT secret_keys_secret_hash_key UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX secret_keys_tenant_id_idx ON secret_keys (tenant_id, id);

CREATE TABLE admin_tokens (
    id TEXT NOT NULL CONSTRAINT admin_tokens_pkey PRIMARY KEY,
    name TEXT NOT NULL,
    display_prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL CONSTRAINT admin_tokens_secret_hash_key UNIQUE,
    tenant_scope JSONB,
    created_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);

CREATE TABLE audit_events (
    id TEXT NOT NULL CONSTRAINT audit_events_pkey PRIMARY KEY,
    tenant_id TEXT,
    actor_type TEXT NOT NULL,
    actor_id TEXT,
    action TEXT NOT NULL,
    target_type TEXT,
    target_id TEXT,
    ip TEXT,
    user_agent TEXT,
    request_id TEXT,
    data JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX audit_events_tenant_id_idx ON audit_events (tenant_id, id);
CREATE INDEX audit_events_action_idx ON audit_events (action, id);
CREATE INDEX audit_events_actor_id_idx ON audit_events (actor_id, id);

-- The audit log is append-only, for the owner too.
CREATE FUNCTION audit_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();

GRANT SELECT, INSERT, UPDATE ON tenants, secret_keys, admin_tokens TO gatehouse_app;
GRANT SELECT, INSERT ON audit_events TO gatehouse_app;

-- Row-level security on tenant-owned tables: a transaction sees only the tenant named by
-- `SET LOCAL gatehouse.tenant_id`, unless it declared system scope (cross-tenant
-- operator reads, credential lookups by hash).
ALTER TABLE secret_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE secret_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON secret_keys
    USING (tenant_id = current_setting('gatehouse.tenant_id', true)
           OR current_setting('gatehouse.scope', true) = 'system')
    WITH CHECK (tenant_id = current_setting('gatehouse.tenant_id', true)
                OR current_setting('gatehouse.scope', true) = 'system');

ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_events
    USING (tenant_id = current_setting('gatehouse.tenant_id', true)
           OR current_setting('gatehouse.scope', true) = 'system')
    WITH CHECK (tenant_id = current_setting('gatehouse.tenant_id', true)
                OR current_setting('gatehouse.scope', true) = 'system');
