-- Organizations inside a tenant (nested up to depth 4), their members (one role each),
-- custom roles, invitations, and sessions scoped to an organization.

CREATE TABLE organizations (
    id TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    logo_url TEXT,
    metadata TEXT NOT NULL,
    parent_id TEXT REFERENCES organizations (id),
    depth INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX organizations_tenant_id_slug_key ON organizations (tenant_id, slug);
CREATE INDEX organizations_parent ON organizations (tenant_id, parent_id);

CREATE TABLE org_roles (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    permissions TEXT NOT NULL,
    PRIMARY KEY (tenant_id, key)
) STRICT;

CREATE TABLE org_members (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, user_id)
) STRICT;
CREATE INDEX org_members_user ON org_members (tenant_id, user_id);

CREATE TABLE invitations (
    id TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    invited_by TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    accepted_at INTEGER,
    revoked_at INTEGER
) STRICT;
CREATE UNIQUE INDEX invitations_token_hash_key ON invitations (token_hash);
CREATE INDEX invitations_org ON invitations (tenant_id, org_id);

ALTER TABLE sessions ADD COLUMN org_id TEXT REFERENCES organizations (id) ON DELETE CASCADE;
