#pragma once
// The stores' side of the wire layer (wire/wire.hpp): running a store's
// statement on a lease. On a direct connection a statement is prepared once per connection
// under its name and reused; with pooler = "pgbouncer-transaction" it is sent unnamed every
// time, because PgBouncer in transaction mode may run each transaction on a different server
// connection. The names prepared so far live with the pooled connection, so a connection that
// is closed and replaced prepares them again.
//
// Store SQL is written one way: each store has one statements header
// (stores/<store>_statements.hpp) of statement_text constants, `{S}` standing for the schema.

#include <string>
#include <vector>

#include "core/pqxx_compat.hpp"
#include "core/sqlstate.hpp"
#include "pgkit/config.hpp"
#include "pgkit/error.hpp"
#include "pgkit/pool.hpp"
#include "pool/pooled_connection.hpp"
#include "wire/wire.hpp"

namespace pgkit::detail {

/// The pool's private view of a lease.
struct lease_access {
  static pooled_connection& slot(const lease& borrowed) noexcept { return *borrowed.m_connection; }
};

/// The statements prepared on the lease's connection, or nullptr when statements must go
/// unnamed (a pooler in transaction mode).
inline prepared_statements* prepared_on(const lease& borrowed) noexcept {
  if (borrowed.config().pooler == pooler_mode::pgbouncer_transaction)
    return nullptr;
  return &lease_access::slot(borrowed).prepared;
}

/// The wire of the lease's connection, with the statements prepared on it.
inline wire wire_of(const lease& borrowed) noexcept {
  return wire{libpq_handle(borrowed.connection()), prepared_on(borrowed)};
}

/// Returns `message` without the server's DETAIL and what follows it: for a constraint the
/// DETAIL repeats the row or the key ("Failing row contains (...)", "Key (...)=(...)"), which
/// in a store holds password hashes, token digests and user ids.
inline std::string without_row_data(std::string_view message) {
  return std::string{message.substr(0, message.find("\nDETAIL:"))};
}

/// Runs `stmt` on `on` (results in `format`). Outside a transaction block it commits by
/// itself. Throws pgkit::error, never with the row data of the server's DETAIL; `context` says
/// what the store was doing.
inline result run_statement(const wire& on, const statement& stmt,
                            const std::vector<bound_param>& parameters, std::string_view context,
                            const stop_control& control = {},
                            result_format format = result_format::binary) {
  try {
    return on.run(stmt, parameters, format, context, control);
  } catch (const sql_error& e) {
    std::string_view message = e.what();
    if (message.find("\nDETAIL:") == std::string_view::npos)
      throw;
    throw sql_error(without_row_data(message), e.sqlstate(), e.query(), e.hint());
  }
}

/// Same, on the lease's connection.
inline result run_statement(const lease& borrowed, const statement& stmt,
                            const std::vector<bound_param>& parameters, std::string_view context,
                            const stop_control& control = {},
                            result_format format = result_format::binary) {
  return run_statement(wire_of(borrowed), stmt, parameters, context, control, format);
}

/// The command that applies `module` in `schema` ("run pgkit apply cache --schema app").
inline std::string apply_hint(std::string_view module, const std::string& schema) {
  std::string fix = "run pgkit apply " + std::string{module};
  if (schema != "pgkit")
    fix += " --schema " + schema;
  return fix;
}

/// The error of a store whose module is not applied in `schema`: kind undefined_object, with
/// what was missing (`found`, optional) and the command that applies it. One wording for every
/// store.
inline error module_not_applied(std::string_view module, const std::string& schema,
                                std::string_view found = {}) {
  std::string message = "the " + std::string{module} + " module is not applied in schema " + schema;
  if (!found.empty())
    message += " (" + std::string{found} + ")";
  return error(error_kind::undefined_object, message, apply_hint(module, schema),
               std::string{sqlstate_of(sql_condition::undefined_table)});
}

/// Rethrows `e` (call only inside its handler) as a store reports it: a missing table, schema,
/// column or function of the store's own SQL becomes module_not_applied, saying what was missing:
/// `found`, else the server's words after what the store was doing.
[[noreturn]] inline void rethrow_store_error(const error& e, std::string_view module,
                                             const std::string& schema,
                                             std::string_view found = {}) {
  if (e.kind() != error_kind::undefined_object || !e.hint().empty())
    throw;
  std::string_view said = e.what();
  said = said.substr(0, said.find('\n'));
  std::string_view context;
  constexpr std::string_view marker = ": ERROR:  ";
  if (auto at = said.find(marker); at != std::string_view::npos) {
    context = said.substr(0, at);
    said.remove_prefix(at + marker.size());
  }
  if (!found.empty() || context.empty())
    throw module_not_applied(module, schema, found.empty() ? said : found);
  auto missing = module_not_applied(module, schema, said);
  throw error(missing.kind(), std::string{context} + ": " + missing.what(), missing.hint(),
              missing.sqlstate());
}

/// Returns how many statements are prepared on the lease's connection (for tests).
inline std::size_t prepared_count(const lease& borrowed) noexcept {
  return lease_access::slot(borrowed).prepared.size();
}

}  // namespace pgkit::detail
