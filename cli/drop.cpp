// `pgkit drop [--force]`: the database named in the connection, dropped through the server's
// maintenance database; a missing one is a note, not an error (as dbmate). Other sessions make
// it refuse unless --force ends them.

#include <memory>

#include "commands.hpp"
#include "context.hpp"
#include "pgkit/database.hpp"

namespace pgkit::cli {
namespace {

int run_drop(bool force, context& ctx) {
  const auto& config = ctx.connection();
  auto name = database_name(config);
  ctx.out().detail("connecting to " + std::string{maintenance_database} + " on " +
                   config.describe() + " (from " + config.source + ")");
  bool dropped = drop_database(config, force ? drop_mode::force : drop_mode::refuse_in_use) ==
                 database_change::done;
  if (dropped)
    ctx.out().report("dropped database " + name);
  else
    ctx.out().note("database " + name + " does not exist; nothing to do");
  if (ctx.out().json())
    ctx.out().document({{"database", name}, {"dropped", dropped}});
  return exit_ok;
}

}  // namespace

void setup_drop(CLI::App& command, const global_options& globals, int& exit_status) {
  auto force = std::make_shared<bool>(false);
  command.add_flag("--force", *force,
                   "end the other sessions of the database instead of refusing to drop it");
  command.callback([force, &globals, &exit_status] {
    context ctx{globals};
    exit_status = run_drop(*force, ctx);
  });
}

}  // namespace pgkit::cli
