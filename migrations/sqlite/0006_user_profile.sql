-- Profile fields and metadata of users; usernames are unique per tenant when set.
ALTER TABLE users ADD COLUMN username TEXT;
ALTER TABLE users ADD COLUMN phone TEXT;
ALTER TABLE users ADD COLUMN picture TEXT;
ALTER TABLE users ADD COLUMN locale TEXT;
ALTER TABLE users ADD COLUMN public_metadata TEXT NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN private_metadata TEXT NOT NULL DEFAULT '{}';
CREATE UNIQUE INDEX users_tenant_id_username_key ON users (tenant_id, username);
