#pragma once
/// What the three stores (pgkit::cache_store, pgkit::session_store, pgkit::auth_store) share:
/// the duration type of every lifetime they take or return, and the options and result of
/// their sweep(), which deletes expired rows in short batches. docs/cache.md and
/// docs/sessions.md describe the sweep of each store.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pgkit/error.hpp"

namespace pgkit {

/// A time to live, lifetime or period of a store entry, to the millisecond. Coarser
/// std::chrono durations (seconds, minutes, hours) convert to it implicitly. Where an entry may
/// never expire, the stores take std::optional<ttl> (std::nullopt: never expires).
using ttl = std::chrono::milliseconds;

/// Which tables a sweep of session_store cleans (`pgkit session-purge --only`).
enum class sweep_scope {
  all,      ///< the `session` table and the `auth` module's tables, whichever are applied
  session,  ///< only the `session` table
  auth,     ///< only `auth_session` and `auth_one_time_token`
};

/// What a store's sweep() is asked to do. Every field has a usable default; the store-specific
/// ones are refused (usage_error) by the stores they do not apply to.
struct sweep_options {
  /// Rows deleted per batch, each batch in its own short transaction (at least 1);
  /// std::nullopt: the store's default (10 000 for the cache, 1 000 for sessions and auth).
  std::optional<std::size_t> batch_size;
  /// No new batch starts after this long, and a batch still running then is canceled;
  /// std::nullopt: until no expired row is left.
  std::optional<std::chrono::milliseconds> max_duration;
  /// How long one batch may wait for a table lock (SET LOCAL lock_timeout); std::nullopt: the
  /// store's default (cache_options::gc_lock_timeout for the cache, 2 s otherwise).
  std::optional<std::chrono::milliseconds> lock_timeout;
  /// Count the expired rows (into `deleted` and `tables`) and delete nothing.
  bool dry_run = false;
  /// Called after each batch with the rows deleted in it and in all so far; must not throw.
  std::function<void(std::size_t batch_deleted, std::size_t total_deleted)> progress;
  /// cache_store only: only entries of this resource type; std::nullopt: all of them.
  std::optional<std::string> resource_type;
  /// session_store only: which tables it cleans (auth_store always cleans its own, the auth
  /// tables, and refuses sweep_scope::session).
  sweep_scope scope = sweep_scope::all;
};

/// What a sweep did (or, in a dry run, found).
struct sweep_result {
  /// Rows deleted (or counted) in one table.
  struct table_count {
    std::string table;       ///< "cache", "session", "auth_session" or "auth_one_time_token"
    std::uint64_t rows = 0;  ///< rows deleted or counted
  };
  std::uint64_t deleted = 0;             ///< rows deleted over all tables (counted in a dry run)
  std::size_t batches = 0;               ///< batches (transactions) committed
  std::chrono::microseconds elapsed{0};  ///< wall time of the whole run
  bool complete = true;                  ///< false when max_duration stopped it early
  std::vector<table_count> tables;       ///< the tables swept, in the order they were swept
  /// Modules in scope that are not applied, whose tables were skipped (session and auth only).
  std::vector<std::string> skipped_modules;

  /// Returns the rows deleted (or counted) in `table`, 0 when it was not swept.
  std::uint64_t rows(std::string_view table) const noexcept {
    for (const auto& entry : tables) {
      if (entry.table == table)
        return entry.rows;
    }
    return 0;
  }
};

namespace detail {
template <std::size_t Extra>
class store_counters;
}

/// A store's counters since it was made, read together (what pgkit::metrics reports).
struct store_stats {
  std::uint64_t operations = 0;  ///< statements the store sent (each a round trip)
  /// Statements that failed, indexed by error_kind (static_cast<std::size_t>(kind)).
  std::array<std::uint64_t, error_kind_count> errors{};
};

}  // namespace pgkit
