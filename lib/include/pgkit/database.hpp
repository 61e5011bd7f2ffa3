#pragma once
/// The database itself, as dbmate's operator commands handle it: its name, creating and
/// dropping it through the server's maintenance database, and waiting for the server.
/// pgkit(1) describes the commands built on these (create, drop, wait, up).

#include <chrono>
#include <functional>
#include <string>
#include <vector>

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
/// sessions' pids when they stay connected and `mode` is refuse_in_use (the server gives
/// sessions that are closing up to five seconds to go first), or the server's error.
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

/// A database that lives while this object does: created on the server of `config` under a
/// unique name (`pgkit_scratch_<pid>_<random>`), through maintenance_database with the same
/// role, and dropped (with its sessions ended) when destroyed, also when unwinding from an
/// error. diff_schema's caller builds the migrations' schema in one.
class throwaway_database {
 public:
  /// Creates it. Throws usage_error, creating nothing, when the role may not create databases
  /// (neither CREATEDB nor superuser); pgkit::error of kind connection or sql otherwise.
  explicit throwaway_database(const connection_config& config);
  /// Drops it; errors are swallowed (a destructor), the name is in name() for a manual drop.
  ~throwaway_database();
  throwaway_database(const throwaway_database&) = delete;
  throwaway_database& operator=(const throwaway_database&) = delete;

  /// Returns `config` with the database replaced by this one.
  const connection_config& config() const noexcept { return m_config; }
  /// Returns its name.
  const std::string& name() const noexcept { return m_name; }

 private:
  connection_config m_config;
  std::string m_name;
};

/// Where an object differs between two databases (diff_schema).
enum class schema_change {
  only_in_database,    ///< the live database has it, the migrations do not create it
  only_in_migrations,  ///< the migrations create it, the live database lacks it
  differs,             ///< both have it, defined differently
};

/// One object that differs.
struct schema_difference {
  schema_change change = schema_change::differs;  ///< which way
  std::string kind;  ///< "schema", "extension", "enum type", "domain", "function", "procedure",
                     ///< "sequence", "table", "column", "constraint", "view",
                     ///< "materialized view", "index", "trigger", "sequence owner"
  std::string
      name;  ///< schema-qualified where it has a schema ("public.orders.total" for a column)
  std::string database;    ///< its definition in the live database, "" when absent
  std::string migrations;  ///< its definition in the database built from the migrations
};

/// What diff_schema compared and found.
struct schema_diff {
  /// The schemas compared: `schema` and every schema that holds an object in the database
  /// built from the migrations (an extension counts in the schema it is installed in).
  std::vector<std::string> schemas;
  std::vector<schema_difference> differences;  ///< sorted by kind order, then name; empty: none
};

/// Compares the schema of `database` with that of `migrations` (a database where the migration
/// files were applied), object by object, as dump_schema reads them: tables column by column
/// (type, default, identity, generated expression, NOT NULL), constraints, indexes, sequences,
/// views and materialized views, functions and procedures, triggers, enum labels, domains,
/// extensions and schemas. Only the schemas in schema_diff::schemas are compared. Throws
/// pgkit::error.
schema_diff diff_schema(pqxx::connection& database, pqxx::connection& migrations,
                        const std::string& schema = "pgkit");

}  // namespace pgkit
