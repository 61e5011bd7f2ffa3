#include "pgkit/error.hpp"

#include <utility>

#include "core/notices.hpp"
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
  if (sqlstate == "23505")
    return error_kind::unique_violation;
  if (sqlstate == "23503")
    return error_kind::foreign_key_violation;
  if (sqlstate == "23514")
    return error_kind::check_violation;
  if (sqlstate == "23502")
    return error_kind::not_null_violation;
  if (sqlstate == "40001")
    return error_kind::serialization_failure;
  if (sqlstate == "40P01")
    return error_kind::deadlock;
  if (sqlstate == "55P03")
    return error_kind::lock_timeout;
  if (sqlstate == "57014")
    return error_kind::canceled;
  // Class 08 (connection exception) and the admin-shutdown family of 57P0x.
  if (sqlstate.substr(0, 2) == "08" || sqlstate == "57P01" || sqlstate == "57P02" ||
      sqlstate == "57P03") {
    return error_kind::connection_lost;
  }
  if (sqlstate == "42P01" || sqlstate == "42883" || sqlstate == "3F000" || sqlstate == "42704" ||
      sqlstate == "42703") {
    return error_kind::undefined_object;
  }
  return error_kind::sql;
}

error::error(error_kind kind, const std::string& message, std::string hint, std::string sqlstate)
    : std::runtime_error(redact_secrets(message)),
      m_kind(kind),
      m_hint(redact_secrets(hint)),
      m_sqlstate(std::move(sqlstate)) {}

std::string detail::connection_lost_hint() {
  return "the server closed this connection (a restart, a failover or pg_terminate_backend); "
         "what was not committed is rolled back: run it again once the server accepts "
         "connections";
}

namespace {

// The hint of a server-reported error that ends the session (57P01 administrator command,
// 57P02 crash shutdown, 57P03 cannot connect now, class 08) when the caller gave none.
std::string default_hint(std::string_view sqlstate, std::string hint) {
  if (hint.empty() && kind_from_sqlstate(sqlstate) == error_kind::connection_lost)
    return detail::connection_lost_hint();
  return hint;
}

}  // namespace

sql_error::sql_error(const std::string& message, std::string sqlstate, std::string query,
                     std::string hint)
    : error(kind_from_sqlstate(sqlstate), message, default_hint(sqlstate, std::move(hint)),
            sqlstate),
      m_query(redact_secrets(query)) {}

}  // namespace pgkit
