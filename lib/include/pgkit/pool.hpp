#pragma once
/// A bounded connection pool with waiters served first come, first served (a running thread may
/// keep its connection for one hand-off slice), RAII leases, validation of idle connections, max
/// lifetime, idle timeout, min_idle and counters. docs/pool.md has the details; pgkit::start is
/// the one-liner that builds one from database.toml.

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <pqxx/connection>

#include "pgkit/config.hpp"

namespace pgkit {

namespace detail {
struct pool_state;
struct pooled_connection;
struct lease_access;
}  // namespace detail

class pool;

/// A connection borrowed from a pool; destroying (or release()-ing) it gives it back. A
/// connection given back broken, or inside a transaction block, is closed instead of reused.
/// A lease must not outlive the transactions opened on its connection. Move-only.
class lease {
 public:
  /// An empty lease (holds no connection); assign one from pool::acquire() to it.
  lease() noexcept;
  lease(lease&& other) noexcept;
  lease& operator=(lease&& other) noexcept;
  lease(const lease&) = delete;
  lease& operator=(const lease&) = delete;
  ~lease();

  /// Returns the connection. The lease must hold one (see operator bool).
  pqxx::connection& connection() const noexcept;
  pqxx::connection& operator*() const noexcept { return connection(); }
  pqxx::connection* operator->() const noexcept { return &connection(); }
  /// Returns true while the lease holds a connection.
  explicit operator bool() const noexcept { return m_connection != nullptr; }

  /// Returns the configuration of the pool the connection belongs to (schema, pooler, ...).
  const connection_config& config() const noexcept;

  /// Gives the connection back now; the lease is empty afterwards. Never throws.
  void release() noexcept;

 private:
  friend class pool;
  friend struct detail::lease_access;
  lease(std::shared_ptr<detail::pool_state> state,
        std::unique_ptr<detail::pooled_connection> connection) noexcept;

  std::shared_ptr<detail::pool_state> m_state;
  std::unique_ptr<detail::pooled_connection> m_connection;
};

/// The upper bounds of pool_stats::queued_waits' buckets (db_client_connection_wait_time's
/// buckets, docs/metrics.md).
inline constexpr std::array<std::chrono::microseconds, 12> pool_wait_bounds{
    std::chrono::microseconds{100},     std::chrono::microseconds{500},
    std::chrono::microseconds{1000},    std::chrono::microseconds{2500},
    std::chrono::microseconds{5000},    std::chrono::microseconds{10000},
    std::chrono::microseconds{25000},   std::chrono::microseconds{50000},
    std::chrono::microseconds{100000},  std::chrono::microseconds{250000},
    std::chrono::microseconds{1000000}, std::chrono::microseconds{5000000}};

/// The pool's counters, read together at one instant.
struct pool_stats {
  std::uint64_t acquired = 0;  ///< leases handed out
  std::uint64_t waited = 0;    ///< acquires that had to queue for a connection
  std::uint64_t handoffs = 0;  ///< connections given straight to a queued caller
  /// Acquires that took back the caller's own connection, given back within its hand-off slice,
  /// while other callers were queued.
  std::uint64_t overtakes = 0;
  /// Hand-offs that went to a queued caller whose thread had given back that same connection
  /// last (a thread meeting its server process again; see docs/pool.md).
  std::uint64_t paired_handoffs = 0;
  std::chrono::nanoseconds wait_time{0};     ///< total time spent queued
  std::chrono::nanoseconds longest_wait{0};  ///< the longest single time spent queued
  std::uint64_t timed_out = 0;               ///< acquires that gave up after their timeout
  std::uint64_t created = 0;                 ///< connections opened
  std::uint64_t create_failed = 0;           ///< connection attempts that failed
  /// Connections closed, by reason.
  std::uint64_t destroyed_broken = 0;             ///< given back broken (lost, terminated)
  std::uint64_t destroyed_in_transaction = 0;     ///< given back inside a transaction block or busy
  std::uint64_t destroyed_failed_validation = 0;  ///< idle, then did not answer a check
  std::uint64_t destroyed_lifetime = 0;           ///< older than max_lifetime
  std::uint64_t destroyed_idle = 0;               ///< idle longer than idle_timeout
  std::uint64_t destroyed_closed = 0;             ///< closed by close() or the pool's destruction
  /// Acquires that queued, by how long they queued: [i] counts waits of at most
  /// pool_wait_bounds[i] (and more than the bound before it), the last entry longer waits.
  /// Acquires that did not queue waited zero. Counted when the acquire returns or times out.
  std::array<std::uint64_t, pool_wait_bounds.size() + 1> queued_waits{};
  std::size_t in_use = 0;   ///< connections leased out now
  std::size_t idle = 0;     ///< connections open and idle now
  std::size_t waiting = 0;  ///< callers queued now

  /// Returns the total of the destroyed_* counters.
  std::uint64_t destroyed() const noexcept {
    return destroyed_broken + destroyed_in_transaction + destroyed_failed_validation +
           destroyed_lifetime + destroyed_idle + destroyed_closed;
  }
};

/// A bounded pool of connections to one database. Thread-safe. Non-copyable, non-movable: hold
/// it in a std::shared_ptr (what start() returns, and what the stores keep) or a unique_ptr.
class pool {
 public:
  /// Creates a pool for `config`. Opens no connection yet (see warm_up()) and starts the
  /// maintenance thread. Throws config_error when the configuration cannot be used.
  explicit pool(connection_config config);
  /// Closes idle connections and stops maintenance without waiting; leases still out stay
  /// valid and their connections are closed when they come back.
  ~pool();
  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;

  /// Returns a connection, waiting up to `timeout` (queued callers are served first come,
  /// first served; a thread that gave its connection back within its hand-off slice takes it
  /// back ahead of them, see connection_config::handoff_quantum). Throws
  /// pgkit::error of kind `timeout` saying how many connections are busy and how long the
  /// caller waited; of kind `connection` when a new connection cannot be opened; of kind
  /// `usage` after close().
  lease acquire(std::chrono::milliseconds timeout);
  /// Same, with the configured acquire_timeout.
  lease acquire();

  /// Opens connections until min_idle (at least one) are idle, so that a bad address or a
  /// stopped server shows at boot. Throws pgkit::error of kind `connection` when it cannot.
  void warm_up();

  /// Refuses new acquires, wakes queued callers with an error, closes idle connections and
  /// waits up to `timeout` for leases to come back (their connections are closed then).
  /// Returns true when every lease came back in time. Must not be called while the calling
  /// thread holds a lease of this pool.
  bool close(std::chrono::milliseconds timeout = std::chrono::milliseconds::max());

  /// Returns the counters.
  pool_stats stats() const;

  /// Returns the configuration the pool was made with.
  const connection_config& config() const noexcept;

 private:
  std::shared_ptr<detail::pool_state> m_state;
};

/// The glimr one-liner: reads `database.toml` (else `config/database.toml`) from the current
/// directory, expanding `${VAR}` from the process environment, builds a pool for connection
/// `name` and warms it up. This convenience entry is the one place pgkit reads files and the
/// environment on its own; start(const connection_config&) and the pool constructor take a
/// configuration the application built. Throws config_error or a connection error whose
/// message ends with its hint on a line of its own ("\nhint: ..."; hint() holds it too), so
/// that an error left uncaught shows what to fix.
std::shared_ptr<pool> start(const std::string& name = "main");

/// Builds a pool for `config` and warms it up. Throws like pool::warm_up().
std::shared_ptr<pool> start(const connection_config& config);

}  // namespace pgkit
