-- Operator API tokens carry a role (existing tokens keep full rights as owners).
ALTER TABLE admin_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'owner';
