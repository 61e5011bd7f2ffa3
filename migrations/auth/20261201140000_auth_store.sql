-- pgkit auth, second step: what the auth store (pgkit::auth_store) needs. Session tokens are
-- looked up by their SHA-256 digest, so auth_session gains token_hash (NULL for sessions
-- created before this step: they have no token and cannot be used, their users sign in again).
-- Searching live users by email or phone number prefix walks these byte-ordered indexes
-- whatever the database's collation (docs/auth.md shows the plan).

-- migrate:up
ALTER TABLE auth_session ADD COLUMN token_hash bytea NULL UNIQUE;
CREATE INDEX auth_user_live_email_search_idx ON auth_user ((lower(email) COLLATE "C"))
  WHERE deleted_at IS NULL;
CREATE INDEX auth_user_live_phone_number_search_idx ON auth_user ((phone_number COLLATE "C"))
  WHERE deleted_at IS NULL;

-- migrate:down
DROP INDEX auth_user_live_phone_number_search_idx;
DROP INDEX auth_user_live_email_search_idx;
ALTER TABLE auth_session DROP COLUMN token_hash;
