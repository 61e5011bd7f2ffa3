#include "connect.hpp"

#include <cctype>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "pgkit/connection.hpp"
#include "pgkit/error.hpp"

namespace pgkit::cli {

connection_config resolve_connection(const global_options& globals) {
  if (globals.verbose) {
    // The library never prints; with -v the server's notices and warnings are shown.
    set_notice_handler([](const server_notice& notice) {
      std::string severity = notice.severity;
      for (auto& c : severity)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::cerr << "pgkit: server " << severity << ": " << notice.message << '\n';
    });
  }
  // The CLI reads the environment; the library is handed values.
  connection_request request;
  request.addr = globals.addr;
  if (const char* url = std::getenv("DATABASE_URL"); url != nullptr)
    request.database_url = url;
  request.config_file = globals.config_file;
  request.search = default_config_files();
  request.connection = globals.connection.empty() ? std::string{"main"} : globals.connection;
  return pgkit::resolve_connection(request, process_environment());
}

std::string resolve_conninfo(const global_options& globals) {
  return resolve_connection(globals).conninfo();
}

std::string resolve_schema(const global_options& globals) {
  if (!globals.schema.empty())
    return globals.schema;
  return pgkit::resolve_schema({}, resolve_connection(globals));
}

std::unique_ptr<pqxx::connection> open_connection(const global_options& globals,
                                                  std::chrono::seconds wait) {
  auto config = resolve_connection(globals);
  if (globals.verbose) {
    std::cerr << "pgkit: connecting to " << config.describe() << " (from " << config.source
              << ")\n";
  }
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    try {
      return connect(config);
    } catch (const error& e) {
      if (e.kind() != error_kind::connection || std::chrono::steady_clock::now() >= deadline) {
        throw;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

}  // namespace pgkit::cli
