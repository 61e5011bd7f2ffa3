#pragma once
// One run's state, built once from the global options: the connection settings (DATABASE_URL,
// database.toml and `${VAR}` values are read at most once per run), the schema taken from the
// same reading, the way to reach the server, and the output layer. Resolution order
// (docs/architecture.md): --addr URL, DATABASE_URL, --config FILE / --connection NAME, libpq's
// defaults.

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <pqxx/connection>

#include "command.hpp"
#include "output.hpp"
#include "pgkit/config.hpp"
#include "pgkit/pool.hpp"

namespace pgkit::cli {

class context {
 public:
  /// Builds the context of a run; reads nothing yet.
  explicit context(const global_options& globals);

  /// Returns the global options of the run.
  const global_options& globals() const noexcept { return m_globals; }
  /// Returns how this run prints.
  const output& out() const noexcept { return m_output; }

  /// Returns the connection settings the global options select, resolved on first use and kept.
  /// Throws pgkit::config_error (exit 2) when the selection is unusable.
  const connection_config& connection();

  /// Returns the schema pgkit's tables live in: --schema, else the `schema` key of the
  /// connection that connection() resolved, else "pgkit".
  const std::string& schema();

  /// Opens a connection. With a non-zero `wait`, retries until the server accepts connections
  /// or `wait` has passed. With --verbose, says where it connects (password redacted). Throws
  /// pgkit::error of kind `connection` with the address redacted.
  std::unique_ptr<pqxx::connection> connect(std::chrono::milliseconds wait = {});

  /// Returns a pool of one connection, opened now, for the commands whose library call takes a
  /// pool. Says where it connects with --verbose, like connect().
  std::shared_ptr<pool> connect_pool();

 private:
  void say_where();

  const global_options& m_globals;
  output m_output;
  std::optional<connection_config> m_connection;
  std::optional<std::string> m_schema;
};

}  // namespace pgkit::cli
