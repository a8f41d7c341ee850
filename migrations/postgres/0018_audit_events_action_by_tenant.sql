-- A tenant's administrators filter its audit log by action ("every failed sign-in").
-- The action index ordered each action's events by id across all tenants, and the
-- planner, taking tenants and actions for independent, would walk it for a tenant's
-- page: through every other tenant's events of that action first (a day of credential
-- stuffing against one tenant is a million failed sign-ins). Keyed by action, then
-- tenant, then id, the index answers a tenant's page of an action exactly; for one
-- action across all tenants (operators), Postgres sorts a rare action's events or walks
-- the log in id order for a common one, as its statistics say.
--
-- The audit log is the largest table and every sign-in and refresh writes to it; this
-- build holds those writes back until it ends. On a large log, build the index first
-- without blocking them, then migrate (IF NOT EXISTS then finds it):
--   CREATE INDEX CONCURRENTLY audit_events_action_tenant_idx ON audit_events (action, tenant_id, id);
-- (The migration cannot do that itself: a concurrent build waits for every older
-- transaction, among them another replica's migrator waiting for this one's lock.)
CREATE INDEX IF NOT EXISTS audit_events_action_tenant_idx ON audit_events (action, tenant_id, id);
DROP INDEX audit_events_action_idx;
