#include "migration_common.hpp"

#include <cmath>
#include <iostream>

#include "connect.hpp"

namespace pgkit::cli {
namespace {

std::chrono::milliseconds to_duration(double seconds) {
  return std::chrono::milliseconds{static_cast<long long>(std::llround(seconds * 1000.0))};
}

}  // namespace

void add_migrations_dir_option(CLI::App& command, migration_cli_options& options) {
  command
      .add_option("--migrations-dir", options.migrations_dirs,
                  "directory of your own modules, one subdirectory each (repeatable)")
      ->option_text("DIR")
      ->allow_extra_args(false);
}

void add_wait_option(CLI::App& command, migration_cli_options& options) {
  command
      .add_option("--wait", options.wait_s,
                  "wait up to SECONDS for the server to accept connections")
      ->option_text("SECONDS")
      ->check(CLI::NonNegativeNumber);
}

void add_lock_options(CLI::App& command, migration_cli_options& options) {
  command
      .add_option("--lock-wait", options.lock_wait_s,
                  "give up after SECONDS waiting for another run's migration lock (default 60)")
      ->option_text("SECONDS")
      ->check(CLI::NonNegativeNumber);
  command
      .add_option("--lock-timeout", options.lock_timeout_s,
                  "lock_timeout for the migrations' statements (default 10)")
      ->option_text("SECONDS")
      ->check(CLI::PositiveNumber);
  command
      .add_option("--statement-timeout", options.statement_timeout_s,
                  "statement_timeout for the migrations' statements (default none)")
      ->option_text("SECONDS")
      ->check(CLI::NonNegativeNumber);
}

migration_options library_options(const global_options& globals,
                                  const migration_cli_options& options) {
  migration_options result;
  result.schema = resolve_schema(globals);
  validate_schema_name(result.schema);
  result.modules = options.modules;
  result.migrations_dirs = options.migrations_dirs;
  result.lock_wait = to_duration(options.lock_wait_s);
  result.lock_timeout = to_duration(options.lock_timeout_s);
  if (options.statement_timeout_s > 0)
    result.statement_timeout = to_duration(options.statement_timeout_s);
  result.out_of_order =
      options.allow_out_of_order ? out_of_order_policy::allow : out_of_order_policy::refuse;
  if (!globals.quiet)
    result.progress = [](const std::string& line) { std::cerr << line << '\n'; };
  return result;
}

double to_milliseconds(std::chrono::microseconds duration) {
  return static_cast<double>(duration.count()) / 1000.0;
}

}  // namespace pgkit::cli
