#pragma once
/// Opening a single connection, with errors a person can act on and no password in them.

#include <memory>
#include <string>

#include <pqxx/connection>

namespace pgkit {

struct connection_config;

/// Opens a connection for a libpq URL or conninfo string. Throws pgkit::error of kind
/// `connection` whose message shows the address redacted and libpq's reason.
std::unique_ptr<pqxx::connection> connect(const std::string& conninfo);

/// Opens a connection as `config` describes (its connect timeout included). Throws
/// pgkit::error of kind `connection` naming config.describe() (never the password) and libpq's
/// reason, or config_error when the configuration cannot be used.
std::unique_ptr<pqxx::connection> connect(const connection_config& config);

}  // namespace pgkit
