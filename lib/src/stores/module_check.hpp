#pragma once
// What the stores' check() shares: whether a module's table exists in the store's schema, and
// the error that says it does not, with the command that fixes it.

#include <string>
#include <string_view>

#include "core/pqxx_compat.hpp"
#include "migrate/migration_sql.hpp"
#include "pgkit/error.hpp"
#include "pgkit/pool.hpp"
#include "query/statement.hpp"

namespace pgkit::detail {

/// The error of a store whose module is not applied in `schema` (there is no `table`): kind
/// undefined_object, hint "run pgkit apply MODULE" (with --schema for a schema other than
/// pgkit).
inline error module_not_applied(std::string_view module, const std::string& schema,
                                std::string_view table, const std::string& sqlstate = "42P01") {
  std::string fix = "run pgkit apply " + std::string{module};
  if (schema != "pgkit")
    fix += " --schema " + schema;
  return error(error_kind::undefined_object,
               "the " + std::string{module} + " module is not applied in schema " + schema +
                   " (there is no table " + schema + "." + std::string{table} + ")",
               fix, sqlstate);
}

/// Throws module_not_applied unless `table` exists in `schema`, asking on the lease's
/// connection; other failures as pgkit::error.
inline void check_module_table(const lease& borrowed, std::string_view module,
                               const std::string& schema, std::string_view table) {
  // Unnamed: a check runs once, and a prepared name would be one more per connection.
  auto found = run_sql(libpq_handle(borrowed.connection()), "SELECT to_regclass($1) IS NOT NULL",
                       {quote_identifier(schema) + "." + std::string{table}}, result_format::text,
                       "checking the " + std::string{module} + " table");
  if (found.view(0, 0) != "t")
    throw module_not_applied(module, schema, table);
}

}  // namespace pgkit::detail
