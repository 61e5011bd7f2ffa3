// `pgkit drop [--force]`: the database named in the connection, dropped through the server's
// maintenance database; a missing one is a note, not an error (as dbmate). Other sessions make
// it refuse unless --force ends them.

#include <memory>

#include "commands.hpp"
#include "database_common.hpp"
#include "pgkit/database.hpp"

namespace pgkit::cli {
namespace {

database_change drop_refusing_in_use(const connection_config& config) {
  return drop_database(config, drop_mode::refuse_in_use);
}

database_change drop_forcing(const connection_config& config) {
  return drop_database(config, drop_mode::force);
}

}  // namespace

void setup_drop(CLI::App& command, const global_options& globals, int& exit_status) {
  auto force = std::make_shared<bool>(false);
  command.add_flag("--force", *force,
                   "end the other sessions of the database instead of refusing to drop it");
  command.callback([force, &globals, &exit_status] {
    context ctx{globals};
    bool dropped = change_database(ctx, *force ? drop_forcing : drop_refusing_in_use, "dropped",
                                   "does not exist");
    if (ctx.out().json())
      ctx.out().document({{"database", database_name(ctx.connection())}, {"dropped", dropped}});
    exit_status = exit_ok;
  });
}

}  // namespace pgkit::cli
