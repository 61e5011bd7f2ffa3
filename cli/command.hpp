#pragma once
// What every subcommand shares: the global options and the shape of an entry in the table.
//
// Every command is written the same way, in its own file: an options struct; a
// `setup_NAME(CLI::App&, ...)` that registers the options (numbers through number_option.hpp,
// never CLI11's range validators) and a callback that builds one `context ctx{globals}`; and a
// `run_NAME(options, ctx)` that gets configuration, schema and connections from the context
// (never from database.toml again) and prints only through `ctx.out()` (output.hpp). Failures
// are thrown as pgkit::error; main maps them to messages and exit codes.

#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

namespace pgkit::cli {

/// Exit codes, as documented in `pgkit --help` and man/pgkit.1.
enum exit_code : int {
  exit_ok = 0,            ///< success
  exit_failure = 1,       ///< a database or runtime failure
  exit_usage = 2,         ///< a usage or configuration error
  exit_check_failed = 3,  ///< a requested check failed (status --exit-code)
};

/// Options accepted before or after any command name.
struct global_options {
  std::string addr;                 ///< --addr URL
  std::string config_file;          ///< --config FILE (empty: the default search)
  std::string connection = "main";  ///< --connection NAME
  std::string schema;               ///< --schema NAME (empty: not given; see resolve_schema)
  std::string env_file;             ///< --env-file FILE (empty: ./.env when there is one)
  bool json = false;                ///< --json
  bool quiet = false;               ///< --quiet
  bool verbose = false;             ///< --verbose
  /// The words after the command's trailing option (listen's --exec CMD ARG...), verbatim.
  std::vector<std::string> trailing;
};

/// Registers a subcommand's options on `command` and sets its callback. The callback stores
/// the command's exit code in `exit_status`; failures are thrown as pgkit::error.
using setup_function = void (*)(CLI::App& command, const global_options& globals, int& exit_status);

/// One row of the command table in main.cpp.
struct command_entry {
  std::string_view name;
  std::string_view summary;
  setup_function setup;
  /// An option after which every word belongs to it, dashes included (listen's --exec): main
  /// moves those words into global_options::trailing before parsing. Empty: none.
  std::string_view trailing_option = {};
};

}  // namespace pgkit::cli
