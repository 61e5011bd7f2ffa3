#include "context.hpp"

#include "env_file.hpp"

#include <cctype>
#include <cstdlib>
#include <thread>

#include "pgkit/connection.hpp"
#include "pgkit/error.hpp"

namespace pgkit::cli {

context::context(const global_options& globals) : m_globals{globals}, m_output{globals} {
  load_env_file(globals.env_file);
  if (m_output.verbose()) {
    // The library never prints; with -v the server's notices and warnings are shown.
    set_notice_handler([out = m_output](const server_notice& notice) {
      std::string severity = notice.severity;
      for (auto& c : severity)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.detail("server " + severity + ": " + notice.message);
    });
  }
}

const connection_config& context::connection() {
  if (!m_connection) {
    // The CLI reads the environment; the library is handed values.
    connection_request request;
    request.addr = m_globals.addr;
    if (const char* url = std::getenv("DATABASE_URL"); url != nullptr)
      request.database_url = url;
    request.config_file = m_globals.config_file;
    request.search = default_config_files();
    request.connection = m_globals.connection.empty() ? std::string{"main"} : m_globals.connection;
    m_connection = pgkit::resolve_connection(request, process_environment());
  }
  return *m_connection;
}

const std::string& context::schema() {
  if (!m_schema) {
    m_schema =
        m_globals.schema.empty() ? pgkit::resolve_schema({}, connection()) : m_globals.schema;
  }
  return *m_schema;
}

void context::say_where() {
  const auto& config = connection();
  m_output.detail("connecting to " + config.describe() + " (from " + config.source + ")");
}

std::unique_ptr<pqxx::connection> context::connect(std::chrono::milliseconds wait) {
  say_where();
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    try {
      return pgkit::connect(connection());
    } catch (const error& e) {
      if (e.kind() != error_kind::connection || std::chrono::steady_clock::now() >= deadline)
        throw;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

std::shared_ptr<pool> context::connect_pool() {
  say_where();
  auto config = connection();
  config.pool_size = 1;
  config.min_idle = 0;
  auto connections = std::make_shared<pool>(config);
  connections->warm_up();
  return connections;
}

}  // namespace pgkit::cli
