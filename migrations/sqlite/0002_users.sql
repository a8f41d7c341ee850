-- Users of a tenant. Emails are unique per tenant by their normalised form.

CREATE TABLE users (
    id TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    email TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    email_verified INTEGER NOT NULL,
    name TEXT,
    status TEXT NOT NULL,
    password_hash TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_login_at INTEGER
) STRICT;
CREATE UNIQUE INDEX users_tenant_id_email_normalized_key ON users (tenant_id, email_normalized);
CREATE INDEX users_tenant_id_idx ON users (tenant_id, id);
