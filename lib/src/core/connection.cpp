#include "pgkit/connection.hpp"

#include "core/pqxx_compat.hpp"
#include "pgkit/config.hpp"
#include "pgkit/error.hpp"

namespace pgkit {

std::unique_ptr<pqxx::connection> connect(const std::string& conninfo) {
  try {
    return std::make_unique<pqxx::connection>(conninfo);
  } catch (const pqxx::broken_connection& e) {
    std::string reason = e.what();
    while (!reason.empty() && (reason.back() == '\n' || reason.back() == ' '))
      reason.pop_back();
    std::string where = conninfo.empty() ? std::string{"the default server (libpq defaults)"}
                                         : "'" + conninfo + "'";
    throw error(error_kind::connection, "cannot connect to " + where + ": " + reason,
                "check that the server is running and accepts connections at that address, "
                "or pass --wait SECONDS to wait for it");
  }
}

std::unique_ptr<pqxx::connection> connect(const connection_config& config) {
  auto conninfo = config.conninfo();
  try {
    auto connection = std::make_unique<pqxx::connection>(conninfo);
    detail::disable_reactivation(*connection);
    return connection;
  } catch (const pqxx::broken_connection& e) {
    std::string reason = e.what();
    while (!reason.empty() && (reason.back() == '\n' || reason.back() == ' '))
      reason.pop_back();
    std::string from = config.source.empty() ? "" : " (" + config.source + ")";
    throw error(error_kind::connection,
                "cannot connect to " + config.describe() + from + ": " + reason,
                "check that the server is running and accepts connections at that address");
  }
}

}  // namespace pgkit
