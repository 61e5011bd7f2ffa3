-- pgkit queue: background jobs. One row per job in queue_job; a job is `available` (waiting
-- for its run_at), `running` (claimed by a worker, which refreshes heartbeat_at), then
-- `completed`, `discarded` (failed max_attempts times, or ran out of time too often) or
-- `cancelled`. Workers claim due jobs with FOR UPDATE SKIP LOCKED, so no two claim the same
-- job and none waits for another. Every failure is appended to `errors` (a JSON array of
-- {"attempt", "at", "error"}), which a discarded job keeps.
--
-- A unique key holds while its window lasts: `queued` until the job is claimed, `active` until
-- it ends, `period` until unique_until. The store clears the key when the window closes, so
-- the partial unique index below only ever holds live keys.

-- migrate:up
-- pgkit:lint-ignore prefer-bigint-over-int priority and attempt counts are bounded by CHECKs and the store's ranges, never keys
CREATE TABLE queue_job (
  id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  queue         text        NOT NULL CHECK (queue <> '' AND octet_length(queue) <= 128),
  payload       bytea       NOT NULL DEFAULT '',
  state         text        NOT NULL DEFAULT 'available'
                CHECK (state IN ('available', 'running', 'completed', 'discarded', 'cancelled')),
  priority      integer     NOT NULL DEFAULT 0,
  run_at        timestamptz NOT NULL DEFAULT now(),
  attempt       integer     NOT NULL DEFAULT 0,
  max_attempts  integer     NOT NULL DEFAULT 20 CHECK (max_attempts >= 1),
  timeout_ms    bigint      NOT NULL DEFAULT 300000 CHECK (timeout_ms > 0),
  unique_key    text,
  unique_window text        CHECK (unique_window IN ('queued', 'active', 'period')),
  unique_until  timestamptz,
  heartbeat_at  timestamptz,
  worker        text,
  errors        jsonb       NOT NULL DEFAULT '[]',
  created_at    timestamptz NOT NULL DEFAULT now(),
  finished_at   timestamptz
) WITH (fillfactor = 80);
-- The claim walks this index in the order jobs run: priority (lower first), then due time.
CREATE INDEX queue_job_claim_idx ON queue_job (queue, priority, run_at, id)
  WHERE state = 'available';
-- The rescue of jobs whose worker stopped sending heartbeats.
CREATE INDEX queue_job_running_idx ON queue_job (heartbeat_at) WHERE state = 'running';
-- queue-prune: finished jobs by age.
CREATE INDEX queue_job_finished_idx ON queue_job (finished_at)
  WHERE state IN ('completed', 'discarded', 'cancelled');
CREATE UNIQUE INDEX queue_job_unique_idx ON queue_job (queue, unique_key)
  WHERE unique_key IS NOT NULL;

-- migrate:down
DROP TABLE queue_job;
