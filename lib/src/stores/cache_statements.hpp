#pragma once
// The cache store's statements; `{S}` stands for the quoted schema. An expired entry reads as
// NULL (value is NOT NULL in the table), so a read needs no second column.

#include "wire/wire.hpp"

namespace pgkit::detail::cache_sql {

inline constexpr statement_text k_get{
    "get",
    "SELECT CASE WHEN expires_at <= now() THEN NULL ELSE value END "
    "FROM {S}.cache WHERE resource_type = $1 AND key = $2"};
// Deletes what a reader found expired, skipping rows another session holds, so that the reader
// never waits; the row stays for the next reader or gc.
inline constexpr statement_text k_purge{
    "purge",
    "DELETE FROM {S}.cache WHERE ctid = ANY(ARRAY(SELECT ctid FROM {S}.cache WHERE resource_type = "
    "$1 AND "
    "key = ANY($2::text[]) AND expires_at <= now() FOR UPDATE SKIP LOCKED))"};
// The same on a table distributed by Citus, where a ctid means nothing across shards and FOR
// UPDATE works within one shard only: it may wait for a writer that holds the row (one short
// statement).
inline constexpr statement_text k_purge_distributed{
    "purge_dist",
    "DELETE FROM {S}.cache WHERE resource_type = $1 AND key = ANY($2::text[]) "
    "AND expires_at <= now()"};
// One index probe per key asked (the OFFSET 0 keeps the planner from turning the lateral join
// into a hash join over a sequential scan, which it prefers for unnamed statements on small
// tables); each row carries the 1-based position of its key.
inline constexpr statement_text k_get_many{
    "get_many",
    "SELECT k.position, CASE WHEN c.expires_at <= now() THEN NULL ELSE c.value END "
    "FROM unnest($2::text[]) WITH ORDINALITY AS k(key, position) "
    "CROSS JOIN LATERAL (SELECT expires_at, value FROM {S}.cache "
    "WHERE resource_type = $1 AND key = k.key OFFSET 0) AS c"};
// The same two on a table distributed by Citus, which cannot push a LATERAL subquery with
// OFFSET down to the shards: a join that it sends to the shards holding the keys asked.
inline constexpr statement_text k_get_many_distributed{
    "get_many_dist",
    "SELECT k.position, CASE WHEN c.expires_at <= now() THEN NULL ELSE c.value END "
    "FROM unnest($2::text[]) WITH ORDINALITY AS k(key, position) "
    "JOIN (SELECT key, expires_at, value FROM {S}.cache "
    "WHERE resource_type = $1 AND key = ANY($2::text[])) AS c ON c.key = k.key"};
inline constexpr statement_text k_get_many_near_distributed{
    "get_many_near_dist",
    "SELECT k.position, CASE WHEN c.expires_at <= now() THEN NULL ELSE c.value END, "
    "floor(extract(epoch FROM c.expires_at - now()) * 1000)::bigint "
    "FROM unnest($2::text[]) WITH ORDINALITY AS k(key, position) "
    "JOIN (SELECT key, expires_at, value FROM {S}.cache "
    "WHERE resource_type = $1 AND key = ANY($2::text[])) AS c ON c.key = k.key"};
// The near tier's reads also return the entry's remaining lifetime in whole milliseconds,
// rounded down (NULL: it never expires), so that its copy expires no later than the row.
inline constexpr statement_text k_get_near{
    "get_near",
    "SELECT CASE WHEN expires_at <= now() THEN NULL ELSE value END, "
    "floor(extract(epoch FROM expires_at - now()) * 1000)::bigint "
    "FROM {S}.cache WHERE resource_type = $1 AND key = $2"};
inline constexpr statement_text k_get_many_near{
    "get_many_near",
    "SELECT k.position, CASE WHEN c.expires_at <= now() THEN NULL ELSE c.value END, "
    "floor(extract(epoch FROM c.expires_at - now()) * 1000)::bigint "
    "FROM unnest($2::text[]) WITH ORDINALITY AS k(key, position) "
    "CROSS JOIN LATERAL (SELECT expires_at, value FROM {S}.cache "
    "WHERE resource_type = $1 AND key = k.key OFFSET 0) AS c"};
inline constexpr statement_text k_set{
    "set",
    "INSERT INTO {S}.cache AS c (resource_type, key, value, expires_at) "
    "VALUES ($1, $2, $3, now() + $4::bigint * interval '1 millisecond') "
    "ON CONFLICT (resource_type, key) DO UPDATE "
    "SET value = excluded.value, expires_at = excluded.expires_at"};
// All values travel in one binary parameter ($5); $3 and $4 say where each one starts (1-based)
// and how long it is.
inline constexpr statement_text k_set_many{
    "set_many",
    "INSERT INTO {S}.cache AS c (resource_type, key, value, expires_at) "
    "SELECT $1, e.key, substring($5::bytea FROM e.start FOR e.length), "
    "now() + $6::bigint * interval '1 millisecond' "
    "FROM unnest($2::text[], $3::int[], $4::int[]) AS e(key, start, length) "
    "ON CONFLICT (resource_type, key) DO UPDATE "
    "SET value = excluded.value, expires_at = excluded.expires_at"};
inline constexpr statement_text k_remove{
    "remove", "DELETE FROM {S}.cache WHERE resource_type = $1 AND key = $2"};
inline constexpr statement_text k_clear{"clear",
                                        "DELETE FROM {S}.cache WHERE ctid = ANY(ARRAY(SELECT ctid "
                                        "FROM {S}.cache WHERE resource_type = $1 "
                                        "LIMIT $2))"};
// clear's batch for a table distributed by Citus, run on each shard (per_shard_statement in
// stores/citus.hpp): $1 the batch size, $2 the resource type.
inline constexpr statement_text k_clear_shard{
    "clear",
    "DELETE FROM {S}.cache WHERE ctid = ANY(ARRAY(SELECT ctid FROM {S}.cache "
    "WHERE resource_type = $2 LIMIT $1))"};
inline constexpr statement_text k_expire{
    "expire",
    "UPDATE {S}.cache SET expires_at = now() + $3::bigint * interval '1 millisecond' "
    "WHERE resource_type = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > now())"};
// Writes only when the entry would otherwise expire sooner than asked; counts the live entry
// either way.
inline constexpr statement_text k_touch{
    "touch",
    "WITH live AS (SELECT resource_type, key, expires_at FROM {S}.cache "
    "WHERE resource_type = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > now())), "
    "extended AS (UPDATE {S}.cache AS c SET expires_at = now() + $3::bigint * interval '1 "
    "millisecond' "
    "FROM live WHERE c.resource_type = live.resource_type AND c.key = live.key "
    "AND live.expires_at < now() + $3::bigint * interval '1 millisecond' RETURNING 1) "
    "SELECT count(*) FROM live"};
// Oldest first, through the expires_at index: without the ORDER BY the planner may pick a
// sequential scan, and each batch would then read again every row that the batches before it
// deleted (quadratic in the number of batches).
inline constexpr statement_text k_gc_batch{"gc",
                                           "DELETE FROM {S}.cache WHERE ctid = ANY(ARRAY(SELECT "
                                           "ctid FROM {S}.cache WHERE expires_at <= now() "
                                           "ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED))"};
inline constexpr statement_text k_gc_batch_of_type{
    "gc_type",
    "DELETE FROM {S}.cache WHERE ctid = ANY(ARRAY(SELECT ctid FROM {S}.cache WHERE expires_at <= "
    "now() "
    "AND resource_type = $2 ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED))"};
// The same batches for a gc that runs alone (expiry_sweep's delete_batch_alone): no locking
// pass, so each row is visited once by the index scan and once by the delete.
inline constexpr statement_text k_gc_batch_alone{
    "gc_alone",
    "DELETE FROM {S}.cache WHERE ctid = ANY(ARRAY(SELECT ctid FROM {S}.cache "
    "WHERE expires_at <= now() ORDER BY expires_at LIMIT $1))"};
inline constexpr statement_text k_gc_batch_of_type_alone{
    "gc_type_alone",
    "DELETE FROM {S}.cache WHERE ctid = ANY(ARRAY(SELECT ctid FROM {S}.cache "
    "WHERE expires_at <= now() AND resource_type = $2 ORDER BY expires_at LIMIT $1))"};
inline constexpr statement_text k_count_expired{
    "count_expired", "SELECT count(*) FROM {S}.cache WHERE expires_at <= now()"};
inline constexpr statement_text k_count_expired_of_type{
    "count_expired_type",
    "SELECT count(*) FROM {S}.cache WHERE expires_at <= now() AND resource_type = $1"};

// The near-tier notification of a write, sent by the store itself where the table has no
// triggers to send it (Citus); like the trigger, only while some near tier listens (the interest
// lock of migrations/cache/*_cache_near_interest.sql, held by every listener).
inline constexpr statement_text k_announce{
    "announce",
    "SELECT pg_notify('pgkit_cache', $1) WHERE NOT pg_try_advisory_xact_lock(1885826932, 1)"};

}  // namespace pgkit::detail::cache_sql
