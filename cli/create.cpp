// `pgkit create`: the database named in the connection, created through the server's
// maintenance database; one that exists already is a note, not an error (dbmate's create
// fails there).

#include <memory>

#include "commands.hpp"
#include "database_common.hpp"
#include "pgkit/database.hpp"

namespace pgkit::cli {

bool change_database(context& ctx, database_change (*change)(const connection_config&),
                     const std::string& done, const std::string& unchanged) {
  const auto& config = ctx.connection();
  auto name = database_name(config);
  ctx.out().detail("connecting to " + std::string{maintenance_database} + " on " +
                   config.describe() + " (from " + config.source + ")");
  bool changed = change(config) == database_change::done;
  if (changed)
    ctx.out().report(done + " database " + name);
  else
    ctx.out().note("database " + name + " " + unchanged + "; nothing to do");
  return changed;
}

void create_if_missing(context& ctx) {
  change_database(ctx, create_database, "created", "exists already");
}

void setup_create(CLI::App& command, const global_options& globals, int& exit_status) {
  command.callback([&globals, &exit_status] {
    context ctx{globals};
    bool created = change_database(ctx, create_database, "created", "exists already");
    if (ctx.out().json())
      ctx.out().document({{"database", database_name(ctx.connection())}, {"created", created}});
    exit_status = exit_ok;
  });
}

}  // namespace pgkit::cli
