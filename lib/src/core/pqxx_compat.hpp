#pragma once
// The one place that knows libpqxx 6.4 and 7.x apart (see shared notes/libpqxx.md). Everything
// else in pgkit calls these helpers instead of version-specific libpqxx API.

// Debian's 6.4.5 headers leave std::optional support off unless asked.
#ifndef PQXX_HAVE_OPTIONAL
#define PQXX_HAVE_OPTIONAL 1
#endif
#include <pqxx/pqxx>
#include <pqxx/version>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#if PQXX_VERSION_MAJOR > 7 || (PQXX_VERSION_MAJOR == 7 && PQXX_VERSION_MINOR >= 10)
#define PGKIT_PQXX_PARAMS_EXEC 1  // exec(sql, pqxx::params) and exec(pqxx::prepped, params)
#endif

// libpq's connection type (PGconn), named without including libpq-fe.h here.
struct pg_conn;

namespace pgkit::detail {

/// The major version of the libpqxx that pgkit was compiled against.
inline constexpr int pqxx_major = PQXX_VERSION_MAJOR;

/// A bytea parameter, sent in binary format.
#if PQXX_VERSION_MAJOR >= 7
using bytea_param = std::basic_string_view<std::byte>;
inline bytea_param make_bytea_param(std::string_view bytes) {
  return {reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()};
}
#else
using bytea_param = pqxx::binarystring;
inline bytea_param make_bytea_param(std::string_view bytes) {
  return pqxx::binarystring{bytes.data(), bytes.size()};
}
#endif

/// Returns the bytes of a bytea field (which must not be null).
inline std::string read_bytea(const pqxx::field& field) {
#if PQXX_VERSION_MAJOR >= 7
  auto bytes = field.as<std::basic_string<std::byte>>();
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
#else
  pqxx::binarystring bytes{field};
  return bytes.str();
#endif
}

/// Runs a parameterised statement.
template <typename... Args>
pqxx::result exec_params(pqxx::transaction_base& tx, std::string_view sql, Args&&... args) {
#ifdef PGKIT_PQXX_PARAMS_EXEC
  return tx.exec(sql, pqxx::params{std::forward<Args>(args)...});
#else
  return tx.exec_params(std::string{sql}, std::forward<Args>(args)...);
#endif
}

/// Runs a statement prepared on this connection under `name`.
template <typename... Args>
pqxx::result exec_prepared(pqxx::transaction_base& tx, const std::string& name, Args&&... args) {
#ifdef PGKIT_PQXX_PARAMS_EXEC
  return tx.exec(pqxx::prepped{name}, pqxx::params{std::forward<Args>(args)...});
#else
  return tx.exec_prepared(name, std::forward<Args>(args)...);
#endif
}

/// A run-time list of text parameters; std::nullopt is SQL NULL.
using param_list = std::vector<std::optional<std::string>>;

#if PQXX_VERSION_MAJOR >= 7
/// The run-time list as libpqxx 7's parameter object.
inline pqxx::params to_params(const param_list& params) {
  pqxx::params list;
  for (const auto& value : params)
    list.append(value);
  return list;
}
#endif

/// Runs a statement whose parameters are only known at run time.
inline pqxx::result exec_param_list(pqxx::transaction_base& tx, std::string_view sql,
                                    const param_list& params) {
#if PQXX_VERSION_MAJOR >= 7
#ifdef PGKIT_PQXX_PARAMS_EXEC
  return tx.exec(sql, to_params(params));
#else
  return tx.exec_params(sql, to_params(params));
#endif
#else
  return tx.exec_params(std::string{sql}, pqxx::prepare::make_dynamic_params(params));
#endif
}

/// Runs a statement prepared under `name` with parameters only known at run time.
inline pqxx::result exec_prepared_list(pqxx::transaction_base& tx, const std::string& name,
                                       const param_list& params) {
#if PQXX_VERSION_MAJOR >= 7
#ifdef PGKIT_PQXX_PARAMS_EXEC
  return tx.exec(pqxx::prepped{name}, to_params(params));
#else
  return tx.exec_prepared(name, to_params(params));
#endif
#else
  return tx.exec_prepared(name, pqxx::prepare::make_dynamic_params(params));
#endif
}

/// Prepares `sql` under `name` on `connection` (6.4 sends it on first use, 7.x at once).
inline void prepare(pqxx::connection& connection, const std::string& name, const std::string& sql) {
  connection.prepare(name, sql);
}

/// What the server session behind a connection is doing, from libpq's point of view.
enum class session_state {
  idle,            ///< open, outside any transaction block: safe to hand to someone else
  in_transaction,  ///< inside a transaction block (open or failed)
  busy,            ///< a statement or COPY is still running
  broken,          ///< closed or lost
};

/// Returns libpq's handle of `connection`, for statements run below libpqxx while no libpqxx
/// transaction is open on it (the cache store's single statements: libpqxx polls the socket for
/// notifications after every statement, two system calls that a cache read cannot afford).
pg_conn* libpq_handle(const pqxx::connection& connection) noexcept;

/// Returns libpq's handle of the connection `tx` runs on (6.4 gives a transaction only the
/// connection's base class).
pg_conn* libpq_handle(pqxx::transaction_base& tx) noexcept;

/// Returns the state of `connection`'s session without talking to the server.
session_state session_state_of(const pqxx::connection& connection) noexcept;

/// Sends an empty query and returns true when the server answered; never throws.
bool ping(pqxx::connection& connection) noexcept;

/// Stops libpqxx 6.4 from silently reopening a broken connection (7.x never does), so that a
/// pool sees a broken connection as broken.
void disable_reactivation(pqxx::connection& connection) noexcept;

/// Closes a connection; never throws.
inline void close(pqxx::connection& connection) noexcept {
  try {
#if PQXX_VERSION_MAJOR >= 7
    connection.close();
#else
    connection.disconnect();
#endif
  } catch (...) {
    // Closing is best effort: the connection is gone either way.
  }
}

/// Returns the number of rows as a size_t whatever the libpqxx version's size_type.
inline std::size_t row_count(const pqxx::result& result) {
  return static_cast<std::size_t>(result.size());
}

/// Turns the exception being handled (call only inside a catch block) into a pgkit::error and
/// throws it. `context` says what pgkit was doing ("applying migration ..."); it is prefixed
/// to the message. Passwords never reach the message.
[[noreturn]] void rethrow_as_pgkit(std::string_view context = {});

}  // namespace pgkit::detail
