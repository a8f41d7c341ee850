-- When each key started signing, so scheduled rotation can tell when the active key is
-- due, and re-check it under the rotation lock (several replicas rotate once).
ALTER TABLE signing_keys ADD COLUMN activated_at TIMESTAMPTZ;
UPDATE signing_keys SET activated_at = created_at WHERE status <> 'next';
