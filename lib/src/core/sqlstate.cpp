#include "core/sqlstate.hpp"

#include <array>
#include <iterator>

namespace pgkit::detail {
namespace {

struct sqlstate_row {
  std::string_view code;  // five characters, or two for a whole class
  error_kind kind;
  const char* hint;
};

constexpr const char* k_session_ended =
    "the server closed this connection (a restart, a failover or pg_terminate_backend); what was "
    "not committed is rolled back: run it again once the server accepts connections";

// Exact codes first; a class row (two characters) applies to the codes of its class that have
// no row of their own.
constexpr std::array<sqlstate_row, 33> k_table{{
    {"23505", error_kind::unique_violation, ""},
    {"23503", error_kind::foreign_key_violation, ""},
    {"23514", error_kind::check_violation, ""},
    {"23502", error_kind::not_null_violation, ""},
    {"22P02", error_kind::sql, ""},
    {"40001", error_kind::serialization_failure, ""},
    {"40P01", error_kind::deadlock, ""},
    {"40000", error_kind::sql, ""},
    {"55P03", error_kind::lock_timeout, ""},
    {"57014", error_kind::canceled, ""},
    {"42P01", error_kind::undefined_object, ""},
    {"42883", error_kind::undefined_object, ""},
    {"3F000", error_kind::undefined_object, ""},
    {"42704", error_kind::undefined_object, ""},
    {"42703", error_kind::undefined_object, ""},
    {"0A000", error_kind::sql, ""},
    {"25006", error_kind::sql, ""},
    {"25P02", error_kind::sql,
     "an earlier statement of this transaction failed, so PostgreSQL rolled it back; nothing of "
     "it can commit: run the whole transaction again"},
    // A protocol violation is a statement and parameters that do not match (a wrong number of
    // parameters): the caller's mistake, and the connection stays usable.
    {"08P01", error_kind::usage,
     "the statement and its parameters do not match; the connection is still usable"},
    {"08000", error_kind::connection_lost, k_session_ended},
    {"08003", error_kind::connection_lost, k_session_ended},
    {"08006", error_kind::connection_lost, k_session_ended},
    {"08007", error_kind::connection_lost,
     "the connection broke during COMMIT; check whether the change was applied"},
    {"08001", error_kind::connection, ""},
    {"3D000", error_kind::connection,
     "the server runs, but has no database of that name: create it (createdb, or CREATE DATABASE) "
     "or "
     "correct the database name in the address"},
    {"08004", error_kind::connection, ""},
    {"57P01", error_kind::connection_lost, k_session_ended},
    {"57P02", error_kind::connection_lost, k_session_ended},
    {"57P03", error_kind::connection_lost, k_session_ended},
    {"57P04", error_kind::connection_lost, k_session_ended},
    {"57P05", error_kind::connection_lost, k_session_ended},
    // Classes.
    {"08", error_kind::connection_lost, k_session_ended},
    {"40", error_kind::sql, ""},
}};

// The code of each sql_condition, in the enum's order.
constexpr std::array<std::string_view, 18> k_conditions{{
    "23505",
    "23503",
    "23514",
    "22P02",
    "42P01",
    "3F000",
    "0A000",
    "25006",
    "25P02",
    "57014",
    "55P03",
    "40000",
    "40001",
    "40P01",
    "08P01",
    "08006",
    "3D000",
    "55006",
}};
static_assert(std::size(k_conditions) ==
              static_cast<std::size_t>(sql_condition::object_in_use) + 1);

const sqlstate_row* find(std::string_view sqlstate) noexcept {
  if (sqlstate.size() != 5)
    return nullptr;
  for (const auto& row : k_table) {
    if (row.code == sqlstate)
      return &row;
  }
  for (const auto& row : k_table) {
    if (row.code.size() == 2 && sqlstate.substr(0, 2) == row.code)
      return &row;
  }
  return nullptr;
}

}  // namespace

std::string_view sqlstate_of(sql_condition condition) noexcept {
  return k_conditions[static_cast<std::size_t>(condition)];
}

bool is(std::string_view sqlstate, sql_condition condition) noexcept {
  return sqlstate == sqlstate_of(condition);
}

error_kind kind_of_sqlstate(std::string_view sqlstate) noexcept {
  const auto* row = find(sqlstate);
  return row == nullptr ? error_kind::sql : row->kind;
}

std::string hint_of_sqlstate(std::string_view sqlstate) {
  const auto* row = find(sqlstate);
  return row == nullptr ? std::string{} : std::string{row->hint};
}

std::string connect_failure_hint(std::string_view reason) {
  // The server's words, in English unless its lc_messages say otherwise (then the general
  // hint applies).
  constexpr std::string_view database = "FATAL:  database \"";
  constexpr std::string_view missing = "\" does not exist";
  auto at = reason.find(database);
  if (at != std::string_view::npos && reason.find(missing, at) != std::string_view::npos)
    return hint_of_sqlstate(sqlstate_of(sql_condition::invalid_catalog_name));
  return "check that the server is running and accepts connections at that address";
}

}  // namespace pgkit::detail
