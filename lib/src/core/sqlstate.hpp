#pragma once
// The one SQLSTATE table: each code (or class) pgkit knows, with the error kind it maps to and
// the hint a person gets when the caller has none. The only place a SQLSTATE literal appears
// (scripts/check-layers enforces it); other code names the conditions it tests for.

#include <string>
#include <string_view>

#include "pgkit/error.hpp"

namespace pgkit::detail {

/// The conditions pgkit's own code tests for or reports.
enum class sql_condition {
  unique_violation,
  foreign_key_violation,
  check_violation,
  invalid_text_representation,
  undefined_table,
  invalid_schema_name,
  feature_not_supported,
  read_only_sql_transaction,
  in_failed_sql_transaction,
  query_canceled,
  lock_not_available,
  transaction_rollback,
  serialization_failure,
  deadlock_detected,
  protocol_violation,
  connection_failure,
  invalid_catalog_name,
  object_in_use,
};

/// Returns the five-character SQLSTATE of `condition`.
std::string_view sqlstate_of(sql_condition condition) noexcept;

/// Returns true when `sqlstate` is `condition`'s code.
bool is(std::string_view sqlstate, sql_condition condition) noexcept;

/// Returns the kind of `sqlstate` by the table: its own row, else its class's, else sql.
error_kind kind_of_sqlstate(std::string_view sqlstate) noexcept;

/// Returns the table's hint for `sqlstate` (empty when it has none).
std::string hint_of_sqlstate(std::string_view sqlstate);

/// Returns the hint for a connection attempt that failed with libpq's `reason`: the table's
/// hint for a database that does not exist (3D000, which libpq reports only in words: the
/// server refuses it during the handshake), else to check the server and the address.
std::string connect_failure_hint(std::string_view reason);

}  // namespace pgkit::detail
