#pragma once
// The statements that surround and record a migration. apply_modules runs exactly these, and
// the offline renderings print them, so a printed script leaves the state apply leaves.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/text.hpp"
#include "pgkit/migration.hpp"

namespace pgkit::detail {

/// The timeouts a run sets; the defaults are those of the printed scripts.
struct run_timeouts {
  std::chrono::milliseconds lock_timeout{10000};
  std::optional<std::chrono::milliseconds> statement_timeout;
};

/// Returns the condition a row of pg_locks (named `locks` in the query) meets while it is a
/// granted hold of the migration lock `key` (migration_lock_key) in the current database;
/// advisory locks belong to one database, so the same key elsewhere is not this lock.
inline std::string migration_lock_held(std::int64_t key, const std::string& locks) {
  const auto bits = static_cast<std::uint64_t>(key);
  return locks + ".locktype = 'advisory' AND " + locks + ".granted AND " + locks +
         ".objsubid = 1 AND " + locks +
         ".database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND " +
         locks + ".classid = " + std::to_string(bits >> 32) + " AND " + locks +
         ".objid = " + std::to_string(bits & 0xffffffffULL);
}

/// Returns `<set> search_path TO "schema", public`, with `set` "SET" or "SET LOCAL".
inline std::string search_path_statement(const std::string& schema, const std::string& set) {
  return set + " search_path TO " + quote_identifier(schema) + ", public";
}

/// Returns the statement that creates the schema when it is missing.
inline std::string create_schema_statement(const std::string& schema) {
  return "CREATE SCHEMA IF NOT EXISTS " + quote_identifier(schema);
}

/// Returns the statements (without `;`) that give one migration pgkit's settings, whatever the
/// migrations before it set: `set` is "SET LOCAL" inside a transaction, "SET" outside.
inline std::vector<std::string> migration_settings_statements(const std::string& schema,
                                                              const run_timeouts& timeouts,
                                                              const std::string& set) {
  std::vector<std::string> statements{set + " lock_timeout = '" +
                                      std::to_string(timeouts.lock_timeout.count()) + "ms'"};
  statements.push_back(set + " statement_timeout " +
                       (timeouts.statement_timeout
                            ? "= '" + std::to_string(timeouts.statement_timeout->count()) + "ms'"
                            : std::string{"TO DEFAULT"}));
  statements.push_back(search_path_statement(schema, set));
  return statements;
}

/// Returns the statements that open a migration transaction's work: the schema, then the
/// settings of its first migration.
inline std::vector<std::string> transaction_setup_statements(const std::string& schema,
                                                             const run_timeouts& timeouts) {
  std::vector<std::string> statements{create_schema_statement(schema)};
  for (auto& statement : migration_settings_statements(schema, timeouts, "SET LOCAL"))
    statements.push_back(std::move(statement));
  return statements;
}

/// Returns the statements that prepare the session for a transaction:false section.
inline std::vector<std::string> session_setup_statements(const std::string& schema,
                                                         const run_timeouts& timeouts) {
  std::vector<std::string> statements{create_schema_statement(schema)};
  for (auto& statement : migration_settings_statements(schema, timeouts, "SET"))
    statements.push_back(std::move(statement));
  return statements;
}

/// Returns the statements that undo session_setup_statements.
inline std::vector<std::string> session_reset_statements(const run_timeouts& /*timeouts*/) {
  return {"RESET search_path", "RESET lock_timeout", "RESET statement_timeout"};
}

/// Returns the bookkeeping of an applied migration; `duration` is an SQL interval expression.
inline std::string record_up_sql(const migration& m, const std::string& schema,
                                 const std::string& duration) {
  auto table = quote_identifier(schema) + ".";
  auto module = quote_literal(m.module), version = quote_literal(m.version);
  return "INSERT INTO " + table +
         "schema_migration (module, version, name, checksum, duration)\n  VALUES (" + module +
         ", " + version + ", " + quote_literal(m.name) + ", " + quote_literal(m.checksum) + ", " +
         duration + ");\nINSERT INTO " + table + "module_version (module, version) VALUES (" +
         module + ", " + version +
         ")\n  ON CONFLICT (module) DO UPDATE\n  SET version = greatest(module_version.version, "
         "excluded.version), updated_at = now();";
}

/// Returns one statement that records an applied migration, as record_up_sql does, only while
/// the transaction is still `transaction` (its txid_current()), and returns one row: `t` when it
/// recorded, `f` when the migration ended pgkit's transaction (then nothing is recorded).
inline std::string record_up_in_transaction_sql(const migration& m, const std::string& schema,
                                                const std::string& duration,
                                                const std::string& transaction) {
  auto table = quote_identifier(schema) + ".";
  auto module = quote_literal(m.module), version = quote_literal(m.version);
  return "WITH same AS (SELECT txid_current() = " + quote_literal(transaction) +
         "::bigint AS ok),\n  recorded AS (INSERT INTO " + table +
         "schema_migration (module, version, name, checksum, duration)\n    SELECT " + module +
         ", " + version + ", " + quote_literal(m.name) + ", " + quote_literal(m.checksum) + ", " +
         duration + " FROM same WHERE ok),\n  moved AS (INSERT INTO " + table +
         "module_version (module, version) SELECT " + module + ", " + version +
         " FROM same WHERE ok\n    ON CONFLICT (module) DO UPDATE\n    SET version = "
         "greatest(module_version.version, excluded.version), updated_at = now())\nSELECT ok "
         "FROM same";
}

/// Returns the bookkeeping of a rolled-back migration; it runs before the down section, which
/// for core drops the bookkeeping tables themselves.
inline std::string record_down_sql(const migration& m, const std::string& schema) {
  auto table = quote_identifier(schema) + ".";
  auto module = quote_literal(m.module);
  return "DELETE FROM " + table + "schema_migration WHERE module = " + module +
         " AND version = " + quote_literal(m.version) + ";\nUPDATE " + table +
         "module_version SET version = newest.version, updated_at = now()\n  FROM (SELECT "
         "max(version) AS version FROM " +
         table + "schema_migration WHERE module = " + module +
         ") AS newest\n  WHERE module_version.module = " + module +
         " AND newest.version IS NOT NULL;\nDELETE FROM " + table +
         "module_version WHERE module = " + module + "\n  AND NOT EXISTS (SELECT 1 FROM " + table +
         "schema_migration WHERE module = " + module + ");";
}

}  // namespace pgkit::detail
