#pragma once
/// The database itself, as dbmate's operator commands handle it: its name, creating and
/// dropping it through the server's maintenance database, and waiting for the server.
/// pgkit(1) describes the commands built on these (create, drop, wait, up).

#include <chrono>
#include <functional>
#include <string>

#include <pqxx/connection>

#include "pgkit/config.hpp"

namespace pgkit {

/// The database that create_database and drop_database connect through, as dbmate does.
inline constexpr const char* maintenance_database = "postgres";

/// What create_database or drop_database did.
enum class database_change {
  done,           ///< the database was created (dropped)
  nothing_to_do,  ///< it existed (was missing) already
};

/// Whether drop_database ends the other sessions of the database.
enum class drop_mode {
  refuse_in_use,  ///< refuse while other sessions are connected
  force,          ///< end them (`WITH (FORCE)`, or pg_terminate_backend before PostgreSQL 13)
};

/// Returns the name of the database `config` connects to: its dbname, else libpq's default
/// (PGDATABASE, else the user name). Throws config_error as connection_config::conninfo does.
std::string database_name(const connection_config& config);

/// Creates the database `config` names, connected to maintenance_database on the same server
/// with the same role. Returns nothing_to_do when it exists already. Throws pgkit::error of
/// kind connection, or the server's kind (a role without CREATEDB: sql).
database_change create_database(const connection_config& config);

/// Drops the database `config` names, connected as create_database is. Returns nothing_to_do
/// when it does not exist. Throws usage_error when it is maintenance_database (the session
/// would drop the database it is connected to), pgkit::error of kind sql naming the other
/// sessions' pids when they are connected and `mode` is refuse_in_use, or the server's error.
database_change drop_database(const connection_config& config, drop_mode mode);

/// Returns once the server `config` names accepts connections (a missing database or a
/// refused password counts: the server answered), polling every 250 ms. Throws pgkit::error of
/// kind timeout, saying what the last attempt got, when `timeout` passes first, or of kind
/// canceled once `interrupted` (when set) returns true.
void wait_for_server(const connection_config& config, std::chrono::milliseconds timeout,
                     const std::function<bool()>& interrupted = {});

/// Returns the schema of the database as SQL that load_schema takes: schemas, extensions,
/// enum types and domains, functions and procedures, sequences, tables (columns with type,
/// default, identity, generated expression, NOT NULL), constraints, views and materialized
/// views, indexes, triggers, then the rows of `schema`'s schema_migration and module_version
/// (without times). Read from the catalogs, so any server major works; the same schema gives
/// the same text, in a stable order, without version banners or SET lines. Throws
/// pgkit::error.
std::string dump_schema(pqxx::connection& connection, const std::string& schema = "pgkit");

/// Runs `sql` (dump_schema's text) in one transaction, with function bodies unchecked until
/// the end. Throws usage_error, changing nothing, when the database has any table, view or
/// sequence outside the system schemas; the server's error (nothing loaded) when a statement
/// fails.
void load_schema(pqxx::connection& connection, const std::string& sql);

}  // namespace pgkit
