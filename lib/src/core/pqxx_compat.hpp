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

// libpq's connection type (PGconn), named without including libpq-fe.h here.
struct pg_conn;

namespace pgkit::detail {

/// The major version of the libpqxx that pgkit was compiled against.
inline constexpr int pqxx_major = PQXX_VERSION_MAJOR;

/// Returns libpq's handle of `connection`, on which the wire layer sends every statement of
/// pgkit's (libpqxx polls the socket for notifications after every statement of its own, two
/// system calls that a cache read cannot afford). libpqxx 7.8 and later can hand the handle
/// over (release_raw_connection) but not lend it, and 6.4 has no way at all: this is the one
/// function that reads it; built and tested against libpqxx 6.4.5 and 7.10 (docs/architecture.md).
pg_conn* libpq_handle(const pqxx::connection& connection) noexcept;

/// Returns libpq's handle of the connection `tx` runs on (6.4 gives a transaction only the
/// connection's base class).
pg_conn* libpq_handle(pqxx::transaction_base& tx) noexcept;

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
/// throws it (pgkit::translate). `context` says what pgkit was doing ("applying migration
/// ..."); it is prefixed to the message. Passwords never reach the message.
[[noreturn]] void rethrow_as_pgkit(std::string_view context = {});

/// Rethrows the exception being handled: a libpqxx exception as pgkit::translate turns it,
/// anything else (a pgkit::error, the application's own exceptions) unchanged.
[[noreturn]] void rethrow_translated();

}  // namespace pgkit::detail
