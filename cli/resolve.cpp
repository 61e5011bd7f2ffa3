// `pgkit __resolve`: prints the connection the global options select, as every command would
// use it (address with the password hidden, where it came from, schema, pool settings). For
// checking a database.toml and for the tests; nothing connects.

#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "connect.hpp"

namespace pgkit::cli {
namespace {

int run_resolve(const global_options& globals) {
  auto config = resolve_connection(globals);
  auto schema = resolve_schema(globals);
  if (globals.json) {
    nlohmann::ordered_json document{
        {"address", config.describe()},
        {"source", config.source},
        {"connection", config.name},
        {"schema", schema},
        {"pooler", std::string{to_string(config.pooler)}},
        {"pool_size", config.pool_size},
        {"min_idle", config.min_idle},
        {"acquire_timeout_ms", config.acquire_timeout.count()},
    };
    std::cout << document.dump(2) << '\n';
    return exit_ok;
  }
  std::cout << "address: " << config.describe() << '\n'
            << "source: " << config.source << '\n'
            << "schema: " << schema << '\n'
            << "pooler: " << to_string(config.pooler) << '\n'
            << "pool_size: " << config.pool_size << '\n';
  return exit_ok;
}

}  // namespace

void setup_resolve(CLI::App& command, const global_options& globals, int& exit_status) {
  command.callback([&globals, &exit_status] { exit_status = run_resolve(globals); });
}

}  // namespace pgkit::cli
