#include "pgkit/transaction.hpp"

#include <random>
#include <thread>

#include "core/pqxx_compat.hpp"
#include "pgkit/error.hpp"
#include "wire/wire.hpp"

namespace pgkit::detail {
namespace {

void pause_before(int next_attempt, const retry_options& options) {
  auto backoff = options.first_backoff;
  for (int i = 2; i < next_attempt && backoff < options.max_backoff; ++i)
    backoff *= 2;
  backoff = std::min(backoff, options.max_backoff);
  if (backoff.count() <= 0)
    return;
  // Jitter spreads out the retries of transactions that collided with each other.
  thread_local std::mt19937 random{std::random_device{}()};
  std::uniform_int_distribution<long long> jitter{backoff.count() / 2, backoff.count()};
  std::this_thread::sleep_for(std::chrono::milliseconds{jitter(random)});
}

}  // namespace

void set_isolation(pqxx::transaction_base& tx, isolation_level isolation) {
  switch (isolation) {
    case isolation_level::read_committed:
      return;
    case isolation_level::repeatable_read:
      wire::of(tx).script("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
                          "setting the isolation level");
      return;
    case isolation_level::serializable:
      wire::of(tx).script("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                          "setting the isolation level");
      return;
  }
}

void commit(pqxx::work& tx) {
  if (wire::of(tx).state() == session_state::failed) {
    tx.abort();
    throw_aborted("committing the transaction (its body caught the failure)");
  }
  tx.commit();
}

void retry_or_rethrow(int attempt, const retry_options& options) {
  try {
    // Server errors, lost connections and in-doubt commits become pgkit errors; anything else
    // (the application's own exceptions) passes through unchanged.
    rethrow_translated();
  } catch (const pgkit::error& e) {
    if (!e.is_transient())
      throw;
    if (attempt >= options.max_attempts) {
      throw error(
          e.kind(),
          std::string{e.what()} + " (gave up after " + std::to_string(attempt) + " attempts)",
          e.hint(), e.sqlstate());
    }
  }
  pause_before(attempt + 1, options);
}

}  // namespace pgkit::detail
