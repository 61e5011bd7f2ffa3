#include "migration_common.hpp"

#include "number_option.hpp"

namespace pgkit::cli {

void add_migrations_dir_option(CLI::App& command, migration_cli_options& options) {
  command
      .add_option("--migrations-dir", options.migrations_dirs,
                  "directory of your own modules, one subdirectory each (repeatable)")
      ->option_text("DIR")
      ->allow_extra_args(false);
}

void add_wait_option(CLI::App& command, migration_cli_options& options) {
  add_seconds_option(command, "--wait", options.wait, zero_seconds::allowed,
                     "wait this long for the server to accept connections, default 0");
}

void add_lock_options(CLI::App& command, migration_cli_options& options) {
  add_seconds_option(command, "--lock-wait", options.lock_wait, zero_seconds::allowed,
                     "give up after this long waiting for another run's migration lock, "
                     "default 60");
  add_seconds_option(command, "--lock-timeout", options.lock_timeout, zero_seconds::refused,
                     "lock_timeout for the migrations' statements, default 10");
  add_seconds_option(command, "--statement-timeout", options.statement_timeout,
                     zero_seconds::allowed,
                     "statement_timeout for the migrations' statements, default 0: none");
}

migration_options library_options(context& ctx, const migration_cli_options& options) {
  migration_options result;
  result.schema = ctx.schema();
  validate_schema_name(result.schema);
  result.modules = options.modules;
  result.migrations_dirs = options.migrations_dirs;
  result.lock_wait = options.lock_wait;
  result.lock_timeout = options.lock_timeout;
  if (options.statement_timeout.count() > 0)
    result.statement_timeout = options.statement_timeout;
  result.out_of_order =
      options.allow_out_of_order ? out_of_order_policy::allow : out_of_order_policy::refuse;
  if (!ctx.out().quiet())
    result.progress = [&out = ctx.out()](const std::string& line) { out.report(line); };
  return result;
}

double to_milliseconds(std::chrono::microseconds duration) {
  return static_cast<double>(duration.count()) / 1000.0;
}

}  // namespace pgkit::cli
