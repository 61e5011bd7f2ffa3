-- pgkit core: uuid7() ids that sort in the order they were made, also within one millisecond
-- (RFC 9562, section 6.2, method 1: a fixed-length dedicated counter). The 42 bits after the
-- version and variant bits (rand_a's 12 and the top 30 of rand_b) come from one sequence, so
-- two ids of the same millisecond are ordered by the order nextval() gave out their counters,
-- across every session; the last 32 bits stay random. The counter is not reset each
-- millisecond (the RFC allows that): it wraps after 2^42 ids, far beyond what any one
-- millisecond sees. The sequence is found through the search_path the migration ran with
-- (SET search_path FROM CURRENT), whatever the caller's search_path is. nextval() makes the
-- function parallel unsafe: a parallel worker cannot take a counter.

-- migrate:up
CREATE SEQUENCE uuid7_counter AS bigint MINVALUE 0 MAXVALUE 4398046511103 START 0 CYCLE;

CREATE OR REPLACE FUNCTION uuid7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path FROM CURRENT
AS $$
  SELECT encode(
    substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
      || int2send((28672 | (counter >> 30))::int2)
      || substring(int8send(2147483648 | (counter & 1073741823)) FROM 5)
      || substring(uuid_send(gen_random_uuid()) FROM 13),
    'hex')::uuid
  FROM (SELECT nextval('uuid7_counter') AS counter) AS next
$$;

-- migrate:down
CREATE OR REPLACE FUNCTION uuid7() RETURNS uuid
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
ALTER FUNCTION uuid7() RESET ALL;
DROP SEQUENCE uuid7_counter;
