#pragma once
/// pgkit's exceptions: one root, `pgkit::error`, carrying a kind, an optional hint for the
/// person reading the message, and the SQLSTATE when the server reported one.

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

namespace pgkit {

/// What went wrong, coarse enough to decide what to do next (retry, fix input, give up).
enum class error_kind {
  usage,                  ///< the caller passed something invalid (an argument, an option)
  config,                 ///< configuration is missing, malformed or contradictory
  connection,             ///< a connection could not be opened
  connection_lost,        ///< an open connection broke; the statement's outcome may be unknown
  timeout,                ///< waiting for a resource (pool, lock) took too long
  unique_violation,       ///< SQLSTATE 23505
  foreign_key_violation,  ///< SQLSTATE 23503
  check_violation,        ///< SQLSTATE 23514
  not_null_violation,     ///< SQLSTATE 23502
  serialization_failure,  ///< SQLSTATE 40001; safe to retry the whole transaction
  deadlock,               ///< SQLSTATE 40P01; safe to retry the whole transaction
  lock_timeout,           ///< SQLSTATE 55P03 (lock_not_available)
  canceled,               ///< SQLSTATE 57014: statement_timeout or a cancel request
  undefined_object,       ///< SQLSTATE 42P01/42883/3F000...: a table, function or schema is missing
  sql,                    ///< any other error reported by the server
  check_failed,           ///< a requested check found a problem (e.g. pending migrations)
  internal,               ///< a bug in pgkit or an unexpected library failure
};

/// How many error kinds there are: arrays indexed by error_kind (store_stats::errors) have this
/// many entries.
inline constexpr std::size_t error_kind_count = static_cast<std::size_t>(error_kind::internal) + 1;

/// Returns a stable lower-case name for `kind` ("unique_violation", ...).
std::string_view to_string(error_kind kind) noexcept;

/// Maps a five-character SQLSTATE to its kind; unknown codes map to error_kind::sql.
error_kind kind_from_sqlstate(std::string_view sqlstate) noexcept;

/// The root of everything pgkit throws. `what()` never contains a password.
class error : public std::runtime_error {
 public:
  /// Creates an error of `kind` with a message and an optional hint on what to do.
  error(error_kind kind, const std::string& message, std::string hint = {},
        std::string sqlstate = {});

  /// Returns what kind of failure this is.
  error_kind kind() const noexcept { return m_kind; }
  /// Returns advice for a person ("run pgkit apply cache"), or an empty string.
  const std::string& hint() const noexcept { return m_hint; }
  /// Returns the server's SQLSTATE, or an empty string when the server reported none.
  const std::string& sqlstate() const noexcept { return m_sqlstate; }
  /// Returns true for failures that a fresh transaction may not hit again
  /// (serialization failure, deadlock).
  bool is_transient() const noexcept {
    return m_kind == error_kind::serialization_failure || m_kind == error_kind::deadlock;
  }

 private:
  error_kind m_kind;
  std::string m_hint;
  std::string m_sqlstate;
};

/// Invalid arguments or options from the caller; the CLI exits 2.
class usage_error : public error {
 public:
  explicit usage_error(const std::string& message, std::string hint = {})
      : error(error_kind::usage, message, std::move(hint)) {}
};

/// Configuration that cannot be used as it is; the CLI exits 2.
class config_error : public error {
 public:
  explicit config_error(const std::string& message, std::string hint = {})
      : error(error_kind::config, message, std::move(hint)) {}
};

/// A server-reported error, classified by SQLSTATE.
class sql_error : public error {
 public:
  /// Creates an error for `sqlstate`, with the server's message and the statement's text.
  sql_error(const std::string& message, std::string sqlstate, std::string query = {},
            std::string hint = {});
  /// Returns the statement that failed, when known.
  const std::string& query() const noexcept { return m_query; }

 private:
  std::string m_query;
};

/// A check requested by the caller failed; the CLI exits 3.
class check_failed : public error {
 public:
  explicit check_failed(const std::string& message, std::string hint = {})
      : error(error_kind::check_failed, message, std::move(hint)) {}
};

/// Returns the pgkit::error for `failure`, for code that mixes its own libpqxx statements with
/// pgkit's: a libpqxx exception gets the kind of its SQLSTATE (a pqxx::sql_error), or
/// connection_lost (a broken connection, an in-doubt commit), or usage (pqxx::usage_error: a
/// transaction already closed, a second one on a connection); a pgkit::error comes back as it
/// is; anything else is kind internal with its message. run_transaction and with_savepoint
/// apply it at their boundary.
error translate(const std::exception& failure);

}  // namespace pgkit
