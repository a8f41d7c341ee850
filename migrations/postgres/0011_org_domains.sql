-- Verified domains of organizations, and what they do for users with an email there.

ALTER TABLE organizations ADD COLUMN domain_join TEXT NOT NULL DEFAULT 'off';
ALTER TABLE organizations ADD COLUMN domain_join_role TEXT NOT NULL DEFAULT 'member';

CREATE TABLE org_domains (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    domain TEXT NOT NULL,
    verification_token TEXT NOT NULL,
    verified_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT org_domains_pkey PRIMARY KEY (org_id, domain)
);
-- One organization per verified domain in a tenant.
CREATE UNIQUE INDEX org_domains_verified_key ON org_domains (tenant_id, domain) WHERE verified_at IS NOT NULL;

GRANT SELECT, INSERT, UPDATE, DELETE ON org_domains TO gatehouse_app;

ALTER TABLE org_domains ENABLE ROW LEVEL SECURITY;
ALTER TABLE org_domains FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON org_domains
    USING (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system')
    WITH CHECK (tenant_id = current_setting('gatehouse.tenant_id', true) OR current_setting('gatehouse.scope', true) = 'system');
