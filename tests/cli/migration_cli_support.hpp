#pragma once
// What the migration CLI tests share: writing module files, running the real dbmate and psql,
// and describing a database's schema from the catalog (not with pg_dump, which refuses servers
// newer than itself).

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "harness.hpp"

namespace pgkit_test::migration_cli {

namespace fs = std::filesystem;

/// Counts the advisory locks held in the current database (pg_locks covers the whole cluster,
/// where other tests run at the same time).
inline const char* const k_advisory_locks_here =
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
    "(SELECT oid FROM pg_database WHERE datname = current_database())";

inline std::vector<std::string> args(std::vector<std::string> head,
                                     const std::vector<std::string>& tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

inline void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream{path, std::ios::binary} << text;
}

inline std::string migration_text(const std::string& up, const std::string& down = "SELECT 1;") {
  return "-- migrate:up\n" + up + "\n-- migrate:down\n" + down + "\n";
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// The real dbmate: the one scripts/bootstrap installs, else the one on PATH.
inline std::string dbmate() {
  auto local = fs::path{source_dir()} / "build/tools/node_modules/.bin/dbmate";
  return fs::exists(local) ? local.string() : std::string{"dbmate"};
}

inline std::string dbmate_url(const scratch_database& db) {
  return db.url() + (contains(db.url(), "?") ? "&" : "?") + "sslmode=disable";
}

inline process_result run_dbmate(const scratch_database& db, const std::string& dir,
                                 const std::string& command) {
  return run_process(
      {dbmate(), "--url", dbmate_url(db), "--migrations-dir", dir, "--no-dump-schema", command});
}

/// Runs `script` with `psql -v ON_ERROR_STOP=1` on `db`.
inline process_result run_psql(const scratch_database& db, const std::string& script) {
  process_options input;
  input.input = script;
  return run_process({"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-", "--dbname", db.url()},
                     input);
}

/// Prints the plain script of `print_args` (`pgkit print-sql ...`) and runs it under psql on
/// `db`; returns psql's result.
inline process_result run_plain_script(const scratch_database& db,
                                       const std::vector<std::string>& print_args) {
  auto script = run_pgkit(args({"print-sql"}, print_args));
  REQUIRE_MESSAGE(script.exit_code == 0, script.err);
  return run_psql(db, script.out);
}

/// Describes every user schema of `db` from the catalog, one sorted line per schema, relation,
/// column, constraint, index, function, trigger, view, type and extension. dbmate's own
/// `public.schema_migrations` is left out.
inline std::string schema_catalog(const scratch_database& db) {
  const std::string sql = R"(
WITH s AS (
  SELECT oid, nspname FROM pg_namespace
  WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
    AND nspname NOT LIKE 'pg\_temp\_%' AND nspname NOT LIKE 'pg\_toast\_temp\_%'),
rel AS (
  SELECT c.oid, c.relname, c.relkind, c.relpersistence, s.nspname
  FROM pg_class c JOIN s ON s.oid = c.relnamespace
  WHERE NOT (s.nspname = 'public' AND c.relname IN ('schema_migrations', 'schema_migrations_pkey'))),
items AS (
  SELECT 'schema ' || nspname AS item FROM s
  UNION ALL
  SELECT 'relation ' || nspname || '.' || relname || ' ' || relkind::text || relpersistence::text FROM rel
  UNION ALL
  SELECT 'column ' || rel.nspname || '.' || rel.relname || '.' || a.attname || ' ' ||
         format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END ||
         coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
  FROM pg_attribute a JOIN rel ON rel.oid = a.attrelid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'constraint ' || rel.nspname || '.' || rel.relname || ' ' || con.conname || ' ' ||
         pg_get_constraintdef(con.oid)
  FROM pg_constraint con JOIN rel ON rel.oid = con.conrelid
  UNION ALL
  SELECT 'index ' || rel.nspname || ' ' || pg_get_indexdef(i.indexrelid)
  FROM pg_index i JOIN rel ON rel.oid = i.indrelid
  UNION ALL
  SELECT 'view ' || nspname || '.' || relname || ' ' || pg_get_viewdef(oid) FROM rel
  WHERE relkind IN ('v', 'm')
  UNION ALL
  SELECT 'function ' || s.nspname || ' ' || pg_get_functiondef(p.oid)
  FROM pg_proc p JOIN s ON s.oid = p.pronamespace WHERE p.prokind IN ('f', 'p')
  UNION ALL
  SELECT 'trigger ' || rel.nspname || ' ' || pg_get_triggerdef(t.oid)
  FROM pg_trigger t JOIN rel ON rel.oid = t.tgrelid WHERE NOT t.tgisinternal
  UNION ALL
  SELECT 'type ' || s.nspname || '.' || t.typname || ' ' || t.typtype::text ||
         coalesce(' ' || (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                          FROM pg_enum e WHERE e.enumtypid = t.oid), '')
  FROM pg_type t JOIN s ON s.oid = t.typnamespace
  WHERE t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND
        (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
  UNION ALL
  SELECT 'extension ' || extname FROM pg_extension)
SELECT coalesce(string_agg(item, E'\n' ORDER BY item), '') FROM items)";
  return query_value(db.url(), sql);
}

/// pgkit's bookkeeping rows in `schema` (quoted as needed), without times.
inline std::string bookkeeping(const scratch_database& db, const std::string& schema = "pgkit") {
  return query_value(db.url(),
                     "SELECT (SELECT string_agg(module || ' ' || version || ' ' || name || ' ' || "
                     "checksum, ',' ORDER BY module, version) FROM " +
                         schema +
                         ".schema_migration) || ' / ' || (SELECT string_agg(module || ' ' || "
                         "version, ',' ORDER BY module) FROM " +
                         schema + ".module_version)");
}

inline std::string table_count(const scratch_database& db, const std::string& schema = "pgkit") {
  return query_value(db.url(),
                     "SELECT count(*) FROM pg_tables WHERE schemaname = '" + schema + "'");
}

}  // namespace pgkit_test::migration_cli
