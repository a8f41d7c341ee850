-- The successor of a spent refresh token, sealed under the master key, so a concurrent
-- refresh within the tenant's grace window gets the same successor. Cleared at the
-- session's next rotation.
ALTER TABLE refresh_tokens ADD COLUMN successor_sealed BYTEA;
