// `pgkit rollback MODULE [--steps N | --to VERSION]`: down sections, newest first, in one
// transaction under the migration lock.

#include <memory>

#include "commands.hpp"
#include "migration_common.hpp"
#include "number_option.hpp"
#include "pgkit/migration.hpp"

namespace pgkit::cli {
namespace {

struct rollback_options : migration_cli_options {
  std::string module;
  std::size_t steps = 1;
  std::string to_version;
};

int run_rollback(const rollback_options& options, context& ctx) {
  const auto& out = ctx.out();
  auto settings = library_options(ctx, options);
  rollback_target target;
  target.steps = options.steps;
  if (!options.to_version.empty())
    target.to_version = options.to_version;
  auto connection = ctx.connect(options.wait);
  std::vector<migration_step> done;
  {
    interrupt_guard guard{*connection};
    settings.interrupted = guard.interrupted();
    done = rollback_module(*connection, settings, options.module, target);
  }
  if (out.json()) {
    auto list = nlohmann::ordered_json::array();
    for (const auto& step : done) {
      list.push_back({{"module", step.module},
                      {"version", step.version},
                      {"name", step.name},
                      {"duration_ms", to_milliseconds(step.duration)}});
    }
    out.document({{"schema", settings.schema}, {"rolled_back", list}});
  } else if (!done.empty()) {
    out.report("rolled back " + std::to_string(done.size()) + " migration" +
               (done.size() == 1 ? "" : "s") + " of module " + options.module + " in schema " +
               settings.schema);
  }
  return exit_ok;
}

}  // namespace

void setup_rollback(CLI::App& command, const global_options& globals, int& exit_status) {
  auto options = std::make_shared<rollback_options>();
  command.add_option("module", options->module, "the module to roll back")->required();
  auto* steps = add_count_option(command, "--steps", options->steps, 1, 1000000,
                                 "roll back the newest N applied migrations, default 1");
  command
      .add_option("--to", options->to_version,
                  "roll back every applied migration newer than VERSION (0: all)")
      ->option_text("VERSION")
      ->excludes(steps);
  add_migrations_dir_option(command, *options);
  add_lock_options(command, *options);
  add_wait_option(command, *options);
  command.callback([options, &globals, &exit_status] {
    context ctx{globals};
    exit_status = run_rollback(*options, ctx);
  });
}

}  // namespace pgkit::cli
