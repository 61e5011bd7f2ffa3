#pragma once
// The one batched expiry sweep behind cache gc and session purge: short transactions, each
// under SET LOCAL lock_timeout, deleting rows it locked with FOR UPDATE SKIP LOCKED, until a
// batch comes back short. max_duration is a client-side deadline: no batch starts after it,
// and a batch still running when it passes is canceled (the connection is dropped when the
// server does not answer the cancel) and reported as kind timeout with what the committed
// batches deleted.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "pgkit/store.hpp"
#include "wire/wire.hpp"

namespace pgkit::detail {

/// A sweep runs by the public sweep_options and reports in the public sweep_result
/// (pgkit/store.hpp); the stores fill in their own fields (resource_type, scope, tables).
using pgkit::sweep_options;
using pgkit::sweep_result;

/// What a sweep does when the options leave it open; the stores pass their own defaults.
inline constexpr std::size_t k_default_sweep_batch = 1000;
inline constexpr std::chrono::milliseconds k_default_sweep_lock_timeout{2000};

/// One table a sweep cleans: a DELETE of at most $1 rows and a count of the same rows, with
/// `extra` parameters from $2 on.
struct sweep_target {
  const statement* delete_batch;
  const statement* count;
  std::vector<bound_param> extra;
  /// Optional: the same DELETE without FOR UPDATE SKIP LOCKED (one pass over the rows fewer),
  /// used by a batch that holds the transaction-level advisory lock named by `exclusive_key`,
  /// that is while no other sweep of the table runs. It may wait for a row another session
  /// holds: after a short lock_timeout the batch is redone by `delete_batch`.
  const statement* delete_batch_alone = nullptr;
  std::string exclusive_key;
  /// Set for a distributed Citus table: `delete_batch` is a per_shard_statement (stores/citus.hpp),
  /// which reports the rows it deleted, and the shards' errors, in its one row.
  bool per_shard = false;
};

/// A sweep over one or more tables on one connection, sharing one deadline.
class expiry_sweep {
 public:
  /// Throws usage_error for a batch size of 0 or a non-positive max_duration (check()).
  /// `what` names the rows for messages ("expired entries"), `rerun` what to run again in
  /// hints ("gc").
  expiry_sweep(const wire& on, const sweep_options& options, std::string what, std::string rerun);

  /// The constructor's checks of `options`, for a caller that has no connection yet: throws
  /// usage_error for a batch size of 0 or a non-positive max_duration.
  static void check(const sweep_options& options);

  /// Sweeps `target` until a batch comes back short or time is up; returns the rows it
  /// deleted (counted) there. The options' `progress` gets each batch's count and the run's
  /// total.
  std::uint64_t sweep(const sweep_target& target);

  /// Returns what the sweep did so far.
  sweep_result result() const;

 private:
  // One batch in its own transaction; returns the rows it deleted.
  std::uint64_t sweep_batch(const sweep_target& target, const std::vector<bound_param>& parameters,
                            const std::vector<bound_param>& lock_timeout,
                            const std::vector<bound_param>& lock_alone, const std::string& context);
  [[noreturn]] void fail(const std::string& context);

  wire m_wire;
  sweep_options m_options;
  std::size_t m_batch_size;
  std::chrono::milliseconds m_lock_timeout_value;
  std::string m_what;
  std::string m_rerun;
  steady_clock::time_point m_started;
  stop_control m_control;
  statement m_lock_timeout;
  statement m_lock_alone;
  sweep_result m_result;
};

}  // namespace pgkit::detail
