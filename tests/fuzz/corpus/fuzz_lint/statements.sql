CREATE TABLE t (id serial PRIMARY KEY, name varchar(20), c char(3), ts timestamp, s smallint);
CREATE INDEX t_name ON t (name);
-- pgkit:lint-ignore require-concurrent-index-creation the table is tiny
CREATE INDEX orders_a ON orders (a);
CREATE INDEX orders_b ON orders (b);
ALTER TABLE orders ADD COLUMN x int DEFAULT random();
ALTER TABLE orders
  ADD COLUMN y bigint NOT NULL,
  ADD CONSTRAINT fk FOREIGN KEY (y) REFERENCES t (id),
  ADD CONSTRAINT ck CHECK (y > 0) NOT VALID,
  ADD CONSTRAINT uq UNIQUE (y),
  ALTER COLUMN z TYPE text,
  ALTER COLUMN w SET NOT NULL,
  ALTER COLUMN v DROP NOT NULL,
  DROP COLUMN u;
ALTER TABLE orders RENAME COLUMN a TO b;
ALTER TABLE orders RENAME TO orders2;
DROP TABLE old_stuff;
DROP INDEX idx;
DROP DATABASE prod;
TRUNCATE a, b CASCADE;
CREATE DOMAIN pos AS int CHECK (VALUE > 0);
ALTER DOMAIN pos ADD CONSTRAINT c CHECK (VALUE < 10);
BEGIN;
CREATE INDEX CONCURRENTLY i ON orders (c);
COMMIT;
CREATE FOO BAR;
SELECT 1 FROM t WHERE x = ANY($1) MERGE;
