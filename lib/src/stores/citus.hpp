#pragma once
// The stores on Citus (distributed PostgreSQL): whether a table is distributed, and the form of
// a sweep batch that runs shard by shard. A SELECT ... FOR UPDATE (so SKIP LOCKED) works in
// Citus only within one shard, so a sweep of a distributed table sends its batch to every shard
// as a statement of its own (Citus' run_command_on_shards), each committed by itself on the
// worker that holds the shard: no batch ever holds locks on two shards.

#include <string>
#include <string_view>

#include "wire/wire.hpp"

namespace pgkit::detail {

/// Whether `table` (schema-qualified, quoted) is a distributed Citus table: a hash-distributed
/// one (its shards on the workers). One catalog query on a server without Citus, two with it.
inline bool is_distributed_table(const wire& on, const std::string& table, std::string_view context,
                                 const stop_control& control = {}) {
  auto citus = on.run("SELECT to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL", {},
                      result_format::text, context, control);
  if (citus.view(0, 0) != "t")
    return false;
  auto found = on.run(
      "SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition WHERE logicalrelid = "
      "to_regclass($1) AND partmethod = 'h')",
      {table}, result_format::text, context, control);
  return found.view(0, 0) == "t";
}

/// The shard-by-shard form of `text`, a sweep batch on `table` (as the statement spells it once
/// bound to `schema`: schema-qualified, quoted) whose $1 is the batch size and whose optional $2
/// is a text value; it takes the same parameters. Its one row holds the rows deleted over all
/// shards and the errors of the shards that failed (NULL when none did). Each shard deletes at
/// most the batch size.
inline statement per_shard_statement(std::string_view store, const statement_text& text,
                                     const std::string& schema, const std::string& table) {
  auto single = make_statement(store, text, schema);
  // The DELETE as run_command_on_shards takes it: format() puts the shard's name where %1$s
  // stands; the batch size and the text value are written in as literals.
  std::string command;
  for (std::size_t at = 0; at < single.sql.size();) {
    if (single.sql.compare(at, table.size(), table) == 0) {
      command += "%1$s";
      at += table.size();
    } else {
      if (single.sql[at] == '%')
        command += '%';
      command += single.sql[at++];
    }
  }
  std::string filled = "replace($pgkit$" + command + "$pgkit$, '$1', $1::bigint::text)";
  if (single.sql.find("$2") != std::string::npos)
    filled = "replace(" + filled + ", '$2', replace(quote_literal($2::text), '%', '%%'))";
  // The table's name is a schema name checked by validate_schema_name and a fixed table name:
  // no quote to escape.
  std::string sql =
      "SELECT coalesce(sum(split_part(result, ' ', 2)::bigint) FILTER (WHERE success), 0)"
      "::bigint, string_agg(result, '; ') FILTER (WHERE NOT success) "
      "FROM run_command_on_shards('" +
      table + "'::regclass, " + filled + ")";
  return statement{statement_name(store, std::string{text.name} + "_sh", schema), sql, text.plan};
}

}  // namespace pgkit::detail
