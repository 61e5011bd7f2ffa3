-- pgkit core: bookkeeping for every module, and uuid7() for the modules' ids.
-- Names are unqualified: pgkit runs every migration with search_path set to the target
-- schema (pgkit by default, --schema to change).

-- migrate:up
CREATE TABLE schema_migration (
  module      text        NOT NULL,
  version     text        NOT NULL CHECK (version ~ '^[0-9]{14}$'),
  name        text        NOT NULL,
  checksum    text        NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now(),
  duration_ms bigint      NOT NULL DEFAULT 0 CHECK (duration_ms >= 0),
  PRIMARY KEY (module, version)
);

CREATE TABLE module_version (
  module     text        PRIMARY KEY,
  version    text        NOT NULL CHECK (version ~ '^[0-9]{14}$'),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- A time-ordered UUID (RFC 9562 version 7): 48 bits of Unix time in milliseconds, then the
-- random bits of gen_random_uuid() (built in since PostgreSQL 13) with the version nibble
-- turned from 4 into 7 by setting its two low bits.
CREATE FUNCTION uuid7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
  SELECT encode(
    set_bit(
      set_bit(
        overlay(uuid_send(gen_random_uuid())
                PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                FROM 1 FOR 6),
        52, 1),
      53, 1),
    'hex')::uuid
$$;

-- migrate:down
DROP FUNCTION uuid7();
DROP TABLE module_version;
DROP TABLE schema_migration;
