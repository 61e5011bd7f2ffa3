// `pgkit baseline MODULE --to VERSION`: adopt a database that has a module's schema already by
// recording its migrations up to VERSION as applied, without running them.

#include <memory>

#include "commands.hpp"
#include "migration_common.hpp"
#include "pgkit/migration.hpp"

namespace pgkit::cli {
namespace {

struct baseline_options : migration_cli_options {
  std::string module;
  std::string to_version;
};

int run_baseline(const baseline_options& options, context& ctx) {
  auto settings = library_options(ctx, options);
  auto connection = ctx.connect(options.wait);
  auto recorded = baseline_module(*connection, settings, options.module, options.to_version);
  if (ctx.out().json()) {
    auto list = nlohmann::ordered_json::array();
    for (const auto& step : recorded)
      list.push_back({{"module", step.module}, {"version", step.version}, {"name", step.name}});
    ctx.out().document({{"schema", settings.schema}, {"recorded", list}});
  } else {
    ctx.out().report("recorded " + std::to_string(recorded.size()) + " migration" +
                     (recorded.size() == 1 ? "" : "s") + " of module " + options.module +
                     " as applied in schema " + settings.schema + " (none was run)");
  }
  return exit_ok;
}

}  // namespace

void setup_baseline(CLI::App& command, const global_options& globals, int& exit_status) {
  auto options = std::make_shared<baseline_options>();
  command.add_option("module", options->module, "the module whose schema is there already")
      ->required();
  command
      .add_option("--to", options->to_version,
                  "record the module's migrations up to and including VERSION")
      ->option_text("VERSION")
      ->required();
  add_migrations_dir_option(command, *options);
  add_lock_options(command, *options);
  add_wait_option(command, *options);
  command.callback([options, &globals, &exit_status] {
    context ctx{globals};
    exit_status = run_baseline(*options, ctx);
  });
}

}  // namespace pgkit::cli
