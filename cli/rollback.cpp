// `pgkit rollback MODULE [--steps N | --to VERSION]`: down sections, newest first, in one
// transaction under the migration lock.

#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "connect.hpp"
#include "migration_common.hpp"
#include "pgkit/migration.hpp"

namespace pgkit::cli {
namespace {

struct rollback_options : migration_cli_options {
  std::string module;
  std::size_t steps = 1;
  std::string to_version;
};

int run_rollback(const rollback_options& options, const global_options& globals) {
  auto settings = library_options(globals, options);
  rollback_target target;
  target.steps = options.steps;
  if (!options.to_version.empty())
    target.to_version = options.to_version;
  auto connection = open_connection(globals, std::chrono::seconds{options.wait_s});
  std::vector<migration_step> done;
  {
    interrupt_guard guard{*connection};
    settings.interrupted = guard.interrupted();
    done = rollback_module(*connection, settings, options.module, target);
  }
  if (globals.json) {
    auto list = nlohmann::json::array();
    for (const auto& step : done) {
      list.push_back({{"module", step.module},
                      {"version", step.version},
                      {"name", step.name},
                      {"duration_ms", to_milliseconds(step.duration)}});
    }
    std::cout << nlohmann::json{{"schema", settings.schema}, {"rolled_back", list}}.dump(2) << '\n';
  } else if (!globals.quiet && !done.empty()) {
    std::cerr << "rolled back " << done.size() << " migration" << (done.size() == 1 ? "" : "s")
              << " of module " << options.module << " in schema " << settings.schema << '\n';
  }
  return exit_ok;
}

}  // namespace

void setup_rollback(CLI::App& command, const global_options& globals, int& exit_status) {
  auto options = std::make_shared<rollback_options>();
  command.add_option("module", options->module, "the module to roll back")->required();
  auto* steps = command
                    .add_option("--steps", options->steps,
                                "roll back the newest N applied migrations (default 1)")
                    ->option_text("N")
                    ->check(CLI::PositiveNumber);
  command
      .add_option("--to", options->to_version,
                  "roll back every applied migration newer than VERSION (0: all)")
      ->option_text("VERSION")
      ->excludes(steps);
  add_migrations_dir_option(command, *options);
  add_lock_options(command, *options);
  add_wait_option(command, *options);
  command.callback(
      [options, &globals, &exit_status] { exit_status = run_rollback(*options, globals); });
}

}  // namespace pgkit::cli
