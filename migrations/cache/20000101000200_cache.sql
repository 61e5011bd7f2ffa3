-- pgkit cache: an UNLOGGED table (fast writes, emptied by a crash; a cache can lose data)
-- keyed by resource type and key, with optional expiry.

-- migrate:up
CREATE UNLOGGED TABLE cache (
  resource_type text        NOT NULL,
  key           text        NOT NULL,
  value         bytea       NOT NULL DEFAULT '',
  expires_at    timestamptz NULL,
  PRIMARY KEY (resource_type, key)
);
CREATE INDEX cache_expires_at_idx ON cache (expires_at) WHERE expires_at IS NOT NULL;

-- migrate:down
DROP TABLE cache;
