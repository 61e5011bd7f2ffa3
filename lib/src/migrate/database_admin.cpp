// create_database, drop_database and wait_for_server: the database as a whole, reached through
// the server's maintenance database as dbmate does.

#include <libpq-fe.h>

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <random>
#include <thread>

#include "config/conninfo.hpp"
#include "core/sqlstate.hpp"
#include "core/text.hpp"
#include "pgkit/connection.hpp"
#include "pgkit/database.hpp"
#include "pgkit/error.hpp"
#include "wire/wire.hpp"

namespace pgkit {
namespace {

using detail::wire;

struct conninfo_options_deleter {
  void operator()(PQconninfoOption* options) const { PQconninfoFree(options); }
};

// libpq's default for `keyword` (its environment variable, else its built-in default).
std::string libpq_default(const std::string& keyword) {
  std::unique_ptr<PQconninfoOption, conninfo_options_deleter> defaults{PQconndefaults()};
  for (auto* option = defaults.get(); option != nullptr && option->keyword != nullptr; ++option) {
    if (keyword == option->keyword && option->val != nullptr)
      return option->val;
  }
  return {};
}

std::string pair_value(const detail::conninfo_pairs& pairs, const std::string& keyword) {
  for (const auto& [key, value] : pairs) {
    if (key == keyword)
      return value;
  }
  return {};
}

std::string first_value(const wire& on, const std::string& sql, std::string_view context) {
  auto rows = on.run(sql, {}, detail::result_format::text, context);
  return rows.rows() == 0 || rows.is_null(0, 0) ? std::string{} : rows.bytes(0, 0);
}

// An open connection to the maintenance database of `config`'s server, and the target's name.
struct maintenance_session {
  explicit maintenance_session(const connection_config& config) : target(database_name(config)) {
    auto maintenance = config;
    maintenance.database = maintenance_database;
    connection = connect(maintenance);
  }
  bool exists() const {
    return first_value(
               wire::of(*connection),
               "SELECT count(*) FROM pg_database WHERE datname = " + detail::quote_literal(target),
               "looking for database " + target) != "0";
  }

  std::string target;
  std::unique_ptr<pqxx::connection> connection;
};

}  // namespace

std::string database_name(const connection_config& config) {
  auto pairs = detail::merged_pairs(config);
  for (const auto& keyword : {"dbname", "user"}) {
    auto value = pair_value(pairs, keyword);
    if (value.empty())
      value = libpq_default(keyword);
    if (!value.empty())
      return value;
  }
  throw config_error("the connection names no database and libpq has no default for one",
                     "name the database in the URL (postgresql://host/NAME) or set PGDATABASE");
}

database_change create_database(const connection_config& config) {
  maintenance_session session{config};
  if (session.exists())
    return database_change::nothing_to_do;
  wire::of(*session.connection)
      .script("CREATE DATABASE " + detail::quote_identifier(session.target),
              "creating database " + session.target);
  return database_change::done;
}

database_change drop_database(const connection_config& config, drop_mode mode) {
  if (database_name(config) == maintenance_database) {
    throw usage_error(std::string{"refusing to drop database "} + maintenance_database +
                          ": it is the database pgkit connects to in order to drop one",
                      "name the database to drop in the URL or --connection");
  }
  maintenance_session session{config};
  if (!session.exists())
    return database_change::nothing_to_do;
  const auto on = wire::of(*session.connection);
  const auto name = detail::quote_literal(session.target);
  // Autovacuum workers do not count: DROP DATABASE ends them itself.
  const auto others = "FROM pg_stat_activity WHERE datname = " + name +
                      " AND pid <> pg_backend_pid() AND backend_type <> 'autovacuum worker'";
  const auto other_sessions = [&] {
    return first_value(on, "SELECT string_agg(pid::text, ', ' ORDER BY pid) " + others,
                       "looking for sessions of database " + session.target);
  };
  auto drop = "DROP DATABASE " + detail::quote_identifier(session.target);
  const auto context = "dropping database " + session.target;
  if (mode == drop_mode::refuse_in_use) {
    // The server decides: DROP DATABASE gives sessions that are leaving (a client that has just
    // closed, whose backend is still exiting) five seconds to go, and refuses (55006) only for
    // those that stay. Counting pg_stat_activity first would refuse for the leaving ones too.
    try {
      on.script(drop, context);
      return database_change::done;
    } catch (const error& e) {
      if (!detail::is(e.sqlstate(), detail::sql_condition::object_in_use))
        throw;
    }
    auto pids = other_sessions();
    throw error(error_kind::sql,
                "refusing to drop database " + session.target +
                    ": other sessions are connected to it" +
                    (pids.empty() ? std::string{} : " (backend pids " + pids + ")"),
                "stop them, or pass --force to end them",
                std::string{detail::sqlstate_of(detail::sql_condition::object_in_use)});
  }
  auto pids = other_sessions();
  if (!pids.empty()) {
    if (std::stoi(first_value(on, "SHOW server_version_num", "reading the server version")) >=
        130000) {
      drop += " WITH (FORCE)";
    } else {
      first_value(on, "SELECT count(pg_terminate_backend(pid)) " + others,
                  "ending the sessions of database " + session.target);
    }
  }
  on.script(drop, context);
  return database_change::done;
}

throwaway_database::throwaway_database(const connection_config& config) : m_config(config) {
  maintenance_session session{config};
  const auto on = wire::of(*session.connection);
  if (first_value(on, "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user",
                  "reading the role's rights") != "t") {
    throw usage_error(
        "the role may not create databases (it has no CREATEDB), so pgkit cannot "
        "build the migrations' schema in a throwaway database",
        "pass --dev-url URL naming a database pgkit may migrate, or grant CREATEDB");
  }
  std::random_device random;
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%08x", static_cast<unsigned>(random()));
  m_name = "pgkit_scratch_" + std::to_string(::getpid()) + "_" + suffix;
  on.script("CREATE DATABASE " + detail::quote_identifier(m_name),
            "creating the scratch database " + m_name);
  m_config.database = m_name;
}

throwaway_database::~throwaway_database() {
  try {
    drop_database(m_config, drop_mode::force);
  } catch (...) {
    // A destructor: the name is in the messages of whoever created it.
  }
}

void wait_for_server(const connection_config& config, std::chrono::milliseconds timeout,
                     const std::function<bool()>& interrupted) {
  const auto conninfo = config.conninfo();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (interrupted && interrupted())
      throw error(error_kind::canceled, "interrupted while waiting for the server");
    if (PQping(conninfo.c_str()) == PQPING_OK)
      return;
    if (std::chrono::steady_clock::now() >= deadline)
      break;
    std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(
        std::chrono::milliseconds{250}, deadline - std::chrono::steady_clock::now()));
  }
  // The ping says only that nothing answered; a connection attempt says why.
  std::string reason = "the server did not answer";
  try {
    connect(config);
  } catch (const error& e) {
    reason = e.what();
  }
  throw error(error_kind::timeout,
              "the server did not accept connections within " +
                  (timeout.count() % 1000 == 0 ? std::to_string(timeout.count() / 1000) + " s"
                                               : std::to_string(timeout.count()) + " ms") +
                  "; the last attempt: " + reason,
              "check that the server is running at that address, or wait longer with "
              "--wait-timeout");
}

}  // namespace pgkit
