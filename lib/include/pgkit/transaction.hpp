#pragma once
/// Running a function in a transaction and retrying it when the server says a fresh attempt
/// may succeed: serialization failure (40001) or deadlock (40P01), and nothing else. A commit
/// whose outcome is unknown (the connection broke during COMMIT) is never retried.

#include <chrono>
#include <type_traits>
#include <utility>

#include <pqxx/transaction>

#include "pgkit/pool.hpp"

namespace pgkit {

/// The isolation level a transaction runs at.
enum class isolation_level { read_committed, repeatable_read, serializable };

/// How run_transaction retries.
struct retry_options {
  isolation_level isolation = isolation_level::read_committed;
  /// Attempts in all, the first included (at least 1).
  int max_attempts = 5;
  /// Pause before the second attempt; doubled each time up to max_backoff, with jitter.
  std::chrono::milliseconds first_backoff{2};
  std::chrono::milliseconds max_backoff{100};
};

namespace detail {
/// Sets the isolation level as the transaction's first statement.
void set_isolation(pqxx::transaction_base& tx, isolation_level isolation);
/// Commits `tx`. Throws (after rolling back) a pgkit::error of SQLSTATE 25P02 when an earlier
/// statement's failure, which the body caught, aborted the transaction on the server: COMMIT
/// would otherwise end it as a rollback that looks like a success.
void commit(pqxx::work& tx);
/// Call inside a catch block after attempt number `attempt` failed: returns (after a pause)
/// when the failure is a serialization failure or deadlock and attempts remain; otherwise
/// throws it as a pgkit::error (exceptions that are not libpqxx's or pgkit's pass unchanged).
void retry_or_rethrow(int attempt, const retry_options& options);
}  // namespace detail

/// Runs `body(tx)` in a transaction on the lease's connection and commits; on a serialization
/// failure or deadlock, rolls back and runs it again (so `body` must not have effects outside
/// the database that cannot be repeated). Returns what `body` returns. Throws pgkit::error for
/// database failures (libpqxx's exceptions translated by pgkit::translate), including the last
/// transient one when attempts run out; when `body` caught a failure that aborted the
/// transaction on the server, nothing is committed and a pgkit::error of SQLSTATE 25P02 says
/// so.
template <typename Body>
auto run_transaction(lease& connection, Body&& body, const retry_options& options = {})
    -> std::invoke_result_t<Body&, pqxx::work&> {
  using result_type = std::invoke_result_t<Body&, pqxx::work&>;
  for (int attempt = 1;; ++attempt) {
    try {
      pqxx::work tx{connection.connection()};
      detail::set_isolation(tx, options.isolation);
      if constexpr (std::is_void_v<result_type>) {
        body(tx);
        detail::commit(tx);
        return;
      } else {
        result_type result = body(tx);
        detail::commit(tx);
        return result;
      }
    } catch (...) {
      detail::retry_or_rethrow(attempt, options);
    }
  }
}

/// Same, on a connection acquired from `from` for all attempts.
template <typename Body>
auto run_transaction(pool& from, Body&& body, const retry_options& options = {})
    -> std::invoke_result_t<Body&, pqxx::work&> {
  auto connection = from.acquire();
  return run_transaction(connection, std::forward<Body>(body), options);
}

}  // namespace pgkit
