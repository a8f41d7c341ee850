-- Users of a tenant. Emails are unique per tenant by their normalised form.

CREATE TABLE users (
    id TEXT NOT NULL CONSTRAINT users_pkey PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    email TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    email_verified BOOLEAN NOT NULL,
    name TEXT,
    status TEXT NOT NULL,
    password_hash TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    last_login_at TIMESTAMPTZ,
    CONSTRAINT users_tenant_id_email_normalized_key UNIQUE (tenant_id, email_normalized)
);
CREATE INDEX users_tenant_id_idx ON users (tenant_id, id);

GRANT SELECT, INSERT, UPDATE, DELETE ON users TO gatehouse_app;

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON users
    USING (tenant_id = current_setting('gatehouse.tenant_id', true)
           OR current_setting('gatehouse.scope', true) = 'system')
    WITH CHECK (tenant_id = current_setting('gatehouse.tenant_id', true)
                OR current_setting('gatehouse.scope', true) = 'system');
