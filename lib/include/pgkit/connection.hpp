#pragma once
/// Opening a single connection, with errors a person can act on and no password in them.

#include <memory>
#include <string>

#include <pqxx/connection>

namespace pgkit {

/// Opens a connection for a libpq URL or conninfo string. Throws pgkit::error of kind
/// `connection` whose message shows the address redacted and libpq's reason.
std::unique_ptr<pqxx::connection> connect(const std::string& conninfo);

}  // namespace pgkit
