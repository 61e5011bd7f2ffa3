-- pgkit session: web sessions keyed by the SHA-256 digest of the session key (the key itself
-- is never stored), expiring after one week unless told otherwise. `version` counts writes of
-- the data, for the store's compare-and-set.

-- migrate:up
CREATE TABLE session (
  key_hash   bytea       PRIMARY KEY CHECK (octet_length(key_hash) = 32),
  data       bytea       NOT NULL DEFAULT '',
  expires_at timestamptz NOT NULL DEFAULT now() + interval '7 days',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  version    bigint      NOT NULL DEFAULT 1
);
CREATE INDEX session_expires_at_idx ON session (expires_at);

-- migrate:down
DROP TABLE session;
