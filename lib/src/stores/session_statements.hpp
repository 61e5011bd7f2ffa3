#pragma once
// The session store's statements and the purge's; `{S}` stands for the quoted schema. Times
// are bigint milliseconds ($3 of generate is the ttl).

#include "wire/wire.hpp"

namespace pgkit::detail::session_sql {

inline constexpr statement_text k_generate{
    "generate",
    "INSERT INTO {S}.session (key_hash, data, expires_at) "
    "VALUES ($1, $2, now() + $3::bigint * interval '1 millisecond')"};
inline constexpr statement_text k_get{
    "get",
    "SELECT CASE WHEN expires_at > now() THEN data END, expires_at > now(), "
    "((extract(epoch FROM expires_at) - extract(epoch FROM now())) * 1000)::bigint, version "
    "FROM {S}.session WHERE key_hash = $1"};
// SKIP LOCKED: a row held by a writer or by purge is left alone rather than waited for.
inline constexpr statement_text k_remove_expired{
    "remove_expired",
    "DELETE FROM {S}.session WHERE key_hash IN (SELECT key_hash FROM {S}.session "
    "WHERE key_hash = $1 AND expires_at <= now() FOR UPDATE SKIP LOCKED)"};
// A new expiry within the touch interval ($4) of the current one keeps the current one: then no
// indexed column changes, and PostgreSQL can update the row in place (HOT) without new entries
// in the primary key and expiry indexes, which makes a write per request cheap.
// $5 is the version compare_and_set expects, NULL for set.
inline constexpr statement_text k_set{
    "set",
    "UPDATE {S}.session SET data = $2, expires_at = CASE "
    "WHEN now() + $3::bigint * interval '1 millisecond' > "
    "expires_at - $4::bigint * interval '1 millisecond' "
    "AND now() + $3::bigint * interval '1 millisecond' < "
    "expires_at + $4::bigint * interval '1 millisecond' "
    "THEN expires_at ELSE now() + $3::bigint * interval '1 millisecond' END, "
    "version = version + 1, updated_at = now() WHERE key_hash = $1 AND expires_at > now() "
    "AND ($5::bigint IS NULL OR version = $5) RETURNING version"};
// The same on a table distributed by Citus, which refuses CASE around now() in a distributed
// UPDATE: the new expiry is always written (no in-place update spared). $4 is not used.
inline constexpr statement_text k_set_distributed{
    "set_dist",
    "UPDATE {S}.session SET data = $2, expires_at = now() + $3::bigint * interval '1 millisecond', "
    "version = version + 1, updated_at = now() WHERE key_hash = $1 AND expires_at > now() "
    "AND ($5::bigint IS NULL OR version = $5) AND $4::bigint IS NOT DISTINCT FROM $4 "
    "RETURNING version"};
inline constexpr statement_text k_is_live{
    "is_live", "SELECT 1 FROM {S}.session WHERE key_hash = $1 AND expires_at > now()"};
// One round trip: whether the session is live, and whether the expiry moved. The update writes
// only when the new expiry is at least the touch interval ($3) past the current one, compared
// as a difference of two timestamps (IMMUTABLE): Citus refuses `expires_at + interval` (STABLE,
// with a column) in a distributed UPDATE.
inline constexpr statement_text k_touch{
    "touch",
    "WITH live AS (SELECT 1 FROM {S}.session WHERE key_hash = $1 AND expires_at > now()), "
    "moved AS (UPDATE {S}.session SET expires_at = now() + $2::bigint * interval '1 millisecond', "
    "updated_at = now() WHERE key_hash = $1 AND expires_at > now() AND "
    "now() + $2::bigint * interval '1 millisecond' - expires_at >= "
    "$3::bigint * interval '1 millisecond' RETURNING 1) "
    "SELECT (SELECT count(*) FROM live), (SELECT count(*) FROM moved)"};
inline constexpr statement_text k_clear{"clear", "DELETE FROM {S}.session WHERE key_hash = $1"};

// The purge: one batch (at most $1 rows) and one count per table. A batch walks the expiry
// index (ORDER BY) instead of rescanning the heap from its start.
inline constexpr statement_text k_purge_session{
    "purge",
    "DELETE FROM {S}.session WHERE key_hash IN (SELECT key_hash FROM {S}.session "
    "WHERE expires_at <= now() ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)"};
inline constexpr statement_text k_count_session{
    "count_expired", "SELECT count(*) FROM {S}.session WHERE expires_at <= now()"};
inline constexpr statement_text k_purge_auth_session{
    "purge_auth",
    "DELETE FROM {S}.auth_session WHERE id IN (SELECT id FROM {S}.auth_session "
    "WHERE expires_at <= now() ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)"};
inline constexpr statement_text k_count_auth_session{
    "count_auth", "SELECT count(*) FROM {S}.auth_session WHERE expires_at <= now()"};
inline constexpr statement_text k_purge_one_time_token{
    "purge_token",
    "DELETE FROM {S}.auth_one_time_token WHERE id IN (SELECT id FROM {S}.auth_one_time_token "
    "WHERE expires_at <= now() OR used_at IS NOT NULL OR deleted_at IS NOT NULL "
    "LIMIT $1 FOR UPDATE SKIP LOCKED)"};
inline constexpr statement_text k_count_one_time_token{
    "count_token",
    "SELECT count(*) FROM {S}.auth_one_time_token "
    "WHERE expires_at <= now() OR used_at IS NOT NULL OR deleted_at IS NOT NULL"};

}  // namespace pgkit::detail::session_sql
