-- Postgres sorts users' normalised emails in code point order from this migration on,
-- so that an email prefix is a range of the (tenant_id, email_normalized) key. SQLite's
-- default collation, BINARY, already is that order: nothing to change.
SELECT 1;
