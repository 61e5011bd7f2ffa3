#pragma once
// What the migration commands (migrate, apply, status, rollback, print-sql) share: their
// common options and the translation into pgkit::migration_options.

#include <chrono>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "command.hpp"
#include "context.hpp"
#include "pgkit/migration.hpp"

namespace pgkit::cli {

/// Options common to the commands that run migrations.
struct migration_cli_options {
  std::vector<std::string> modules;                ///< MODULE... positionals
  std::vector<std::string> migrations_dirs;        ///< --migrations-dir DIR (repeatable)
  std::chrono::milliseconds lock_wait{60000};      ///< --lock-wait SECONDS
  std::chrono::milliseconds lock_timeout{10000};   ///< --lock-timeout SECONDS
  std::chrono::milliseconds statement_timeout{0};  ///< --statement-timeout SECONDS (0: none)
  bool allow_out_of_order = false;                 ///< --allow-out-of-order
  std::chrono::milliseconds wait{0};               ///< --wait SECONDS
};

/// Adds --migrations-dir.
void add_migrations_dir_option(CLI::App& command, migration_cli_options& options);
/// Adds --wait.
void add_wait_option(CLI::App& command, migration_cli_options& options);
/// Adds --lock-wait, --lock-timeout and --statement-timeout.
void add_lock_options(CLI::App& command, migration_cli_options& options);

/// Returns the library options for `options` and the run's schema, with progress lines going
/// to stderr unless --quiet.
migration_options library_options(context& ctx, const migration_cli_options& options);

/// Returns `duration` in milliseconds, as JSON wants it.
double to_milliseconds(std::chrono::microseconds duration);

}  // namespace pgkit::cli
