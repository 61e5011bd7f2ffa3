#pragma once
/// The auth store: users, their sessions and one-time tokens in the `auth` module's tables,
/// with libsodium's argon2id for passwords. docs/auth.md has the schema, the rules and the
/// measurements.

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pgkit/pool.hpp"
#include "pgkit/query.hpp"
#include "pgkit/store.hpp"

namespace pgkit {

/// A point in time as the database clock gave it, to the microsecond.
using timestamp = std::chrono::system_clock::time_point;

/// A live user as the store reads it. The password hash never leaves the database.
struct user {
  std::string id;  ///< UUIDv7, text form
  std::string role;
  std::optional<std::string> email, phone_number;
  std::optional<timestamp> email_confirmed_at, phone_number_confirmed_at, last_sign_in,
      banned_until;
  std::string app_metadata, user_metadata;  ///< JSON text
  timestamp created_at, updated_at;
};

/// What create_user() stores. The password is hashed (argon2id) and never stored as given.
struct new_user {
  std::optional<std::string> email, phone_number, password;
  std::string role = "user";
  std::string app_metadata = "{}", user_metadata = "{}";
};

/// What update_user() changes: only the fields that are set are written; an inner
/// std::nullopt writes NULL.
struct user_update {
  std::optional<std::optional<std::string>> email, phone_number;
  std::optional<std::string> role, app_metadata, user_metadata;
  std::optional<std::optional<timestamp>> banned_until;
};

/// What list_users() looks for. Each list holds LIKE patterns (`%` and `_` as in LIKE, `\`
/// escapes them); a user matches when any pattern of any list matches. Email patterns ignore
/// case. Empty lists everywhere: every live user.
struct user_search {
  std::vector<std::string> ids, emails, phone_numbers;
  std::size_t limit = 100;              ///< 1..1000
  std::optional<std::string> after_id;  ///< keyset pagination: only ids after this one
};

/// A live session as the store reads it. The token is never stored, only its digest.
struct auth_session {
  std::string id, user_id;
  std::optional<std::string> ip, user_agent;
  timestamp created_at;
  std::optional<timestamp> expires_at;
};

/// What a successful sign_in() returns: the user, the new session and its token.
struct signed_in {
  user who;
  auth_session session;
  std::string token;
};

/// What a one-time token is for; one live token per user and type.
enum class token_type { password_reset, email_confirmation, phone_number_confirmation, magic_link };

/// How an auth store behaves.
struct auth_options {
  std::string schema;                             ///< empty: the pool's schema, else pgkit
  ttl session_ttl = std::chrono::hours{24 * 30};  ///< default session lifetime
  ttl token_ttl = std::chrono::hours{1};          ///< default one-time token lifetime
  /// argon2id cost; 0: libsodium's INTERACTIVE limits (2 passes, 64 MiB).
  unsigned long long password_ops_limit = 0, password_mem_limit = 0;
  /// A pool on a streaming replica of the database, read first by get_session(); a miss or a
  /// failure there reads the primary. A replica lags: docs/scaling.md states what such a read
  /// may return. Empty: every read goes to the primary.
  std::shared_ptr<pool> replica;
};

/// Users, their sessions and one-time tokens on the `auth` module's tables. Every value is
/// bound as a parameter, every expiry follows the database clock, and only SHA-256 digests of
/// tokens reach the database. Thread-safe; non-copyable.
class auth_store {
 public:
  /// Creates a store on `pool` and computes the dummy password hash used for unknown emails.
  /// Throws usage_error for an unusable schema, non-positive ttls or password limits outside
  /// libsodium's range.
  explicit auth_store(std::shared_ptr<pool> pool, auth_options options = {});
  auth_store(const auth_store&) = delete;
  auth_store& operator=(const auth_store&) = delete;
  ~auth_store();

  /// Throws pgkit::error of kind undefined_object, hinting `pgkit apply auth`, unless the
  /// auth module (with its token_hash step) is applied in the store's schema.
  void check();

  /// Creates a user and returns it. Throws pgkit::error of kind unique_violation naming
  /// `email` or `phone number` when a live user has it, usage_error for empty values or
  /// metadata that is not JSON.
  user create_user(const new_user& u);
  /// Returns the live user with this id, or std::nullopt (unknown, malformed or deleted).
  std::optional<user> get_user(std::string_view id);
  /// Returns the live user with this email, compared case-insensitively, or std::nullopt.
  std::optional<user> get_user_by_email(std::string_view email);
  /// Writes the fields set in `changes` and returns the user, or std::nullopt when there is
  /// no live user with this id. Throws like create_user for taken or invalid values.
  std::optional<user> update_user(std::string_view id, const user_update& changes);
  /// Soft-deletes a live user; their sessions are deleted and their tokens stop working in
  /// the same statement. Returns false when there was no live user with this id.
  bool delete_user(std::string_view id);
  /// Returns live users matching `search`, ordered by id, at most `search.limit`. Never
  /// returns a deleted user. Throws usage_error for a limit outside 1..1000 or a malformed
  /// after_id.
  std::vector<user> list_users(const user_search& search);

  /// Sets a live user's password (hashed with argon2id). Throws usage_error for an empty
  /// password and pgkit::error of kind foreign_key_violation when there is no such live user.
  void set_password(std::string_view user_id, std::string_view password);
  /// Returns the live, unbanned user with this email when `password` is theirs, else
  /// std::nullopt after the same hashing work (no timing difference between an unknown email
  /// and a wrong password). Rehashes the password when the store's limits changed.
  std::optional<user> verify_password(std::string_view email, std::string_view password);

  /// verify_password, then a new session for the user (and last_sign_in set), or
  /// std::nullopt. Throws usage_error for an `ip` that is not an IP address.
  std::optional<signed_in> sign_in(std::string_view email, std::string_view password,
                                   std::optional<std::string> ip = {},
                                   std::optional<std::string> user_agent = {});
  /// Creates a session for a live user, expiring `lifetime` from now (default: session_ttl),
  /// and returns its token. Throws pgkit::error of kind foreign_key_violation when there is no
  /// such live user, usage_error for a non-positive lifetime or a malformed ip.
  std::string create_session(std::string_view user_id, std::optional<std::string> ip = {},
                             std::optional<std::string> user_agent = {},
                             std::optional<ttl> lifetime = {});
  /// Returns the session of `token` while it is live and its user is live and not banned;
  /// an expired session found here is deleted and reads as std::nullopt.
  std::optional<auth_session> get_session(std::string_view token);
  /// Deletes the session of `token`; returns whether there was one.
  bool delete_session(std::string_view token);
  /// Deletes every session of the user; returns how many there were.
  std::size_t delete_user_sessions(std::string_view user_id);

  /// Creates a one-time token of `type` for a live user, expiring `lifetime` from now
  /// (default: token_ttl), and returns it; the user's previous live token of that type stops
  /// working. Throws like create_session.
  std::string create_one_time_token(std::string_view user_id, token_type type,
                                    std::optional<ttl> lifetime = {});
  /// Marks the token used and returns its user's id when it is live (of this type, not used,
  /// not deleted, not expired, its user live); else std::nullopt. Of concurrent uses of one
  /// token exactly one gets the id.
  std::optional<std::string> use_one_time_token(std::string_view token, token_type type);

  /// Deletes the auth module's expired sessions and spent (expired, used or deleted) one-time
  /// tokens in the store's schema, in batches (1 000 rows by default), as
  /// sweep_expired_sessions() with sweep_scope::auth does. Throws usage_error for
  /// sweep_scope::session or a resource type, otherwise like sweep_expired_sessions().
  sweep_result sweep(const sweep_options& options = {});

  /// Returns the select list that decode_user() reads, for queries on `auth_user` (the table
  /// named without an alias).
  static const std::string& user_select_fields();
  /// Returns the select list that decode_session() reads, for queries on `auth_session`.
  static const std::string& session_select_fields();
  /// Returns the select list that decode_user() reads, naming the users' table `alias` (as in
  /// `FROM pgkit.auth_user AS u`, or a join). Throws usage_error for an empty alias or one with
  /// a NUL byte (any other name is quoted).
  static std::string user_select_fields(std::string_view alias);
  /// Same for decode_session(), naming the sessions' table `alias`.
  static std::string session_select_fields(std::string_view alias);

  /// Returns the schema the store works in.
  const std::string& schema() const noexcept;

  /// Returns the store's counters (statements sent, failures by kind). Thread-safe and cheap:
  /// it reads relaxed atomics.
  store_stats statistics() const;

 private:
  struct state;
  std::unique_ptr<state> m_state;
};

/// Reads a user from a row (of stream_query) whose columns from `first` on are
/// auth_store::user_select_fields() (with or without an alias; in a join, `first` is where they
/// start). Throws usage_error for a row that has fewer columns or other values there.
user decode_user(const row_view& row, std::size_t first = 0);
/// Reads a session from a row (of stream_query) whose columns from `first` on are
/// auth_store::session_select_fields(). Throws like decode_user.
auth_session decode_session(const row_view& row, std::size_t first = 0);

/// Pevensie's user_metadata_encoder / user_metadata_decoder: how the application's type `T`
/// becomes the JSON text kept in auth_user.user_metadata, and back. The encoder must return
/// JSON (the store refuses anything else with usage_error); the decoder gets the stored JSON
/// (as PostgreSQL's jsonb prints it) and may throw when it cannot read it.
template <typename T>
struct user_metadata_codec {
  std::function<std::string(const T&)> user_metadata_encoder;
  std::function<T(std::string_view json)> user_metadata_decoder;
};

/// A user with its user_metadata decoded.
template <typename T>
struct typed_user {
  user fields;  ///< every field as auth_store reads it, user_metadata's JSON text included
  T metadata;   ///< user_metadata, decoded
};

/// The auth store's users with typed metadata: every call goes to `store`, metadata passes
/// through the codec on the way in and out. Holds a reference: `store` must outlive it. Throws
/// what the store throws, and usage_error naming the user when the decoder throws on a stored
/// value (its message included), or when the codec lacks a function.
template <typename T>
class typed_users {
 public:
  typed_users(auth_store& store, user_metadata_codec<T> codec)
      : m_store(store), m_codec(std::move(codec)) {
    if (!m_codec.user_metadata_encoder || !m_codec.user_metadata_decoder)
      throw usage_error(
          "typed_users: the codec needs both user_metadata_encoder and "
          "user_metadata_decoder");
  }

  /// create_user with `metadata` encoded into u.user_metadata.
  typed_user<T> create_user(new_user u, const T& metadata) {
    u.user_metadata = m_codec.user_metadata_encoder(metadata);
    return decode(m_store.create_user(u));
  }
  std::optional<typed_user<T>> get_user(std::string_view id) {
    return decode(m_store.get_user(id));
  }
  std::optional<typed_user<T>> get_user_by_email(std::string_view email) {
    return decode(m_store.get_user_by_email(email));
  }
  /// update_user with `metadata` encoded into changes.user_metadata.
  std::optional<typed_user<T>> update_user(std::string_view id, user_update changes,
                                           const T& metadata) {
    changes.user_metadata = m_codec.user_metadata_encoder(metadata);
    return decode(m_store.update_user(id, changes));
  }
  std::vector<typed_user<T>> list_users(const user_search& search) {
    std::vector<typed_user<T>> found;
    for (auto& each : m_store.list_users(search))
      found.push_back(decode(std::move(each)));
    return found;
  }

  /// Decodes a user read any other way (auth_store, decode_user in a join).
  typed_user<T> decode(user u) const {
    try {
      T metadata = m_codec.user_metadata_decoder(u.user_metadata);
      return typed_user<T>{std::move(u), std::move(metadata)};
    } catch (const error&) {
      throw;
    } catch (const std::exception& e) {
      throw usage_error("the user_metadata of user " + u.id + " could not be decoded: " + e.what(),
                        "the user_metadata_decoder must read every shape stored (older ones "
                        "included), or the stored metadata must be updated first");
    }
  }

 private:
  std::optional<typed_user<T>> decode(std::optional<user> u) const {
    if (!u)
      return std::nullopt;
    return decode(std::move(*u));
  }

  auth_store& m_store;
  user_metadata_codec<T> m_codec;
};

}  // namespace pgkit
