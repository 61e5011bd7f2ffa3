#pragma once
// The auth store's statements; `{S}` stands for the quoted schema. Timestamps travel as
// microseconds since the Unix epoch (exact, and independent of DateStyle and TimeZone). The
// select lists name the tables `auth_user` and `auth_session`, so statements that read through
// them give those names to their tables or CTEs. update_user and list_users are built per
// combination of the fields they are given (auth.cpp).

#include "wire/wire.hpp"

// clang-format off
#define PGKIT_AUTH_EPOCH_US(column) "(extract(epoch FROM " column ") * 1000000)::bigint"
#define PGKIT_AUTH_USER_FIELDS                                                         \
  "auth_user.id::text, auth_user.role, auth_user.email, auth_user.phone_number, "      \
  PGKIT_AUTH_EPOCH_US("auth_user.email_confirmed_at") ", "                             \
  PGKIT_AUTH_EPOCH_US("auth_user.phone_number_confirmed_at") ", "                      \
  PGKIT_AUTH_EPOCH_US("auth_user.last_sign_in") ", "                                   \
  PGKIT_AUTH_EPOCH_US("auth_user.banned_until") ", "                                   \
  "auth_user.app_metadata::text, auth_user.user_metadata::text, "                      \
  PGKIT_AUTH_EPOCH_US("auth_user.created_at") ", "                                     \
  PGKIT_AUTH_EPOCH_US("auth_user.updated_at")
#define PGKIT_AUTH_SESSION_FIELDS                                                      \
  "auth_session.id::text, auth_session.user_id::text, abbrev(auth_session.ip), "       \
  "auth_session.user_agent, " PGKIT_AUTH_EPOCH_US("auth_session.created_at") ", "      \
  PGKIT_AUTH_EPOCH_US("auth_session.expires_at")
// $n milliseconds (a pgkit::ttl) from now on the database clock.
#define PGKIT_AUTH_EXPIRY(n) "now() + $" n "::bigint * interval '1 millisecond'"
// clang-format on

namespace pgkit::detail::auth_sql {

/// Columns of the user select list, and of the session one.
inline constexpr int k_user_columns = 12;
inline constexpr int k_session_columns = 6;

inline constexpr const char* k_user_fields = PGKIT_AUTH_USER_FIELDS;
inline constexpr const char* k_session_fields = PGKIT_AUTH_SESSION_FIELDS;

inline constexpr statement_text k_create_user{
    "create_user",
    "INSERT INTO {S}.auth_user AS auth_user (email, phone_number, password_hash, role, "
    "app_metadata, user_metadata) VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb) "
    "RETURNING " PGKIT_AUTH_USER_FIELDS};
inline constexpr statement_text k_get_user{
    "get_user", "SELECT " PGKIT_AUTH_USER_FIELDS
                " FROM {S}.auth_user WHERE id = $1::uuid AND deleted_at IS NULL"};
inline constexpr statement_text k_get_user_by_email{
    "get_user_by_email", "SELECT " PGKIT_AUTH_USER_FIELDS
                         " FROM {S}.auth_user WHERE lower(email) = lower($1) AND "
                         "deleted_at IS NULL"};
// One statement: the user is gone, their sessions with them, their tokens retired.
inline constexpr statement_text k_delete_user{
    "delete_user",
    "WITH gone AS (UPDATE {S}.auth_user SET deleted_at = now(), updated_at = now() "
    "WHERE id = $1::uuid AND deleted_at IS NULL RETURNING id), "
    "ended AS (DELETE FROM {S}.auth_session WHERE user_id IN (SELECT id FROM gone)), "
    "retired AS (UPDATE {S}.auth_one_time_token SET deleted_at = now() "
    "WHERE user_id IN (SELECT id FROM gone) AND deleted_at IS NULL) "
    "SELECT count(*) FROM gone"};
inline constexpr statement_text k_set_password{
    "set_password",
    "UPDATE {S}.auth_user SET password_hash = $2, updated_at = now() "
    "WHERE id = $1::uuid AND deleted_at IS NULL"};
// The user, their password hash and whether they are banned now.
inline constexpr statement_text k_password_of{
    "password_of", "SELECT " PGKIT_AUTH_USER_FIELDS
                   ", auth_user.password_hash, coalesce(auth_user.banned_until > now(), false) "
                   "FROM {S}.auth_user WHERE lower(email) = lower($1) AND deleted_at IS NULL"};
// Only when nobody changed the password in between.
inline constexpr statement_text k_rehash{
    "rehash",
    "UPDATE {S}.auth_user SET password_hash = $2 "
    "WHERE id = $1::uuid AND password_hash = $3 AND deleted_at IS NULL"};
// The user's last_sign_in and a new session, in one statement; no row when the user is gone.
inline constexpr statement_text k_sign_in{
    "sign_in",
    "WITH auth_user AS (UPDATE {S}.auth_user SET last_sign_in = now() "
    "WHERE id = $1::uuid AND deleted_at IS NULL RETURNING *), "
    "auth_session AS (INSERT INTO {S}.auth_session (user_id, token_hash, ip, user_agent, "
    "expires_at) SELECT id, $2, $3::inet, $4, " PGKIT_AUTH_EXPIRY(
        "5") " FROM auth_user RETURNING *) "
             "SELECT " PGKIT_AUTH_USER_FIELDS ", " PGKIT_AUTH_SESSION_FIELDS
             " FROM auth_user, auth_session"};
inline constexpr statement_text k_create_session{
    "create_session",
    "INSERT INTO {S}.auth_session (user_id, token_hash, ip, user_agent, expires_at) "
    "SELECT id, $2, $3::inet, $4, " PGKIT_AUTH_EXPIRY(
        "5") " FROM {S}.auth_user WHERE id = $1::uuid AND deleted_at IS NULL RETURNING id"};
// The session while its user is live and not banned, and whether it is still live itself.
inline constexpr statement_text k_get_session{
    "get_session",
    "SELECT " PGKIT_AUTH_SESSION_FIELDS
    ", auth_session.expires_at IS NULL OR auth_session.expires_at > now() "
    "FROM {S}.auth_session JOIN {S}.auth_user ON auth_user.id = auth_session.user_id "
    "WHERE auth_session.token_hash = $1 AND auth_user.deleted_at IS NULL "
    "AND (auth_user.banned_until IS NULL OR auth_user.banned_until <= now())"};
// SKIP LOCKED: a row that someone else holds is left for purge; the reader never waits.
inline constexpr statement_text k_remove_expired_session{
    "remove_expired_session",
    "DELETE FROM {S}.auth_session WHERE id IN (SELECT id FROM {S}.auth_session "
    "WHERE token_hash = $1 AND expires_at <= now() FOR UPDATE SKIP LOCKED)"};
inline constexpr statement_text k_delete_session{
    "delete_session", "DELETE FROM {S}.auth_session WHERE token_hash = $1"};
inline constexpr statement_text k_delete_user_sessions{
    "delete_user_sessions", "DELETE FROM {S}.auth_session WHERE user_id = $1::uuid"};
// Locks the live user's row for the transaction that creates a token: concurrent creations
// for one user take turns, and each one's next statement (a new snapshot in READ COMMITTED)
// sees the token the one before committed. FOR NO KEY UPDATE leaves the foreign key checks of
// other inserts alone.
inline constexpr statement_text k_lock_user{
    "lock_user",
    "SELECT 1 FROM {S}.auth_user WHERE id = $1::uuid AND deleted_at IS NULL FOR NO KEY UPDATE"};
// Retires the user's live token of the type, then inserts the new one: the insert waits for
// `retired` (it counts its rows), so the old row has left the one-live-token index by then.
// Run after k_lock_user in one transaction, so that no concurrent creation inserts in between.
inline constexpr statement_text k_create_token{
    "create_token",
    "WITH retired AS (UPDATE {S}.auth_one_time_token SET deleted_at = now() "
    "WHERE user_id = $1::uuid AND token_type = $2 AND deleted_at IS NULL AND used_at IS NULL "
    "RETURNING 1) "
    "INSERT INTO {S}.auth_one_time_token (user_id, token_type, token_hash, expires_at) "
    "SELECT id, $2, $3, " PGKIT_AUTH_EXPIRY(
        "4") " FROM {S}.auth_user WHERE id = $1::uuid AND deleted_at IS NULL "
             "AND (SELECT count(*) FROM retired) >= 0 RETURNING id"};
// One statement: of concurrent uses, the first marks the row used; the others re-check the
// condition on the row it left and find nothing.
inline constexpr statement_text k_use_token{
    "use_token",
    "UPDATE {S}.auth_one_time_token AS t SET used_at = now() FROM {S}.auth_user AS u "
    "WHERE t.token_hash = $1 AND t.token_type = $2 AND t.used_at IS NULL "
    "AND t.deleted_at IS NULL AND t.expires_at > now() AND u.id = t.user_id "
    "AND u.deleted_at IS NULL RETURNING t.user_id::text"};
// Whether the module's second step (token_hash) is applied.
inline constexpr statement_text k_check{
    "check",
    "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass($1) "
    "AND attname = 'token_hash' AND NOT attisdropped"};

}  // namespace pgkit::detail::auth_sql

#undef PGKIT_AUTH_EXPIRY
#undef PGKIT_AUTH_SESSION_FIELDS
#undef PGKIT_AUTH_USER_FIELDS
#undef PGKIT_AUTH_EPOCH_US
