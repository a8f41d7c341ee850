-- Profile fields and metadata of users; usernames are unique per tenant when set.
ALTER TABLE users ADD COLUMN username TEXT;
ALTER TABLE users ADD COLUMN phone TEXT;
ALTER TABLE users ADD COLUMN picture TEXT;
ALTER TABLE users ADD COLUMN locale TEXT;
ALTER TABLE users ADD COLUMN public_metadata JSONB NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE users ADD COLUMN private_metadata JSONB NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE users ADD CONSTRAINT users_tenant_id_username_key UNIQUE (tenant_id, username);
