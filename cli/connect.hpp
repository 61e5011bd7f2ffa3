#pragma once
// How every command turns the global options into a database connection. Resolution order
// (DESIGN.md): --addr URL, DATABASE_URL, --config FILE / --connection NAME, libpq's defaults.

#include <chrono>
#include <memory>
#include <string>

#include <pqxx/connection>

#include "command.hpp"
#include "pgkit/config.hpp"

namespace pgkit::cli {

/// Returns the connection settings the global options select, reading DATABASE_URL, the
/// configuration file and `${VAR}` values from the environment. Throws pgkit::config_error
/// (exit 2) when the selection is unusable.
connection_config resolve_connection(const global_options& globals);

/// Returns the libpq conninfo string that the global options select (it contains the
/// password: never print it). Throws pgkit::config_error when the selection is unusable.
std::string resolve_conninfo(const global_options& globals);

/// Returns the schema pgkit's tables live in: --schema, else the connection's `schema` key,
/// else "pgkit".
std::string resolve_schema(const global_options& globals);

/// Opens a connection for the global options. With a non-zero `wait`, retries until the server
/// accepts connections or `wait` has passed. With --verbose, says on stderr where it connects
/// (password redacted). Throws pgkit::error of kind `connection` with the address redacted.
std::unique_ptr<pqxx::connection> open_connection(const global_options& globals,
                                                  std::chrono::seconds wait = {});

}  // namespace pgkit::cli
