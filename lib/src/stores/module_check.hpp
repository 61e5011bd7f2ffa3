#pragma once
// What the stores' check() shares: whether a module's table exists in the store's schema, with
// the stores' one "not applied" error (stores/statements.hpp) when it does not.

#include <string>
#include <string_view>

#include "core/text.hpp"
#include "pgkit/pool.hpp"
#include "stores/statements.hpp"

namespace pgkit::detail {

/// Throws module_not_applied unless `table` exists in `schema`, asking on
/// `connection`; other failures as pgkit::error.
inline void check_module_table(pqxx::connection& connection, std::string_view module,
                               const std::string& schema, std::string_view table) {
  // Unnamed: a check runs once, and a prepared name would be one more per connection.
  const auto qualified = quote_identifier(schema) + "." + quote_identifier(table);
  auto found = wire::of(connection)
                   .run("SELECT to_regclass($1) IS NOT NULL", {qualified}, result_format::text,
                        "checking the " + std::string{module} + " table");
  if (found.view(0, 0) != "t") {
    throw module_not_applied(module, schema,
                             "there is no table " + schema + "." + std::string{table});
  }
}

}  // namespace pgkit::detail
