-- Organizations inside a tenant (nested up to depth 4), their members (one role each),
-- custom roles, invitations, and sessions scoped to an organization.

CREATE TABLE organizations (
    id TEXT NOT NULL CONSTRAINT organizations_pkey PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    logo_url TEXT,
    metadata JSONB NOT NULL,
    parent_id TEXT REFERENCES organizations (id),
    depth BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT organizations_tenant_id_slug_key UNIQUE (tenant_id, slug)
);
CREATE INDEX organizations_parent ON organizations (tenant_id, parent_id);

CREATE TABLE org_roles (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    permissions JSONB NOT NULL,
    CONSTRAINT org_roles_pkey PRIMARY KEY (tenant_id, key)
);

CREATE TABLE org_members (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT org_members_pkey PRIMARY KEY (org_id, user_id)
);
CREATE INDEX org_members_user ON org_members (tenant_id, user_id);

CREATE TABLE invitations (
    id TEXT NOT NULL CONSTRAINT invitations_pkey PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    invited_by TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    accepted_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    CONSTRAINT invitations_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX invitations_org ON invitations (tenant_id, org_id);

ALTER TABLE sessions ADD COLUMN org_id TEXT REFERENCES organizations (id) ON DELETE CASCADE;

GRANT SELECT, INSERT, UPDATE, DELETE ON organizations, org_roles, org_members, invitations TO gatehouse_app;

ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE organizations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON organizations
    USING (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system')
    WITH CHECK (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system');
ALTER TABLE org_roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE org_roles FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON org_roles
    USING (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system')
    WITH CHECK (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system');
ALTER TABLE org_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE org_members FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON org_members
    USING (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system')
    WITH CHECK (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system');
ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invitations
    USING (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system')
    WITH CHECK (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system');
