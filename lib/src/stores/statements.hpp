#pragma once
// The stores' side of the one statement layer (query/statement.hpp): running a store's
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
#include "pgkit/config.hpp"
#include "pgkit/error.hpp"
#include "pgkit/pool.hpp"
#include "pool/pooled_connection.hpp"
#include "query/statement.hpp"

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

/// Runs `stmt` on the lease's connection (results in binary format). Outside a transaction
/// block it commits by itself. Throws pgkit::error; `context` says what the store was doing.
inline result run_statement(const lease& borrowed, const statement& stmt,
                            const std::vector<bound_param>& parameters, std::string_view context,
                            const stop_control& control = {}) {
  return run(libpq_handle(borrowed.connection()), prepared_on(borrowed), stmt, parameters,
             result_format::binary, context, control);
}

/// Runs statement `name` (SQL `sql`) with libpqxx in `tx`, which must be a transaction on the
/// lease's connection: prepared once per connection, or unnamed behind PgBouncer. Throws what
/// libpqxx throws (call it inside a try block whose catch uses rethrow_as_pgkit).
template <typename... Args>
pqxx::result exec_statement(const lease& borrowed, pqxx::transaction_base& tx,
                            const std::string& name, const std::string& sql, Args&&... args) {
  auto* prepared = prepared_on(borrowed);
  if (prepared == nullptr)
    return exec_params(tx, sql, std::forward<Args>(args)...);
  if (needs_prepare(*prepared, {name, sql})) {
    prepare(borrowed.connection(), name, sql);
    prepared->emplace(name, sql);
  }
  return exec_prepared(tx, name, std::forward<Args>(args)...);
}

/// Same, with parameters only known at run time (std::nullopt is NULL).
inline pqxx::result exec_statement_list(const lease& borrowed, pqxx::transaction_base& tx,
                                        const std::string& name, const std::string& sql,
                                        const param_list& params) {
  auto* prepared = prepared_on(borrowed);
  if (prepared == nullptr)
    return exec_param_list(tx, sql, params);
  if (needs_prepare(*prepared, {name, sql})) {
    prepare(borrowed.connection(), name, sql);
    prepared->emplace(name, sql);
  }
  return exec_prepared_list(tx, name, params);
}

/// Returns how many statements are prepared on the lease's connection (for tests).
inline std::size_t prepared_count(const lease& borrowed) noexcept {
  return lease_access::slot(borrowed).prepared.size();
}

}  // namespace pgkit::detail
