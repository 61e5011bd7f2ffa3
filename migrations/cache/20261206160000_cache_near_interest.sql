-- pgkit cache, near tier on demand: the invalidation triggers do their work only while some
-- process has a near tier on this database, and they fire in every replication role.
--
-- Interest: each near tier's listener holds the session-level advisory lock (1885826932, 1) in
-- SHARE mode on its connection, taken before its LISTEN. A statement on the cache table first
-- tries that lock in EXCLUSIVE mode for the rest of its transaction: when it gets it, nobody
-- listens and the statement announces nothing. Held until the writer's transaction ends, the
-- lock makes a listener that starts meanwhile wait for that write to commit or roll back
-- before it serves, so it never fills its tier with a value that an unannounced write is
-- about to replace. Two writers that overlap see the lock taken by each other and announce
-- their changes: that costs them the old price and is never wrong.
--
-- ENABLE ALWAYS: the triggers also fire under session_replication_role = replica (pg_restore,
-- logical replication, ETL tools), where ordinary triggers are skipped. Only an explicit
-- ALTER TABLE ... DISABLE TRIGGER turns them off; a store with a near tier refuses to start
-- while one is disabled.

-- migrate:up
DROP TRIGGER cache_announce_update ON cache;
DROP TRIGGER cache_announce_delete ON cache;
DROP TRIGGER cache_announce_truncate ON cache;
CREATE TRIGGER cache_announce_update AFTER UPDATE ON cache
  REFERENCING OLD TABLE AS cache_old NEW TABLE AS cache_new
  FOR EACH STATEMENT WHEN (NOT pg_try_advisory_xact_lock(1885826932, 1))
  EXECUTE FUNCTION cache_announce_change();
CREATE TRIGGER cache_announce_delete AFTER DELETE ON cache
  REFERENCING OLD TABLE AS cache_old
  FOR EACH STATEMENT WHEN (NOT pg_try_advisory_xact_lock(1885826932, 1))
  EXECUTE FUNCTION cache_announce_change();
CREATE TRIGGER cache_announce_truncate AFTER TRUNCATE ON cache
  FOR EACH STATEMENT WHEN (NOT pg_try_advisory_xact_lock(1885826932, 1))
  EXECUTE FUNCTION cache_announce_change();
ALTER TABLE cache ENABLE ALWAYS TRIGGER cache_announce_update;
ALTER TABLE cache ENABLE ALWAYS TRIGGER cache_announce_delete;
ALTER TABLE cache ENABLE ALWAYS TRIGGER cache_announce_truncate;

-- migrate:down
DROP TRIGGER cache_announce_update ON cache;
DROP TRIGGER cache_announce_delete ON cache;
DROP TRIGGER cache_announce_truncate ON cache;
CREATE TRIGGER cache_announce_update AFTER UPDATE ON cache
  REFERENCING OLD TABLE AS cache_old NEW TABLE AS cache_new
  FOR EACH STATEMENT EXECUTE FUNCTION cache_announce_change();
CREATE TRIGGER cache_announce_delete AFTER DELETE ON cache
  REFERENCING OLD TABLE AS cache_old
  FOR EACH STATEMENT EXECUTE FUNCTION cache_announce_change();
CREATE TRIGGER cache_announce_truncate AFTER TRUNCATE ON cache
  FOR EACH STATEMENT EXECUTE FUNCTION cache_announce_change();
