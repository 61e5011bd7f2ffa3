#pragma once
/// Opening a single connection, with errors a person can act on and no password in them, and
/// where the server's notices go (the library never prints them).

#include <functional>
#include <memory>
#include <string>

#include <pqxx/connection>

namespace pgkit {

struct connection_config;

/// Something the server said outside of a result: a NOTICE or WARNING (`RAISE NOTICE`,
/// "relation ... already exists, skipping"), or the FATAL message of a server that ends the
/// session ("terminating connection due to administrator command").
struct server_notice {
  std::string severity;  ///< "NOTICE", "WARNING", "FATAL", ... (never translated)
  std::string sqlstate;  ///< the SQLSTATE, e.g. "00000" or "57P01"
  std::string message;   ///< the primary message, without severity or line breaks
};

/// Receives the notices of every connection pgkit opens (pool, listener, single connections),
/// on the thread that is using the connection at the time; it must not throw.
using notice_handler = std::function<void(const server_notice&)>;

/// Sets the process-wide notice handler; an empty one (the default) discards notices. Safe to
/// call from any thread at any time; connections already open use the new handler at once.
void set_notice_handler(notice_handler handler);

/// Opens a connection for a libpq URL or conninfo string. Throws pgkit::error of kind
/// `connection` whose message shows the address redacted and libpq's reason, or config_error
/// when the string cannot be parsed.
std::unique_ptr<pqxx::connection> connect(const std::string& conninfo);

/// Opens a connection as `config` describes (its connect timeout included). Throws
/// pgkit::error of kind `connection` naming config.describe() (never the password) and libpq's
/// reason, or config_error when the configuration cannot be used.
std::unique_ptr<pqxx::connection> connect(const connection_config& config);

}  // namespace pgkit
