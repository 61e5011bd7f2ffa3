#include "pgkit/error.hpp"

#include <utility>

#include "core/notices.hpp"
#include "core/sqlstate.hpp"
#include "pgkit/redact.hpp"

namespace pgkit {

std::string_view to_string(error_kind kind) noexcept {
  switch (kind) {
    case error_kind::usage:
      return "usage";
    case error_kind::config:
      return "config";
    case error_kind::connection:
      return "connection";
    case error_kind::connection_lost:
      return "connection_lost";
    case error_kind::timeout:
      return "timeout";
    case error_kind::unique_violation:
      return "unique_violation";
    case error_kind::foreign_key_violation:
      return "foreign_key_violation";
    case error_kind::check_violation:
      return "check_violation";
    case error_kind::not_null_violation:
      return "not_null_violation";
    case error_kind::serialization_failure:
      return "serialization_failure";
    case error_kind::deadlock:
      return "deadlock";
    case error_kind::lock_timeout:
      return "lock_timeout";
    case error_kind::canceled:
      return "canceled";
    case error_kind::undefined_object:
      return "undefined_object";
    case error_kind::sql:
      return "sql";
    case error_kind::check_failed:
      return "check_failed";
    case error_kind::internal:
      return "internal";
  }
  return "unknown";
}

error_kind kind_from_sqlstate(std::string_view sqlstate) noexcept {
  return detail::kind_of_sqlstate(sqlstate);
}

error::error(error_kind kind, const std::string& message, std::string hint, std::string sqlstate)
    : std::runtime_error(redact_secrets(message)),
      m_kind(kind),
      m_hint(redact_secrets(hint)),
      m_sqlstate(std::move(sqlstate)) {}

std::string detail::connection_lost_hint() {
  return detail::hint_of_sqlstate(detail::sqlstate_of(detail::sql_condition::connection_failure));
}

namespace {

// The table's hint for a server-reported error when the caller gave none.
std::string default_hint(std::string_view sqlstate, std::string hint) {
  return hint.empty() ? detail::hint_of_sqlstate(sqlstate) : hint;
}

}  // namespace

sql_error::sql_error(const std::string& message, std::string sqlstate, std::string query,
                     std::string hint)
    : error(kind_from_sqlstate(sqlstate), message, default_hint(sqlstate, std::move(hint)),
            sqlstate),
      m_query(redact_secrets(query)) {}

}  // namespace pgkit
