// dump_schema and load_schema: the database's schema as SQL, read from the catalogs (not with
// pg_dump, whose major must match the server's; docs/migrations.md says why), and loaded back
// into an empty database in one transaction.

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/text.hpp"
#include "pgkit/database.hpp"
#include "pgkit/error.hpp"
#include "pgkit/migration.hpp"
#include "wire/wire.hpp"

namespace pgkit {
namespace {

using detail::wire;

// One row per object (kind, schema, name, the statement that creates it), for dump_schema and
// diff_schema; one row per statement, in the order that loads: schemas, extensions, types,
// functions (their bodies are not checked while loading), sequences, tables, their constraints
// other than foreign keys, views in creation order, indexes, foreign keys, triggers, sequence
// ownership. Extension members and the system schemas are left out; names sort bytewise.
constexpr const char* k_schema_items = R"(
WITH s AS (
  SELECT n.oid, n.nspname FROM pg_namespace n
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
    AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass
                    AND d.objid = n.oid AND d.deptype = 'e')),
member AS (SELECT classid, objid FROM pg_depend WHERE deptype = 'e'),
rel AS (
  SELECT c.oid, c.relname, c.relkind, c.relpersistence, s.nspname,
         quote_ident(s.nspname) || '.' || quote_ident(c.relname) AS qname
  FROM pg_class c JOIN s ON s.oid = c.relnamespace
  WHERE NOT EXISTS (SELECT 1 FROM member m WHERE m.classid = 'pg_class'::regclass
                    AND m.objid = c.oid)),
typ AS (
  SELECT t.*, s.nspname, quote_ident(s.nspname) || '.' || quote_ident(t.typname) AS qname
  FROM pg_type t JOIN s ON s.oid = t.typnamespace
  WHERE NOT EXISTS (SELECT 1 FROM member m WHERE m.classid = 'pg_type'::regclass
                    AND m.objid = t.oid)),
items(ord, key, kind, nsp, name, stmt) AS (
  SELECT 1, nspname::text, 'schema', nspname::text, quote_ident(nspname), 'CREATE SCHEMA IF NOT EXISTS ' || quote_ident(nspname) || ';'
  FROM s WHERE nspname <> 'public'
  UNION ALL
  SELECT 2, x.extname::text, 'extension', n.nspname::text, quote_ident(x.extname), 'CREATE EXTENSION IF NOT EXISTS ' || quote_ident(x.extname) ||
         ' WITH SCHEMA ' || quote_ident(n.nspname) || ';'
  FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace WHERE x.extname <> 'plpgsql'
  UNION ALL
  SELECT 3, t.qname, 'enum type', t.nspname::text, t.qname, 'CREATE TYPE ' || t.qname || ' AS ENUM (' ||
         (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
          FROM pg_enum e WHERE e.enumtypid = t.oid) || ');'
  FROM typ t WHERE t.typtype = 'e'
  UNION ALL
  SELECT 3, t.qname, 'domain', t.nspname::text, t.qname, 'CREATE DOMAIN ' || t.qname || ' AS ' ||
         format_type(t.typbasetype, t.typtypmod) || coalesce(' DEFAULT ' || t.typdefault, '') ||
         CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END ||
         coalesce((SELECT string_agg(' CONSTRAINT ' || quote_ident(c.conname) || ' ' ||
                                     pg_get_constraintdef(c.oid), '' ORDER BY c.conname)
                   FROM pg_constraint c WHERE c.contypid = t.oid AND c.contype = 'c'), '') || ';'
  FROM typ t WHERE t.typtype = 'd'
  UNION ALL
  SELECT 4, s.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
         CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END, s.nspname::text,
         quote_ident(s.nspname) || '.' || quote_ident(p.proname) || '(' ||
         pg_get_function_identity_arguments(p.oid) || ')',
         rtrim(pg_get_functiondef(p.oid), E'\n') || ';'
  FROM pg_proc p JOIN s ON s.oid = p.pronamespace
  WHERE p.prokind IN ('f', 'p')
    AND NOT EXISTS (SELECT 1 FROM member m WHERE m.classid = 'pg_proc'::regclass
                    AND m.objid = p.oid)
  UNION ALL
  SELECT 5, r.qname, 'sequence', r.nspname::text, r.qname, 'CREATE SEQUENCE ' || r.qname || ' AS ' || format_type(q.seqtypid, NULL) ||
         ' INCREMENT BY ' || q.seqincrement || ' MINVALUE ' || q.seqmin || ' MAXVALUE ' ||
         q.seqmax || ' START WITH ' || q.seqstart || ' CACHE ' || q.seqcache ||
         CASE WHEN q.seqcycle THEN ' CYCLE' ELSE '' END || ';'
  FROM rel r JOIN pg_sequence q ON q.seqrelid = r.oid
  WHERE r.relkind = 'S'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                    AND d.objid = r.oid AND d.deptype = 'i')
  UNION ALL
  SELECT 6, r.qname, 'table', r.nspname::text, r.qname,
         'CREATE ' || CASE WHEN r.relpersistence = 'u' THEN 'UNLOGGED ' ELSE '' END || 'TABLE ' ||
         r.qname || ' (' ||
         coalesce((SELECT string_agg(E'\n    ' || quote_ident(a.attname) || ' ' ||
                          format_type(a.atttypid, a.atttypmod) ||
                          CASE WHEN a.attgenerated = 's' THEN ' GENERATED ALWAYS AS (' ||
                                    pg_get_expr(d.adbin, d.adrelid) || ') STORED'
                               WHEN a.attgenerated = 'v' THEN ' GENERATED ALWAYS AS (' ||
                                    pg_get_expr(d.adbin, d.adrelid) || ') VIRTUAL'
                               WHEN d.adbin IS NOT NULL THEN ' DEFAULT ' ||
                                    pg_get_expr(d.adbin, d.adrelid)
                               ELSE '' END ||
                          CASE a.attidentity WHEN 'a' THEN ' GENERATED ALWAYS AS IDENTITY'
                                             WHEN 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY'
                                             ELSE '' END ||
                          CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END,
                          ',' ORDER BY a.attnum)
                   FROM pg_attribute a
                   LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                   WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped), '') ||
         E'\n);'
  FROM rel r WHERE r.relkind = 'r'
  UNION ALL
  SELECT CASE WHEN c.contype = 'f' THEN 10 ELSE 7 END, r.qname || ' ' || c.conname,
         'constraint', r.nspname::text, quote_ident(c.conname) || ' on ' || r.qname,
         'ALTER TABLE ' || r.qname || ' ADD CONSTRAINT ' || quote_ident(c.conname) || ' ' ||
         pg_get_constraintdef(c.oid) || ';'
  FROM pg_constraint c JOIN rel r ON r.oid = c.conrelid
  WHERE c.contype IN ('p', 'u', 'c', 'x', 'f') AND c.conislocal
  UNION ALL
  SELECT 8, lpad(r.oid::text, 10, '0'),
         CASE WHEN r.relkind = 'm' THEN 'materialized view' ELSE 'view' END, r.nspname::text,
         r.qname,
         'CREATE ' || CASE WHEN r.relkind = 'm' THEN 'MATERIALIZED ' ELSE '' END || 'VIEW ' ||
         r.qname || E' AS\n' || rtrim(pg_get_viewdef(r.oid), ';') || ';'
  FROM rel r WHERE r.relkind IN ('v', 'm')
  UNION ALL
  SELECT 9, r.qname || ' ' || ic.relname, 'index', r.nspname::text,
         quote_ident(r.nspname) || '.' || quote_ident(ic.relname), pg_get_indexdef(i.indexrelid) || ';'
  FROM pg_index i JOIN rel r ON r.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid
  WHERE NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid
                    AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x'))
  UNION ALL
  SELECT 11, r.qname || ' ' || t.tgname, 'trigger', r.nspname::text,
         quote_ident(t.tgname) || ' on ' || r.qname, pg_get_triggerdef(t.oid) || ';'
  FROM pg_trigger t JOIN rel r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal
  UNION ALL
  SELECT 12, q.qname, 'sequence owner', q.nspname::text, q.qname, 'ALTER SEQUENCE ' || q.qname || ' OWNED BY ' || t.qname || '.' ||
         quote_ident(a.attname) || ';'
  FROM pg_depend d JOIN rel q ON q.oid = d.objid JOIN rel t ON t.oid = d.refobjid
  JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
  WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
    AND d.deptype = 'a' AND q.relkind = 'S')
)";

// The relations outside the system schemas, for load_schema's refusal.
constexpr const char* k_user_relations = R"(
SELECT string_agg(n.nspname || '.' || c.relname, ', ' ORDER BY n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%')";

// One object as dump_schema reads it, keyed for diff_schema by where it sorts and what it is.
struct schema_item {
  std::string nsp;
  std::string statement;
};
using item_key = std::tuple<int, std::string, std::string>;  // order, kind, name
using item_map = std::map<item_key, schema_item>;

item_map read_items(const wire& on, std::string_view context) {
  auto rows = on.run(std::string{k_schema_items} + "SELECT ord, kind, nsp, name, stmt FROM items",
                     {}, detail::result_format::text, context);
  item_map items;
  for (int row = 0; row < rows.rows(); ++row) {
    items[{std::stoi(rows.bytes(row, 0)), rows.bytes(row, 1), rows.bytes(row, 3)}] =
        schema_item{rows.bytes(row, 2), rows.bytes(row, 4)};
  }
  return items;
}

// The columns of a CREATE TABLE statement as k_schema_items writes it (one per line, indented
// four spaces): name -> the rest of its line, in table order.
std::vector<std::pair<std::string, std::string>> table_columns(const std::string& statement) {
  std::vector<std::pair<std::string, std::string>> columns;
  std::size_t start = 0;
  while ((start = statement.find("\n    ", start)) != std::string::npos) {
    start += 5;
    auto end = statement.find('\n', start);
    auto line = statement.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!line.empty() && line.back() == ',')
      line.pop_back();
    std::size_t split = 0;
    if (!line.empty() && line.front() == '"') {
      split = 1;
      // A quoted name ends at a quote that is not doubled.
      while (split < line.size()) {
        if (line[split] == '"' && (split + 1 >= line.size() || line[split + 1] != '"'))
          break;
        split += line[split] == '"' ? std::size_t{2} : std::size_t{1};
      }
      ++split;
    } else {
      split = line.find(' ');
    }
    split = std::min(split, line.size());
    columns.emplace_back(line.substr(0, split), split < line.size() ? line.substr(split + 1) : "");
  }
  return columns;
}

void add_difference(std::vector<schema_difference>& out, std::string kind, std::string name,
                    const std::string* database, const std::string* migrations) {
  schema_difference difference;
  difference.change = database == nullptr     ? schema_change::only_in_migrations
                      : migrations == nullptr ? schema_change::only_in_database
                                              : schema_change::differs;
  difference.kind = std::move(kind);
  difference.name = std::move(name);
  difference.database = database == nullptr ? "" : *database;
  difference.migrations = migrations == nullptr ? "" : *migrations;
  out.push_back(std::move(difference));
}

// A table in both databases: its columns one by one; the table itself when they match but the
// statements do not (column order, UNLOGGED).
void diff_table(std::vector<schema_difference>& out, const std::string& name,
                const std::string& database, const std::string& migrations) {
  auto live = table_columns(database);
  auto built = table_columns(migrations);
  auto before = out.size();
  auto find = [](const auto& columns, const std::string& column) -> const std::string* {
    for (const auto& [key, definition] : columns) {
      if (key == column)
        return &definition;
    }
    return nullptr;
  };
  for (const auto& [column, definition] : built) {
    const auto* other = find(live, column);
    if (other == nullptr || *other != definition)
      add_difference(out, "column", name + "." + column, other, &definition);
  }
  for (const auto& [column, definition] : live) {
    if (find(built, column) == nullptr)
      add_difference(out, "column", name + "." + column, &definition, nullptr);
  }
  if (out.size() == before)
    add_difference(out, "table", name, &database, &migrations);
}

}  // namespace

std::string dump_schema(pqxx::connection& connection, const std::string& schema) {
  validate_schema_name(schema);
  const auto on = wire::of(connection);
  std::string out =
      "-- The schema of the database and pgkit's bookkeeping (pgkit dump); load it "
      "into an empty database with pgkit load.\n";
  auto statements =
      on.run(std::string{k_schema_items} + "SELECT stmt FROM items ORDER BY ord, key COLLATE \"C\"",
             {}, detail::result_format::text, "reading the schema");
  for (int row = 0; row < statements.rows(); ++row)
    out += "\n" + statements.bytes(row, 0) + "\n";
  const auto table = detail::quote_identifier(schema) + ".";
  auto present = on.run(
      "SELECT to_regclass(" + detail::quote_literal(table + "schema_migration") + ") IS NOT NULL",
      {}, detail::result_format::text, "reading the schema");
  if (present.bytes(0, 0) != "t")
    return out;
  const auto name = detail::quote_literal(schema);
  auto rows = on.run(
      "SELECT format('INSERT INTO %I.schema_migration (module, version, name, "
      "checksum) VALUES (%L, %L, %L, %L);', " +
          name + ", module, version, name, checksum) FROM " + table +
          "schema_migration ORDER BY module COLLATE \"C\", version COLLATE \"C\"",
      {}, detail::result_format::text, "reading the bookkeeping");
  auto modules = on.run(
      "SELECT format('INSERT INTO %I.module_version (module, version) VALUES "
      "(%L, %L);', " +
          name + ", module, version) FROM " + table +
          "module_version ORDER BY module COLLATE \"C\"",
      {}, detail::result_format::text, "reading the bookkeeping");
  if (rows.rows() + modules.rows() > 0)
    out += "\n";
  for (const auto* result : {&rows, &modules}) {
    for (int row = 0; row < result->rows(); ++row)
      out += result->bytes(row, 0) + "\n";
  }
  return out;
}

void load_schema(pqxx::connection& connection, const std::string& sql) {
  const auto on = wire::of(connection);
  auto present =
      on.run(k_user_relations, {}, detail::result_format::text, "looking for existing tables");
  if (!present.is_null(0, 0)) {
    auto names = present.bytes(0, 0);
    if (names.size() > 200)
      names = names.substr(0, 200) + "...";
    throw usage_error("refusing to load a schema into a database that has tables: " + names,
                      "load into an empty database (pgkit drop, then pgkit create)");
  }
  detail::block transaction{on, "starting the load transaction"};
  // Function bodies may name tables that come later in the file.
  on.script("SET LOCAL check_function_bodies = off", "loading the schema");
  on.script(sql, "loading the schema");
  transaction.commit("committing the loaded schema");
}

schema_diff diff_schema(pqxx::connection& database, pqxx::connection& migrations,
                        const std::string& schema) {
  validate_schema_name(schema);
  auto live = read_items(wire::of(database), "reading the database's schema");
  auto built = read_items(wire::of(migrations), "reading the migrations' schema");
  std::set<std::string> schemas{schema};
  for (const auto& entry : built)
    schemas.insert(entry.second.nsp);
  std::set<item_key> keys;
  for (const auto* side : {&live, &built}) {
    for (const auto& [key, item] : *side) {
      if (schemas.count(item.nsp) != 0)
        keys.insert(key);
    }
  }
  schema_diff result;
  result.schemas.assign(schemas.begin(), schemas.end());
  for (const auto& key : keys) {
    auto in_live = live.find(key);
    auto in_built = built.find(key);
    const auto* database_text = in_live == live.end() ? nullptr : &in_live->second.statement;
    const auto* migrations_text = in_built == built.end() ? nullptr : &in_built->second.statement;
    if (database_text != nullptr && migrations_text != nullptr) {
      if (*database_text == *migrations_text)
        continue;
      if (std::get<1>(key) == "table") {
        diff_table(result.differences, std::get<2>(key), *database_text, *migrations_text);
        continue;
      }
    }
    add_difference(result.differences, std::get<1>(key), std::get<2>(key), database_text,
                   migrations_text);
  }
  return result;
}

}  // namespace pgkit
