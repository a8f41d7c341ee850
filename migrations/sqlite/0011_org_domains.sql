-- Verified domains of organizations, and what they do for users with an email there.

ALTER TABLE organizations ADD COLUMN domain_join TEXT NOT NULL DEFAULT 'off';
ALTER TABLE organizations ADD COLUMN domain_join_role TEXT NOT NULL DEFAULT 'member';

CREATE TABLE org_domains (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    domain TEXT NOT NULL,
    verification_token TEXT NOT NULL,
    verified_at INTEGER,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, domain)
) STRICT;
-- One organization per verified domain in a tenant.
CREATE UNIQUE INDEX org_domains_verified_key ON org_domains (tenant_id, domain) WHERE verified_at IS NOT NULL;
