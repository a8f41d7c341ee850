-- Search by email prefix is a range of the (tenant_id, email_normalized) key when the
-- column sorts in code point order: the "C" collation. Under a language's collation
-- (the database's default may be one) the strings starting with a prefix are not one
-- range, so the search walked every user of the tenant. Equality, and so uniqueness and
-- the sign-in lookup, are the same in both (both are deterministic). Postgres keeps the
-- rows and rebuilds the key, holding writes to users back until it is done.
ALTER TABLE users ALTER COLUMN email_normalized TYPE TEXT COLLATE "C";
