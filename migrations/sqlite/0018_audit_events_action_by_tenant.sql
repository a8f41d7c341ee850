-- A tenant's administrators filter its audit log by action ("every failed sign-in"):
-- keyed by action, then tenant, then id, this index answers a tenant's page of an action
-- exactly (the action index alone orders each action's events across all tenants).
-- SQLite keeps the action index too: without statistics it cannot tell a rare action
-- from a common one, and that index gives one action across all tenants in id order
-- without a sort. (Postgres, which can, drops it.)
CREATE INDEX IF NOT EXISTS audit_events_action_tenant_idx ON audit_events (action, tenant_id, id);
