-- pgkit cache, near tier: after every statement that changes or removes live cache entries, one
-- notification on channel pgkit_cache tells every process's near tier what to drop. It is sent
-- by the server on commit only, whoever wrote (the store, plain SQL, another tool), so nothing
-- is announced twice and a rolled-back write announces nothing.
--
-- Payloads (always under the 8000-byte limit): "k SCHEMA D1 D2 ..." drops entries, where D is
-- the first 8 bytes, in hex, of SHA-256 over the resource type, a NUL byte and the key (UTF-8);
-- "t SCHEMA D1 ..." drops whole resource types (D over the resource type alone) when a
-- statement touched more than 400 entries; "a SCHEMA" drops everything (more than 400 resource
-- types, or TRUNCATE). Rows that had already expired are left out: no near tier can hold them.
-- An UPDATE that keeps the value and only lengthens the lifetime (touch) drops nothing either.

-- migrate:up
-- One SQL statement per call (each one costs a trip through SPI): the live rows' digests, up to
-- 401 of them; the resource-type and flush-all fallbacks are subqueries of the CASE, evaluated
-- only when reached.
CREATE FUNCTION cache_announce_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify('pgkit_cache', 'a ' || TG_TABLE_SCHEMA);
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM pg_notify('pgkit_cache', CASE
        WHEN batch.listed <= 400 THEN 'k ' || TG_TABLE_SCHEMA || ' ' || batch.digests
        ELSE (SELECT CASE WHEN count(*) <= 400
                          THEN 't ' || TG_TABLE_SCHEMA || ' ' || string_agg(t.d, ' ')
                          ELSE 'a ' || TG_TABLE_SCHEMA END
              FROM (SELECT DISTINCT substr(encode(sha256(convert_to(o.resource_type, 'UTF8')),
                                                  'hex'), 1, 16) AS d
                    FROM cache_old AS o LIMIT 401) AS t)
        END)
    FROM (SELECT count(*) AS listed, string_agg(live.d, ' ') AS digests FROM (
            SELECT substr(encode(sha256(convert_to(o.resource_type, 'UTF8') || '\x00'::bytea ||
                                        convert_to(o.key, 'UTF8')), 'hex'), 1, 16) AS d
            FROM cache_old AS o
            WHERE (o.expires_at IS NULL OR o.expires_at > now())
              AND NOT EXISTS (
                SELECT FROM cache_new AS n
                WHERE n.resource_type = o.resource_type AND n.key = o.key AND n.value = o.value
                  AND (n.expires_at IS NULL OR n.expires_at >= o.expires_at))
            LIMIT 401) AS live) AS batch
    WHERE batch.listed > 0;
  ELSE
    PERFORM pg_notify('pgkit_cache', CASE
        WHEN batch.listed <= 400 THEN 'k ' || TG_TABLE_SCHEMA || ' ' || batch.digests
        ELSE (SELECT CASE WHEN count(*) <= 400
                          THEN 't ' || TG_TABLE_SCHEMA || ' ' || string_agg(t.d, ' ')
                          ELSE 'a ' || TG_TABLE_SCHEMA END
              FROM (SELECT DISTINCT substr(encode(sha256(convert_to(o.resource_type, 'UTF8')),
                                                  'hex'), 1, 16) AS d
                    FROM cache_old AS o
                    WHERE o.expires_at IS NULL OR o.expires_at > now() LIMIT 401) AS t)
        END)
    FROM (SELECT count(*) AS listed, string_agg(live.d, ' ') AS digests FROM (
            SELECT substr(encode(sha256(convert_to(o.resource_type, 'UTF8') || '\x00'::bytea ||
                                        convert_to(o.key, 'UTF8')), 'hex'), 1, 16) AS d
            FROM cache_old AS o
            WHERE o.expires_at IS NULL OR o.expires_at > now()
            LIMIT 401) AS live) AS batch
    WHERE batch.listed > 0;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER cache_announce_update AFTER UPDATE ON cache
  REFERENCING OLD TABLE AS cache_old NEW TABLE AS cache_new
  FOR EACH STATEMENT EXECUTE FUNCTION cache_announce_change();
CREATE TRIGGER cache_announce_delete AFTER DELETE ON cache
  REFERENCING OLD TABLE AS cache_old
  FOR EACH STATEMENT EXECUTE FUNCTION cache_announce_change();
CREATE TRIGGER cache_announce_truncate AFTER TRUNCATE ON cache
  FOR EACH STATEMENT EXECUTE FUNCTION cache_announce_change();

-- migrate:down
DROP TRIGGER cache_announce_truncate ON cache;
DROP TRIGGER cache_announce_delete ON cache;
DROP TRIGGER cache_announce_update ON cache;
DROP FUNCTION cache_announce_change();
