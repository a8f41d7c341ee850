-- Sessions and refresh tokens reach their tenant through their parent row, not through
-- a key of their own to `tenants`.
--
-- A foreign key makes every insert lock the referenced row FOR KEY SHARE until commit.
-- Sign-ins and refreshes insert a session or a refresh token at thousands per second
-- in one tenant, and the key to `tenants` made all of them share a lock on that one
-- row; Postgres records a lock shared by concurrent transactions as a MultiXact, so
-- the refresh path created one MultiXact per rotation (40,000 in ten seconds at 32
-- concurrent chains), each listing the transactions holding the lock. MultiXact IDs
-- and members are finite: at 4,000 rotations a second the default freeze age of 400
-- million is reached in about a day, and then anti-wraparound vacuums are forced.
--
-- The composite keys below keep, and tighten, what the old keys guaranteed: a session's
-- user exists *in the session's tenant*, and a refresh token's session exists in the
-- token's tenant (before, each key was checked on its own, so the tenants could
-- differ); the parents' own keys to `tenants` still hold. The rows they lock are the
-- user signing in and the session being refreshed, which the same statement has
-- already updated, so the check takes no new lock at all.
CREATE UNIQUE INDEX users_tenant_id_id_key ON users (tenant_id, id);
DROP INDEX users_tenant_id_idx;
CREATE UNIQUE INDEX sessions_tenant_id_id_key ON sessions (tenant_id, id);

ALTER TABLE sessions
    DROP CONSTRAINT sessions_tenant_id_fkey,
    DROP CONSTRAINT sessions_user_id_fkey,
    ADD CONSTRAINT sessions_user_fkey FOREIGN KEY (tenant_id, user_id)
        REFERENCES users (tenant_id, id) ON DELETE CASCADE;

ALTER TABLE refresh_tokens
    DROP CONSTRAINT refresh_tokens_tenant_id_fkey,
    DROP CONSTRAINT refresh_tokens_session_id_fkey,
    ADD CONSTRAINT refresh_tokens_session_fkey FOREIGN KEY (tenant_id, session_id)
        REFERENCES sessions (tenant_id, id) ON DELETE CASCADE;
