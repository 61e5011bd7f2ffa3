#pragma once
/// The cache store: PostgreSQL as the application's cache, on the `cache` table of the `cache`
/// module (`pgkit apply cache`). Values are bytes, entries expire on the database clock, expired
/// entries read as misses, and sweep() removes them in short batches that never wait on other
/// sessions. docs/cache.md describes the semantics in full.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pgkit/error.hpp"
#include "pgkit/pool.hpp"
#include "pgkit/store.hpp"

namespace pgkit {

/// The lifetime of an entry that never expires (a std::optional<ttl> without a value).
inline constexpr std::nullopt_t never_expires = std::nullopt;

/// What a failed read (get, get_many, the read of get_or_set) does.
enum class cache_read_failure {
  raise,    ///< throw the pgkit::error
  as_miss,  ///< report it to cache_options::on_failure and return a miss
};

/// Something that happened to a near tier, told to near_options::on_event.
struct near_event {
  /// flushed: every entry was dropped (the listener reconnected, so notifications may have been
  /// lost); listener_lost: the listener's connection broke and the tier is bypassed until it is
  /// back; listener_back: the listener is LISTENing again and the (flushed) tier serves again.
  enum class kind { flushed, listener_lost, listener_back } what;
  std::string reason;  ///< why, in words (the connection error for listener_lost)
};

/// The in-process tier in front of the cache table (cache_options::near); docs/cache.md says
/// what it guarantees.
struct near_options {
  /// At most this many entries are held (at least 1).
  std::size_t max_entries = 10000;
  /// At most this many bytes of keys, values and bookkeeping are held (at least 1 KiB).
  std::size_t max_bytes = 64 * 1024 * 1024;
  /// Where the process's invalidation listener connects; empty: the pool's connection settings
  /// (required with pooler = "pgbouncer-transaction").
  std::string listen_conninfo;
  /// Receives the tier's events; called on the listener's thread; must not throw.
  std::function<void(const near_event&)> on_event;
};

/// What a near tier has done so far (all zero when the tier is off).
struct near_stats {
  std::uint64_t hits = 0;           ///< reads answered from the tier
  std::uint64_t misses = 0;         ///< reads that went to the table while the tier was serving
  std::uint64_t invalidations = 0;  ///< invalidation notifications applied for this schema
  std::uint64_t flushes = 0;        ///< times the whole tier (or a resource type) was dropped
  std::size_t entries = 0;          ///< entries held now
  std::size_t bytes = 0;            ///< bytes held now (keys, values and bookkeeping)
};

/// The cache store's own counters since it was made (the near tier's are near_stats): what
/// pgkit::metrics reports.
struct cache_stats : store_stats {
  std::uint64_t hits = 0;    ///< reads answered by the table (near-tier hits are near_stats)
  std::uint64_t misses = 0;  ///< keys the table had no live entry for
  std::uint64_t sets = 0;    ///< entries written by set(), set_many() and get_or_set()
};

namespace detail {
class near_tier;
}

/// How a cache store behaves. Every field has a usable default.
struct cache_options {
  /// The schema holding the `cache` table; empty: the pool configuration's `schema`, else
  /// "pgkit".
  std::string schema;
  /// Values longer than this are refused before anything is sent (default 1 MiB).
  std::size_t max_value_size = 1024 * 1024;
  /// Keys longer than this are refused before anything is sent (default 1 KiB; a B-tree entry
  /// holds at most about 2.7 kB).
  std::size_t max_key_size = 1024;
  /// The lifetime set() gives an entry when the call names none.
  std::optional<ttl> default_ttl = never_expires;
  /// Whether read failures throw or degrade to misses (Solid Cache's behaviour).
  cache_read_failure on_read_failure = cache_read_failure::raise;
  /// Receives every failure that was turned into a miss (and a failed write of get_or_set in
  /// that mode). Called on the reading thread; must not throw.
  std::function<void(const pgkit::error&)> on_failure;
  /// How long one sweep batch may wait for a table lock (SET LOCAL lock_timeout), unless
  /// sweep_options::lock_timeout says otherwise.
  std::chrono::milliseconds gc_lock_timeout{2000};
  /// Turns on the in-process near tier; std::nullopt (the default): every read asks the table.
  std::optional<near_options> near;
};

/// The earlier name of std::optional<pgkit::ttl>.
using cache_ttl [[deprecated("use std::optional<pgkit::ttl>")]] = std::optional<ttl>;
/// The earlier name of sweep_options.
using cache_gc_options [[deprecated("use pgkit::sweep_options")]] = sweep_options;
/// The earlier name of sweep_result, with `finished`, the earlier name of `complete`.
struct [[deprecated("use pgkit::sweep_result")]] cache_gc_result : sweep_result {
  bool finished = true;  ///< the same as `complete`
};

/// A cache store over a pool. Thread-safe; each call borrows a connection for itself.
/// Non-copyable. Keys are text without NUL bytes, 1 to max_key_size bytes; resource types
/// follow the same rules. Values are arbitrary bytes held in std::string (NUL bytes included).
class cache_store {
 public:
  /// Creates a store on `connections`. Throws usage_error when the schema name is not a plain
  /// identifier. Checks nothing on the server (see check()), unless options.near is set: then
  /// it checks that the cache module (with its invalidation trigger) is applied and connects
  /// the process's invalidation listener, throwing pgkit::error when either fails and
  /// config_error behind a transaction-mode pooler without near_options::listen_conninfo.
  explicit cache_store(std::shared_ptr<pool> connections, cache_options options = {});
  ~cache_store();
  cache_store(const cache_store&) = delete;
  cache_store& operator=(const cache_store&) = delete;

  /// Returns the schema this store uses.
  const std::string& schema() const noexcept { return m_schema; }
  /// Returns the options this store was made with.
  const cache_options& options() const noexcept { return m_options; }

  /// Throws pgkit::error of kind undefined_object, hinting at `pgkit apply cache`, when the
  /// cache table does not exist in the schema; other failures as pgkit::error.
  void check();

  /// Returns the live entry's value, or std::nullopt. An expired entry is a miss and is
  /// deleted unless another session holds its row lock (the read never waits for one). Throws
  /// usage_error for an invalid key; pgkit::error for database failures unless they degrade.
  std::optional<std::string> get(std::string_view resource_type, std::string_view key);

  /// Returns the values of `keys` in their order (std::nullopt for misses), in one round trip
  /// (a second one deletes expired entries when there were some). Throws like get().
  std::vector<std::optional<std::string>> get_many(std::string_view resource_type,
                                                   const std::vector<std::string>& keys);

  /// Stores `value` under `key`, replacing any entry, living `lifetime` from now on the
  /// database clock (never_expires: until removed; zero: already expired). Throws usage_error
  /// for an invalid key, an oversized value or a negative lifetime.
  void set(std::string_view resource_type, std::string_view key, std::string_view value,
           std::optional<ttl> lifetime);
  /// Same, with options().default_ttl.
  void set(std::string_view resource_type, std::string_view key, std::string_view value);

  /// Stores every (key, value) pair in one statement, all with the same lifetime; a key given twice
  /// keeps its last value. Throws like set(), before anything is sent.
  void set_many(std::string_view resource_type,
                const std::vector<std::pair<std::string, std::string>>& entries,
                std::optional<ttl> lifetime);
  /// Same, with options().default_ttl.
  void set_many(std::string_view resource_type,
                const std::vector<std::pair<std::string, std::string>>& entries);

  /// Deletes the entry; returns true when one (live or expired) existed.
  bool remove(std::string_view resource_type, std::string_view key);

  /// Deletes every entry of `resource_type`, in batches of 10 000 rows per statement (so not
  /// atomically); returns how many it deleted.
  std::size_t clear(std::string_view resource_type);

  /// Returns the live value, or runs `compute`, stores its result with `lifetime` and returns
  /// it.
  /// Concurrent callers that miss at once all compute; the last write wins. Exceptions from
  /// `compute` pass through and nothing is stored.
  std::string get_or_set(std::string_view resource_type, std::string_view key,
                         std::optional<ttl> lifetime, const std::function<std::string()>& compute);

  /// Sets a live entry's remaining lifetime to `lifetime` (never_expires: keep it until removed;
  /// zero: expire it now), shortening or lengthening it. Returns false when there is no live
  /// entry.
  bool expire(std::string_view resource_type, std::string_view key, std::optional<ttl> lifetime);

  /// Makes a live entry live at least `lifetime` from now: lengthens, never shortens, and leaves an
  /// entry that never expires as it is (no write when nothing changes). Returns false when
  /// there is no live entry.
  bool touch(std::string_view resource_type, std::string_view key, ttl lifetime);

  /// Deletes expired entries (of options.resource_type, or all) in batches (FOR UPDATE SKIP
  /// LOCKED, each batch its own transaction under SET LOCAL lock_timeout), so it never waits on
  /// a row another session holds, and several runs at once never delete the same row. The
  /// result's `tables` has one entry, "cache". Throws usage_error for a batch size of 0, a
  /// non-positive max_duration, an invalid resource type or a scope other than
  /// sweep_scope::all; pgkit::error otherwise: a lock timeout is thrown as kind lock_timeout
  /// after the batches before it were committed.
  sweep_result sweep(const sweep_options& options = {});

  /// The earlier name of sweep(); `finished` is `complete`.
  [[deprecated("use pgkit::cache_store::sweep")]] cache_gc_result gc(
      const cache_gc_options& options = {});
  /// The earlier sweep() with `batch_size` and `max_duration`.
  [[deprecated("use pgkit::cache_store::sweep")]] cache_gc_result gc(
      std::size_t batch_size, std::optional<std::chrono::milliseconds> max_duration);

  /// Returns how many entries (of `resource_type`, or all) are expired now, without deleting.
  std::size_t count_expired(const std::optional<std::string>& resource_type = std::nullopt);

  /// Returns the near tier's counters; all zero when cache_options::near is not set.
  near_stats near_statistics() const;
  /// Returns the store's counters (statements, errors by kind, table hits, misses and sets).
  /// Thread-safe and cheap: it reads relaxed atomics.
  cache_stats statistics() const;

 private:
  struct statements;
  std::shared_ptr<pool> m_pool;
  cache_options m_options;
  std::string m_schema;
  void start_near();

  std::unique_ptr<const statements> m_statements;
  std::unique_ptr<detail::near_tier> m_near;
  std::shared_ptr<detail::store_counters<3>> m_counters;
};

/// The earlier name of cache_store.
using cache [[deprecated("use pgkit::cache_store")]] = cache_store;

}  // namespace pgkit
