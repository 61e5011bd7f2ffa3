#include "connect.hpp"

#include <cstdlib>
#include <thread>

#include "pgkit/connection.hpp"
#include "pgkit/error.hpp"

namespace pgkit::cli {

std::string resolve_conninfo(const global_options& globals) {
  if (!globals.addr.empty())
    return globals.addr;
  // The CLI reads the environment; the library is handed values.
  if (const char* url = std::getenv("DATABASE_URL"); url != nullptr && *url != '\0')
    return url;
  return {};
}

std::string resolve_schema(const global_options& globals) {
  return globals.schema.empty() ? std::string{"pgkit"} : globals.schema;
}

std::unique_ptr<pqxx::connection> open_connection(const global_options& globals,
                                                  std::chrono::seconds wait) {
  auto conninfo = resolve_conninfo(globals);
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    try {
      return connect(conninfo);
    } catch (const error& e) {
      if (e.kind() != error_kind::connection || std::chrono::steady_clock::now() >= deadline) {
        throw;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

}  // namespace pgkit::cli
