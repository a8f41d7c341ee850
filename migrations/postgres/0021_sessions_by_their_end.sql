-- Sessions that ended (expired, or were revoked) are deleted a while later, with their
-- refresh tokens, by a periodic sweep; these indexes find them without reading every
-- session. A refresh updates only `last_seen_at`, so its update stays HOT on Postgres.
CREATE INDEX IF NOT EXISTS sessions_expires_at_idx ON sessions (expires_at);
CREATE INDEX IF NOT EXISTS sessions_revoked_at_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
