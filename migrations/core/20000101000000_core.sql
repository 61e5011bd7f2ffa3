-- pgkit core: the bookkeeping tables of every module, and uuid7() for the modules' ids.
-- Names are unqualified: pgkit runs every migration with search_path set to the target
-- schema (pgkit by default, --schema to change) followed by public, and creates that schema
-- when it is missing. Built-in versions start in 2000 so that any module of yours sorts
-- after the ones it builds on.

-- migrate:up
CREATE TABLE schema_migration (
  module     text        NOT NULL,
  version    text        NOT NULL CHECK (version ~ '^[0-9]{14}$'),
  name       text        NOT NULL DEFAULT '',
  checksum   text        NOT NULL DEFAULT '',
  applied_at timestamptz NOT NULL DEFAULT now(),
  duration   interval    NOT NULL DEFAULT '0 seconds',
  PRIMARY KEY (module, version)
);

CREATE TABLE module_version (
  module     text        PRIMARY KEY,
  version    text        NOT NULL CHECK (version ~ '^[0-9]{14}$'),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- A time-ordered UUID (RFC 9562 version 7): 48 bits of Unix time in milliseconds, then the
-- random bits of gen_random_uuid() (built in since PostgreSQL 13) with the version nibble
-- turned from 4 into 7 by setting its two low bits (bits 52 and 53 of the bytea).
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
