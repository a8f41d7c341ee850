-- A tenant's organizations are listed in id order from a cursor. With only the primary
-- key in id order, a page of a small tenant read the other tenants' organizations
-- between its own.
CREATE INDEX IF NOT EXISTS organizations_tenant_id_idx ON organizations (tenant_id, id);
