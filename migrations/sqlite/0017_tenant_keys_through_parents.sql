-- The unique keys that Postgres's composite foreign keys of sessions and refresh
-- tokens point at (see migrations/postgres/0017): the same on both backends. SQLite
-- takes no row locks, so its tables keep their original foreign keys (changing them
-- would mean rebuilding both tables for nothing).
CREATE UNIQUE INDEX users_tenant_id_id_key ON users (tenant_id, id);
DROP INDEX users_tenant_id_idx;
CREATE UNIQUE INDEX sessions_tenant_id_id_key ON sessions (tenant_id, id);
