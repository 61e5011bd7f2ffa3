// `pgkit up MODULE...`: dbmate's `up`, `create` when the database is missing and then `apply`
// with all of apply's options.

#include "commands.hpp"
#include "database_common.hpp"
#include "migration_common.hpp"

namespace pgkit::cli {

void setup_up(CLI::App& command, const global_options& globals, int& exit_status) {
  setup_apply_then(command, globals, exit_status, create_if_missing);
}

}  // namespace pgkit::cli
