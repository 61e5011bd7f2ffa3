#pragma once
// The queue store's statements; `{S}` stands for the quoted schema. Durations are bigint
// milliseconds, times come back as bigint milliseconds since the Unix epoch. Every statement
// that moves a claimed job checks that the claim (its attempt number) is still the job's, so a
// worker that lost a job to the rescue cannot overwrite what the new claimant did.
//
// Those statements find the job by id and test that it is running as `heartbeat_at IS NOT NULL`
// (the same rows: a claim sets it, and every way out of `running` clears it), not as `state =
// 'running'`: that condition lets the planner walk the partial index of running jobs instead of
// the primary key, and under churn it chooses so, estimating a dozen running jobs from the last
// ANALYZE while the index holds a hundred thousand dead entries VACUUM has not removed yet
// (measured: completions of 10 jobs grew from 1 to 75 ms within a minute of bench/queue).
// The claim and those statements are also planned each time (planning::each_time): the table
// starts empty, and a generic plan made then (a sequential scan, measured at 180 ms for 10
// jobs once the table held 146 000 rows) stays until autovacuum's next ANALYZE.

#include "wire/wire.hpp"

namespace pgkit::detail::queue_sql {

// What ends an attempt that failed ($F: the error text's parameter): the job is due again, or
// discarded once it has used max_attempts, with the failure appended to its history. The unique
// key goes with the window it was taken for.
#define PGKIT_QUEUE_FAILED(error_text, retry_ms)                                              \
  "errors = errors || jsonb_build_array(jsonb_build_object('attempt', attempt, 'at', now(), " \
  "'error', " error_text                                                                      \
  ")), "                                                                                      \
  "state = CASE WHEN attempt >= max_attempts THEN 'discarded' ELSE 'available' END, "         \
  "run_at = CASE WHEN attempt >= max_attempts THEN run_at "                                   \
  "ELSE now() + " retry_ms                                                                    \
  " * interval '1 millisecond' END, "                                                         \
  "finished_at = CASE WHEN attempt >= max_attempts THEN now() END, "                          \
  "unique_key = CASE WHEN attempt < max_attempts OR unique_window = 'period' "                \
  "THEN unique_key END, heartbeat_at = NULL, worker = NULL "

// $1 queue, $2 payload, $3 delay, $4 run_at (NULL: now + delay), $5 priority, $6 max_attempts,
// $7 timeout, $8 unique key, $9 its window, $10 the period, $11 the schema (for the wake-up).
// A taken unique key inserts nothing and returns no row.
inline constexpr statement_text k_enqueue{
    "enqueue",
    "WITH job AS (INSERT INTO {S}.queue_job (queue, payload, run_at, priority, max_attempts, "
    "timeout_ms, unique_key, unique_window, unique_until) VALUES ($1, $2, "
    "coalesce(to_timestamp($4::bigint / 1000.0), now() + $3::bigint * interval '1 millisecond'), "
    "$5::bigint, $6::bigint, $7::bigint, $8::text, $9::text, CASE WHEN $9::text = 'period' "
    "THEN now() + $10::bigint * interval '1 millisecond' END) "
    "ON CONFLICT (queue, unique_key) WHERE unique_key IS NOT NULL DO NOTHING RETURNING id, queue) "
    "SELECT id, pg_notify('pgkit_queue', $11::text || ' ' || queue) FROM job"};
// The holder of a unique key; a `period` key whose period is over is let go first (by
// enqueue, before it tries again).
inline constexpr statement_text k_unique_holder{
    "unique_holder", "SELECT id FROM {S}.queue_job WHERE queue = $1 AND unique_key = $2"};
inline constexpr statement_text k_unique_expire{
    "unique_expire",
    "UPDATE {S}.queue_job SET unique_key = NULL WHERE queue = $1 AND unique_key = $2 "
    "AND unique_window = 'period' AND unique_until <= now()"};
// enqueue_many: parallel arrays ($1 queues, $2 payloads in bytea's hex form, $3 delays, $4 run
// ats with -1 for none, $5 priorities, $6 max attempts, $7 timeouts), $8 the schema.
inline constexpr statement_text k_enqueue_many{
    "enqueue_many",
    "WITH job AS (INSERT INTO {S}.queue_job (queue, payload, run_at, priority, max_attempts, "
    "timeout_ms) SELECT q, p, CASE WHEN r < 0 THEN now() + d * interval '1 millisecond' "
    "ELSE to_timestamp(r / 1000.0) END, pr, ma, t FROM unnest($1::text[], $2::bytea[], "
    "$3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[]) WITH ORDINALITY "
    "AS a(q, p, d, r, pr, ma, t, n) ORDER BY n RETURNING id, queue), "
    "woken AS (SELECT pg_notify('pgkit_queue', $8::text || ' ' || queue) "
    "FROM (SELECT DISTINCT queue FROM job) AS q) "
    "SELECT id, (SELECT count(*) FROM woken) FROM job ORDER BY id"};
// $1 queues, $2 limit, $3 worker, $4, $5 and $6 (parallel to $1) where each queue's walk
// starts, after the last job claimed from it (claim_cursor): its priority, due time (in
// microseconds since 2000-01-01 UTC, timestamptz's binary form, so it comes back exact) and id;
// NULL to start at the queue's first due job. One index walk per queue (a `queue = ANY(...)`
// condition would read every due job of the queues and sort them), then the best $2 of those.
// Returns each job's priority and due time after what the worker sees, for the cursor.
inline constexpr statement_text k_claim{
    "claim",
    "UPDATE {S}.queue_job AS j SET state = 'running', attempt = j.attempt + 1, "
    "heartbeat_at = now(), worker = $3, unique_key = CASE WHEN j.unique_window = 'queued' "
    "THEN NULL ELSE j.unique_key END FROM (SELECT c.id FROM unnest($1::text[], $4::bigint[], "
    "$5::bigint[], $6::bigint[]) AS q(name, priority, due_us, id), "
    "LATERAL (SELECT id, priority, run_at FROM {S}.queue_job WHERE state = 'available' "
    "AND queue = q.name AND run_at <= now() AND (priority, run_at, id) > "
    "(coalesce(q.priority, -2147483648)::integer, coalesce('2000-01-01 00:00:00+00'::timestamptz "
    "+ q.due_us * interval '1 microsecond', '-infinity'), coalesce(q.id, 0)) "
    "ORDER BY priority, run_at, id LIMIT $2::bigint FOR UPDATE SKIP LOCKED) AS c "
    "ORDER BY c.priority, c.run_at, c.id LIMIT $2::bigint) AS p "
    "WHERE j.id = p.id RETURNING j.id, j.queue, j.payload, j.attempt::bigint, "
    "j.max_attempts::bigint, j.timeout_ms, j.priority::bigint, j.run_at",
    planning::each_time};
// $1 id, $2 attempt.
inline constexpr statement_text k_complete{
    "complete",
    "UPDATE {S}.queue_job SET state = 'completed', finished_at = now(), heartbeat_at = NULL, "
    "unique_key = CASE WHEN unique_window = 'period' THEN unique_key END "
    "WHERE id = $1::bigint AND heartbeat_at IS NOT NULL AND attempt = $2::bigint",
    planning::each_time};
// $1 ids, $2 their attempts (parallel arrays): several completions in one statement.
inline constexpr statement_text k_complete_many{
    "complete_many",
    "UPDATE {S}.queue_job AS j SET state = 'completed', finished_at = now(), "
    "heartbeat_at = NULL, unique_key = CASE WHEN j.unique_window = 'period' THEN j.unique_key "
    "END FROM unnest($1::bigint[], $2::bigint[]) AS c(id, attempt) "
    "WHERE j.id = c.id AND j.heartbeat_at IS NOT NULL AND j.attempt = c.attempt",
    planning::each_time};
// $1 id, $2 attempt, $3 error, $4 retry delay.
inline constexpr statement_text k_fail{
    "fail", "UPDATE {S}.queue_job SET " PGKIT_QUEUE_FAILED(
                "$3::text", "$4::bigint") "WHERE id = $1::bigint AND heartbeat_at IS NOT NULL AND "
                                          "attempt = $2::bigint", planning::each_time};
// $1 ids, $2 worker: the attempt the claim counted is given back.
inline constexpr statement_text k_release{
    "release",
    "UPDATE {S}.queue_job SET state = 'available', attempt = attempt - 1, heartbeat_at = NULL, "
    "worker = NULL WHERE id = ANY($1::bigint[]) AND heartbeat_at IS NOT NULL AND worker = $2",
    planning::each_time};
inline constexpr statement_text k_heartbeat{
    "heartbeat",
    "UPDATE {S}.queue_job SET heartbeat_at = now() "
    "WHERE id = ANY($1::bigint[]) AND heartbeat_at IS NOT NULL AND worker = $2",
    planning::each_time};
inline constexpr statement_text k_rescue{
    "rescue",
    "UPDATE {S}.queue_job SET " PGKIT_QUEUE_FAILED(
        "'timed out: no heartbeat from ' || coalesce(worker, 'a worker') || ' for ' || "
        "timeout_ms || ' ms'",
        "0") "WHERE id IN (SELECT id FROM {S}.queue_job WHERE state = 'running' AND "
             "heartbeat_at < now() - timeout_ms * interval '1 millisecond' "
             "FOR UPDATE SKIP LOCKED)"};
inline constexpr statement_text k_cancel{
    "cancel",
    "UPDATE {S}.queue_job SET state = 'cancelled', finished_at = now(), heartbeat_at = NULL, "
    "unique_key = CASE WHEN unique_window = 'period' THEN unique_key END "
    "WHERE id = $1::bigint AND state IN ('available', 'running')"};
// $1 id or NULL, $2 queue or NULL, $3 the schema.
inline constexpr statement_text k_retry{
    "retry",
    "WITH job AS (UPDATE {S}.queue_job SET state = 'available', attempt = 0, run_at = now(), "
    "finished_at = NULL WHERE CASE WHEN $1::bigint IS NOT NULL "
    "THEN id = $1::bigint AND state IN ('discarded', 'cancelled') "
    "ELSE queue = $2::text AND state = 'discarded' END RETURNING queue), "
    "woken AS (SELECT pg_notify('pgkit_queue', $3::text || ' ' || queue) "
    "FROM (SELECT DISTINCT queue FROM job) AS q) "
    "SELECT (SELECT count(*) FROM job), (SELECT count(*) FROM woken)"};
// One row per recorded failure (one row with NULLs when there is none).
inline constexpr statement_text k_find{
    "find",
    "SELECT j.queue, j.payload, j.state, j.priority::bigint, j.attempt::bigint, "
    "j.max_attempts::bigint, (extract(epoch FROM j.run_at) * 1000)::bigint, "
    "(e.value ->> 'attempt')::bigint, "
    "(extract(epoch FROM (e.value ->> 'at')::timestamptz) * 1000)::bigint, e.value ->> 'error' "
    "FROM {S}.queue_job AS j LEFT JOIN LATERAL jsonb_array_elements(j.errors) "
    "WITH ORDINALITY AS e(value, n) ON true WHERE j.id = $1::bigint ORDER BY e.n"};
inline constexpr statement_text k_stats{
    "stats",
    "SELECT queue, state, count(*) FROM {S}.queue_job GROUP BY queue, state "
    "ORDER BY queue, state"};
// queue-prune: $1 the batch size, $2 (the count's $1) the retention.
inline constexpr statement_text k_prune{
    "prune",
    "DELETE FROM {S}.queue_job WHERE id = ANY(ARRAY(SELECT id FROM {S}.queue_job "
    "WHERE state IN ('completed', 'discarded', 'cancelled') "
    "AND finished_at <= now() - $2::bigint * interval '1 millisecond' "
    "ORDER BY finished_at LIMIT $1 FOR UPDATE SKIP LOCKED))"};
inline constexpr statement_text k_count_prunable{
    "count_prunable",
    "SELECT count(*) FROM {S}.queue_job WHERE state IN ('completed', 'discarded', 'cancelled') "
    "AND finished_at <= now() - $1::bigint * interval '1 millisecond'"};
#undef PGKIT_QUEUE_FAILED

}  // namespace pgkit::detail::queue_sql
