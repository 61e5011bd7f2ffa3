// `pgkit __complete WHAT`: words for the shell completions that change with the build or the
// configuration (module names, connection names), so the completion scripts never copy lists.

#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "config/config_file.hpp"
#include "output.hpp"
#include "pgkit/config.hpp"
#include "pgkit/error.hpp"
#include "pgkit/migration.hpp"

namespace pgkit::cli {
namespace {

struct complete_options {
  std::string what;
  std::vector<std::string> migrations_dirs;
};

// The connection names of the configuration file that --config names, else of the first
// default file that exists; none when there is no file.
std::vector<std::string> connection_names(const global_options& globals) {
  if (auto file = detail::find_config_file(globals.config_file))
    return load_config(*file, process_environment()).names();
  return {};
}

void print_words(const std::vector<std::string>& words) {
  std::string text;
  for (const auto& word : words)
    text += word + '\n';
  write_stdout(text);
}

int run_complete(const complete_options& options, const global_options& globals) {
  if (options.what == "modules") {
    // Completion must not fail loudly: an unreadable directory just adds no names.
    std::vector<std::string> names;
    try {
      names = module_catalog::load(options.migrations_dirs).names();
    } catch (const error&) {
      names = module_catalog::load().names();
    }
    print_words(names);
    return exit_ok;
  }
  if (options.what == "connections") {
    print_words(connection_names(globals));
    return exit_ok;
  }
  throw usage_error("__complete does not know '" + options.what + "'", "use: modules, connections");
}

}  // namespace

void setup_complete(CLI::App& command, const global_options& globals, int& exit_status) {
  auto options = std::make_shared<complete_options>();
  command.add_option("what", options->what, "what to list: modules, connections")->required();
  command
      .add_option("--migrations-dir", options->migrations_dirs,
                  "also list the modules in DIR (repeatable)")
      ->allow_extra_args(false);
  command.callback(
      [options, &globals, &exit_status] { exit_status = run_complete(*options, globals); });
}

}  // namespace pgkit::cli
