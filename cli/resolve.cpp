// `pgkit __resolve`: prints the connection the global options select, as every command would
// use it (address with the password hidden, where it came from, schema, pool settings). For
// checking a database.toml and for the tests; nothing connects.

#include <memory>

#include "commands.hpp"
#include "context.hpp"

namespace pgkit::cli {
namespace {

int run_resolve(context& ctx) {
  const auto& config = ctx.connection();
  const auto& schema = ctx.schema();
  const auto& out = ctx.out();
  if (out.json()) {
    out.document({
        {"address", config.describe()},
        {"source", config.source},
        {"connection", config.name},
        {"schema", schema},
        {"pooler", std::string{to_string(config.pooler)}},
        {"pool_size", config.pool_size},
        {"min_idle", config.min_idle},
        {"acquire_timeout_ms", config.acquire_timeout.count()},
    });
    return exit_ok;
  }
  out.data("address: " + config.describe() + "\nsource: " + config.source + "\nschema: " + schema +
           "\npooler: " + std::string{to_string(config.pooler)} +
           "\npool_size: " + std::to_string(config.pool_size) + "\n");
  return exit_ok;
}

}  // namespace

void setup_resolve(CLI::App& command, const global_options& globals, int& exit_status) {
  command.callback([&globals, &exit_status] {
    context ctx{globals};
    exit_status = run_resolve(ctx);
  });
}

}  // namespace pgkit::cli
