#pragma once
/// Web sessions in PostgreSQL: the session store over a pool, on the `session` table of the
/// `session` module, and the sweep of expired sessions (and of the `auth` module's expired
/// sessions and spent one-time tokens). docs/sessions.md has the details.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pqxx/connection>

#include "pgkit/pool.hpp"
#include "pgkit/store.hpp"

namespace pgkit {

/// A session as get() read it.
struct session_value {
  std::string data;          ///< the bytes stored with the session
  ttl remaining{};           ///< time left before it expires (database clock)
  std::int64_t version = 0;  ///< 1 when generated, one more after every set
};

/// What set() and compare_and_set() did.
enum class set_result {
  updated,   ///< the session existed and now holds the new data
  missing,   ///< there is no live session with this key (never was, expired or cleared)
  conflict,  ///< compare_and_set only: another writer changed the session since that version
};

/// What touch() did.
enum class touch_result {
  extended,  ///< the expiry moved to now + ttl
  skipped,   ///< the expiry would have moved by less than the touch interval: nothing written
  missing,   ///< there is no live session with this key
};

/// How a session store behaves.
struct session_options {
  /// The schema holding the `session` table; empty: the pool's `schema`, else "pgkit".
  std::string schema;
  /// The lifetime given to sessions when no ttl is passed (one week).
  ttl default_period = std::chrono::hours{24 * 7};
  /// touch() writes only when it moves the expiry by at least this much (one minute).
  ttl touch_interval = std::chrono::minutes{1};
  /// A pool on a streaming replica of the database, read first by get(); a miss or a failure
  /// there is read again from the primary (the store's pool). Null: get() reads the primary.
  /// A replica lags: docs/scaling.md states what such a read may return.
  std::shared_ptr<pool> replica;
};

/// The earlier name of sweep_scope.
using purge_scope [[deprecated("use pgkit::sweep_scope")]] = sweep_scope;

// clang-format 14 misreads the attributes of these declarations.
// clang-format off
/// Whether a purge deletes or only counts (sweep_options::dry_run now).
enum class [[deprecated("use pgkit::sweep_options::dry_run")]] purge_mode {
  delete_rows,  ///< delete what is expired, in batches
  count_only,   ///< count what a purge would delete now; change nothing (--dry-run)
};

/// The earlier name of sweep_options, with `mode`, the earlier form of `dry_run` (either one
/// turns counting on).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // purge_mode, as deprecated
struct [[deprecated("use pgkit::sweep_options")]] purge_options : sweep_options {
  purge_mode mode = purge_mode::delete_rows;  ///< delete, or count only
};
#pragma GCC diagnostic pop

/// The earlier name of sweep_result, with total(), the earlier name of `deleted`.
struct [[deprecated("use pgkit::sweep_result")]] purge_result : sweep_result {
  /// Returns `deleted`.
  std::uint64_t total() const noexcept { return deleted; }
};
// clang-format on

/// Deletes expired rows in `schema`: sessions past expires_at and, when the auth module is
/// applied, auth sessions past expires_at and one-time tokens that are expired, used or
/// deleted, as options.scope says (options.resource_type must be unset). Each batch (of
/// options.batch_size rows, 1 000 by default) is a short transaction under `SET LOCAL
/// lock_timeout` (options.lock_timeout, 2 s by default) that deletes rows it locks with `FOR
/// UPDATE SKIP LOCKED`, so readers never wait for it and several sweeps at once never delete the
/// same row twice. The result counts per table in `tables`; modules in scope but not applied
/// are listed in skipped_modules. Throws usage_error for a batch size of 0 or a resource type,
/// pgkit::error of kind undefined_object (with a hint naming `pgkit apply`) when no module in
/// scope is applied, and pgkit::error for database failures (a batch that failed is rolled
/// back; the ones before it stay committed).
sweep_result sweep_expired_sessions(pqxx::connection& connection, const std::string& schema,
                                    const sweep_options& options = {});

/// The earlier name of sweep_expired_sessions.
[[deprecated("use pgkit::sweep_expired_sessions")]] purge_result purge_expired_sessions(
    pqxx::connection& connection, const std::string& schema, const purge_options& options = {});

/// Returns true when `key` has the form generate() produces: 43 characters of the URL-safe
/// base64 alphabet. Other strings are never found by the store.
bool is_well_formed_session_key(std::string_view key) noexcept;

/// The session store: web sessions for any framework, kept in the `session` table. Keys are 32
/// bytes from the operating system's CSPRNG in URL-safe base64 without padding; the table
/// holds only their SHA-256 digest. Expiry is decided by the database clock. Every operation is
/// one short statement on a connection leased for it, or on the one connection the store was
/// given. Thread-safe; non-copyable.
class session_store {
 public:
  /// Creates a store on `pool`. Throws usage_error for an unusable schema name or a
  /// non-positive period or negative touch interval, and pgkit::error of kind internal when
  /// libsodium cannot be initialised. Checks nothing on the server (see check()).
  explicit session_store(std::shared_ptr<pool> pool, session_options options = {});
  /// Creates a store on one connection that the application owns and keeps open while the
  /// store is used (options.schema empty: "pgkit"; options.replica must be null). Statements
  /// are prepared on it, so it must not go through a transaction-mode pooler; they run one at
  /// a time (the store serializes its own calls), in the connection's transaction block when
  /// the application has one open. Throws like the pool constructor, and usage_error for a
  /// replica.
  explicit session_store(pqxx::connection& connection, session_options options = {});
  ~session_store();
  session_store(const session_store&) = delete;
  session_store& operator=(const session_store&) = delete;

  /// Throws pgkit::error of kind undefined_object, hinting `pgkit apply session`, when the
  /// session table does not exist in the store's schema; other failures as pgkit::error.
  void check();

  /// Creates a session holding `data` that expires `lifetime` from now (default_period() when
  /// unset) and returns its new key. Throws usage_error for a non-positive lifetime.
  std::string generate(std::string_view data = {}, std::optional<ttl> lifetime = std::nullopt);

  /// Returns the session's data, remaining lifetime and version, or std::nullopt when the key
  /// is unknown, malformed or expired. An expired session found here is deleted unless another
  /// transaction holds its row, in which case it is left for purge (the reader never waits).
  std::optional<session_value> get(std::string_view key);

  /// Replaces a live session's data and sets it to expire exactly `lifetime` from now; without
  /// a lifetime, default_period() from now, except that an expiry within the touch interval of
  /// the current one is kept as it is. Returns updated or missing; never creates a session.
  set_result set(std::string_view key, std::string_view data,
                 std::optional<ttl> lifetime = std::nullopt);

  /// Like set(), but only when the session's version is still `expected_version` (the one get()
  /// returned); returns conflict when another writer changed it in between.
  set_result compare_and_set(std::string_view key, std::int64_t expected_version,
                             std::string_view data, std::optional<ttl> lifetime = std::nullopt);

  /// Moves a live session's expiry to `lifetime` from now (default_period() when unset), but writes
  /// only when that moves it later by at least the touch interval. Never shortens a session and
  /// never changes its version.
  touch_result touch(std::string_view key, std::optional<ttl> lifetime = std::nullopt);

  /// Deletes the session. Returns true when a session (live or expired) was deleted.
  bool clear(std::string_view key);

  /// Returns the lifetime used when no ttl is passed (one week unless changed).
  ttl default_period() const noexcept;
  /// Changes the lifetime used by later calls without a ttl. Throws usage_error unless positive.
  void set_default_period(ttl period);

  /// Deletes expired sessions (and, with sweep_scope::all or auth, the auth module's expired
  /// rows, when applied) in the store's schema. See sweep_expired_sessions().
  sweep_result sweep(const sweep_options& options = {});

  /// The earlier sweep() with `batch_size` and `max_duration`.
  [[deprecated("use pgkit::session_store::sweep")]] purge_result purge(
      std::size_t batch_size = 1000,
      std::optional<std::chrono::milliseconds> max_duration = std::nullopt);
  /// The earlier name of sweep().
  [[deprecated("use pgkit::session_store::sweep")]] purge_result purge(
      const purge_options& options);

  /// Returns the schema the store works in.
  const std::string& schema() const noexcept { return m_schema; }

  /// Returns the store's counters (statements sent, failures by kind). Thread-safe and cheap:
  /// it reads relaxed atomics.
  store_stats statistics() const;

 private:
  struct statements;
  struct single_connection;

  // Calls body(connection, wire) with a connection leased for it, or with the store's one
  // connection while no other call of the store uses it.
  template <typename Body>
  auto on_connection(Body&& body);
  void finish_setup(std::string schema, const session_options& options);

  std::shared_ptr<pool> m_pool;
  std::unique_ptr<single_connection> m_single;
  std::shared_ptr<pool> m_replica;
  std::string m_schema;
  ttl m_touch_interval;
  std::atomic<std::int64_t> m_default_period_ms;
  std::shared_ptr<const statements> m_sql;
  std::shared_ptr<detail::store_counters<0>> m_counters;
};

}  // namespace pgkit
