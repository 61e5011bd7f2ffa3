-- pgkit auth: users, their sessions and one-time tokens (Pevensie's model). Users are soft
-- deleted: uniqueness of email and phone number holds among live users only, with partial
-- unique indexes so that PostgreSQL 13 works (no NULLS NOT DISTINCT).

-- migrate:up
CREATE TABLE auth_user (
  id                        uuid        PRIMARY KEY DEFAULT uuid7(),
  created_at                timestamptz NOT NULL DEFAULT now(),
  updated_at                timestamptz NOT NULL DEFAULT now(),
  deleted_at                timestamptz NULL,
  role                      text        NOT NULL DEFAULT 'user',
  email                     text        NULL CHECK (email <> ''),
  password_hash             text        NULL,
  email_confirmed_at        timestamptz NULL,
  phone_number              text        NULL CHECK (phone_number <> ''),
  phone_number_confirmed_at timestamptz NULL,
  last_sign_in              timestamptz NULL,
  app_metadata              jsonb       NOT NULL DEFAULT '{}',
  user_metadata             jsonb       NOT NULL DEFAULT '{}',
  banned_until              timestamptz NULL
);
CREATE UNIQUE INDEX auth_user_live_email_key ON auth_user (lower(email))
  WHERE deleted_at IS NULL AND email IS NOT NULL;
CREATE UNIQUE INDEX auth_user_live_phone_number_key ON auth_user (phone_number)
  WHERE deleted_at IS NULL AND phone_number IS NOT NULL;
CREATE INDEX auth_user_created_at_idx ON auth_user (created_at);

CREATE TABLE auth_session (
  id         uuid        PRIMARY KEY DEFAULT uuid7(),
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NULL,
  user_id    uuid        NOT NULL REFERENCES auth_user (id) ON DELETE CASCADE,
  ip         inet        NULL,
  user_agent text        NULL
);
CREATE INDEX auth_session_user_id_idx ON auth_session (user_id);
CREATE INDEX auth_session_expires_at_idx ON auth_session (expires_at)
  WHERE expires_at IS NOT NULL;

CREATE TABLE auth_one_time_token (
  id         uuid        PRIMARY KEY DEFAULT uuid7(),
  created_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz NULL,
  expires_at timestamptz NOT NULL DEFAULT now() + interval '1 hour',
  used_at    timestamptz NULL,
  token_type text        NOT NULL CHECK (token_type IN ('password_reset', 'email_confirmation',
                                                        'phone_number_confirmation', 'magic_link')),
  user_id    uuid        NOT NULL REFERENCES auth_user (id) ON DELETE CASCADE,
  token_hash bytea       NOT NULL UNIQUE
);
-- At most one live (neither used nor deleted) token per user and type.
CREATE UNIQUE INDEX auth_one_time_token_live_key ON auth_one_time_token (user_id, token_type)
  WHERE deleted_at IS NULL AND used_at IS NULL;
CREATE INDEX auth_one_time_token_expires_at_idx ON auth_one_time_token (expires_at);

-- migrate:down
DROP TABLE auth_one_time_token;
DROP TABLE auth_session;
DROP TABLE auth_user;
