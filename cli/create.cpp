// `pgkit create`: the database named in the connection, created through the server's
// maintenance database; one that exists already is a note, not an error (as dbmate).

#include <memory>

#include "commands.hpp"
#include "database_common.hpp"
#include "pgkit/database.hpp"

namespace pgkit::cli {

void create_if_missing(context& ctx) {
  const auto& config = ctx.connection();
  auto name = database_name(config);
  ctx.out().detail("connecting to " + std::string{maintenance_database} + " on " +
                   config.describe() + " (from " + config.source + ")");
  bool created = create_database(config) == database_change::done;
  if (created)
    ctx.out().report("created database " + name);
  else
    ctx.out().note("database " + name + " exists already; nothing to do");
  if (ctx.out().json())
    ctx.out().document({{"database", name}, {"created", created}});
}

void setup_create(CLI::App& command, const global_options& globals, int& exit_status) {
  command.callback([&globals, &exit_status] {
    context ctx{globals};
    create_if_missing(ctx);
    exit_status = exit_ok;
  });
}

}  // namespace pgkit::cli
