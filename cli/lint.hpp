#pragma once
// What `pgkit lint` shares with `apply --lint` / `migrate --apply --lint`: linting the pending
// migrations of a run before anything is applied.

#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <pqxx/connection>

#include "context.hpp"
#include "pgkit/migration.hpp"

namespace pgkit::cli {

/// Adds --fail-on LEVEL (error or warning, default error) storing into `target`.
CLI::Option* add_fail_on_option(CLI::App& command, std::string& target);

/// Throws pgkit::config_error (exit 2, naming the package) when pgkit was built without
/// libpg_query; does nothing otherwise.
void check_lint_available();

/// Lints `pending` (their up sections, in run order) with the default rules against the
/// database behind `connection`, prints the findings on stderr, and throws pgkit::check_failed
/// (exit 3) when one is at or above `fail_on`. Throws pgkit::config_error when pgkit was built
/// without libpg_query.
void lint_before_apply(context& ctx, pqxx::connection& connection,
                       const std::vector<migration>& pending, const std::string& fail_on);

}  // namespace pgkit::cli
