// `pgkit __complete WHAT`: words for the shell completions that change with the build or the
// configuration (module names), so the completion scripts never copy lists.

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "pgkit/error.hpp"
#include "pgkit/migration.hpp"

namespace pgkit::cli {
namespace {

struct complete_options {
  std::string what;
  std::vector<std::string> migrations_dirs;
};

int run_complete(const complete_options& options, const global_options& /*globals*/) {
  if (options.what == "modules") {
    // Completion must not fail loudly: an unreadable directory just adds no names.
    std::vector<std::string> names;
    try {
      names = module_catalog::load(options.migrations_dirs).names();
    } catch (const error&) {
      names = module_catalog::load().names();
    }
    for (const auto& name : names)
      std::cout << name << '\n';
    return exit_ok;
  }
  throw usage_error("__complete does not know '" + options.what + "'", "use: modules");
}

}  // namespace

void setup_complete(CLI::App& command, const global_options& globals, int& exit_status) {
  auto options = std::make_shared<complete_options>();
  command.add_option("what", options->what, "what to list: modules")->required();
  command
      .add_option("--migrations-dir", options->migrations_dirs,
                  "also list the modules in DIR (repeatable)")
      ->allow_extra_args(false);
  command.callback(
      [options, &globals, &exit_status] { exit_status = run_complete(*options, globals); });
}

}  // namespace pgkit::cli
