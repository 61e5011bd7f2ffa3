#pragma once
// Running pgkit's own statements through a lease (used by the stores). A statement has a name
// and SQL text: on a direct connection it is prepared once per connection under that name and
// reused; with pooler = "pgbouncer-transaction" it is sent unnamed every time (exec_params),
// because PgBouncer in transaction mode may run each transaction on a different server
// connection. The names prepared so far live with the pooled connection, so a connection that
// is closed and replaced prepares them again.

#include <cstdint>
#include <cstdio>
#include <string>

#include "core/pqxx_compat.hpp"
#include "pgkit/config.hpp"
#include "pgkit/error.hpp"
#include "pgkit/pool.hpp"
#include "pool/pooled_connection.hpp"

namespace pgkit::detail {

/// The pool's private view of a lease.
struct lease_access {
  static pooled_connection& slot(const lease& borrowed) noexcept { return *borrowed.m_connection; }
};

/// Returns `_` and eight hex digits of a hash of `schema`: statement names end with it, so that
/// stores on different schemas can share a pool's connections.
inline std::string statement_suffix(const std::string& schema) {
  std::uint32_t hash = 2166136261U;
  for (char c : schema) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 16777619U;
  }
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", hash);
  return std::string{"_"} + hex;
}

/// Prepares `sql` as `name` on the lease's connection unless that was done before. Throws
/// pgkit::error of kind `internal` when `name` was prepared with different SQL.
inline void ensure_prepared(const lease& borrowed, const std::string& name,
                            const std::string& sql) {
  auto& slot = lease_access::slot(borrowed);
  auto found = slot.prepared.find(name);
  if (found != slot.prepared.end()) {
    if (found->second != sql) {
      throw error(error_kind::internal,
                  "statement '" + name + "' was prepared with different SQL on this connection");
    }
    return;
  }
  prepare(*slot.connection, name, sql);
  slot.prepared.emplace(name, sql);
}

/// Runs statement `name` (SQL `sql`, with $1... placeholders) in `tx`, which must be a
/// transaction on the lease's connection. Throws what libpqxx throws: call it inside a try block
/// whose catch uses rethrow_as_pgkit.
template <typename... Args>
pqxx::result exec_statement(const lease& borrowed, pqxx::transaction_base& tx,
                            const std::string& name, const std::string& sql, Args&&... args) {
  if (borrowed.config().pooler == pooler_mode::pgbouncer_transaction)
    return exec_params(tx, sql, std::forward<Args>(args)...);
  ensure_prepared(borrowed, name, sql);
  return exec_prepared(tx, name, std::forward<Args>(args)...);
}

/// Same, with parameters only known at run time (std::nullopt is NULL).
inline pqxx::result exec_statement_list(const lease& borrowed, pqxx::transaction_base& tx,
                                        const std::string& name, const std::string& sql,
                                        const param_list& params) {
  if (borrowed.config().pooler == pooler_mode::pgbouncer_transaction)
    return exec_param_list(tx, sql, params);
  ensure_prepared(borrowed, name, sql);
  return exec_prepared_list(tx, name, params);
}

/// Returns how many statements are prepared on the lease's connection (for tests).
inline std::size_t prepared_count(const lease& borrowed) noexcept {
  return lease_access::slot(borrowed).prepared.size();
}

}  // namespace pgkit::detail
