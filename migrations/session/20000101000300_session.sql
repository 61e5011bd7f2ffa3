-- pgkit session: web sessions keyed by the SHA-256 digest of the session key (the key itself
-- is never stored), expiring after one week unless told otherwise.

-- migrate:up
CREATE TABLE session (
  key_hash   bytea       PRIMARY KEY CHECK (octet_length(key_hash) = 32),
  data       bytea       NOT NULL DEFAULT '',
  expires_at timestamptz NOT NULL DEFAULT now() + interval '7 days',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX session_expires_at_idx ON session (expires_at);

-- migrate:down
DROP TABLE session;
