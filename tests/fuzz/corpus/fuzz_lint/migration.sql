-- migrate:up transaction:false
CREATE INDEX CONCURRENTLY b ON orders (a);
-- pgkit:lint-ignore ban-drop-table old
DROP TABLE old;
SET lock_timeout = 0;
ALTER TABLE big ALTER COLUMN a TYPE text;
-- migrate:down
DROP INDEX b;
