-- One-time secrets (links, codes, challenges) are deleted a week after they expire by
-- the periodic sweep (ADR 23); this index finds them without reading the live ones.
CREATE INDEX IF NOT EXISTS one_time_secrets_expires_at_idx ON one_time_secrets (expires_at);
