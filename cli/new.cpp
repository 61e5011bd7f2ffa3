// `pgkit new [--migrations-dir DIR] MODULE NAME`: a new dbmate-format migration file for a
// module of your own, named with the current UTC time as its version.

#include <memory>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "migration_common.hpp"
#include "output.hpp"
#include "pgkit/migration.hpp"

namespace pgkit::cli {
namespace {

struct new_options {
  std::vector<std::string> migrations_dirs;
  std::string module;
  std::string name;
};

int run_new(const new_options& options, const global_options& globals) {
  auto dir =
      options.migrations_dirs.empty() ? std::string{"migrations"} : options.migrations_dirs.front();
  auto path = create_migration_file(dir, options.module, options.name);
  output out{globals};
  if (out.json())
    out.document(nlohmann::ordered_json{{"path", path}});
  else
    out.data(path + "\n");
  return exit_ok;
}

}  // namespace

void setup_new(CLI::App& command, const global_options& globals, int& exit_status) {
  auto options = std::make_shared<new_options>();
  command.add_option("module", options->module, "the module (a directory under DIR)")->required();
  command.add_option("name", options->name, "what the migration does: [a-z0-9_]+")->required();
  command
      .add_option("--migrations-dir", options->migrations_dirs,
                  "where the module directories are (default ./migrations; of several, the "
                  "first)")
      ->option_text("DIR")
      ->allow_extra_args(false);
  command.callback([options, &globals, &exit_status] { exit_status = run_new(*options, globals); });
}

}  // namespace pgkit::cli
