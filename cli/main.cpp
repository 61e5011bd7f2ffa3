// pgkit's entry point: registers the command table, parses, and is the one place where errors
// become messages on stderr and exit codes.

#include <algorithm>
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "command.hpp"
#include "commands.hpp"
#include "pgkit/error.hpp"
#include "pgkit/redact.hpp"
#include "pgkit/version.hpp"

namespace pgkit::cli {
namespace {

const command_entry k_commands[] = {
    {"__complete", "", setup_complete},
    {"__resolve", "", setup_resolve},
    {"migrate", "print the SQL of pending migrations, or apply them with --apply", setup_migrate},
    {"apply", "apply pending migrations of MODULE... (migrate --apply)", setup_apply},
    {"status", "show applied, pending and drifted migrations per module", setup_status},
    {"rollback", "run down sections of a module's newest migrations", setup_rollback},
    {"print-sql", "print the SQL of modules for psql or dbmate, without a database",
     setup_print_sql},
    {"cache-gc", "delete expired cache entries in short batches (for cron)", setup_cache_gc},
};

const char* const k_footer = R"(Exit codes:
  0  success
  1  a database or runtime failure
  2  a usage or configuration error
  3  a check failed (status --exit-code found pending or drifted migrations)

Connection: --addr URL, else DATABASE_URL, else --config FILE (default ./database.toml, then
./config/database.toml) with --connection NAME, else libpq's defaults (PGHOST, PGPORT, ...).
See pgkit(1) for details.)";

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

bool is_public(const command_entry& entry) {
  return !entry.name.empty() && entry.name[0] != '_';
}

// Finds the command word in argv: the first argument that is neither an option nor the value
// of a global option given as a separate word.
std::string find_command_word(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--")
      return i + 1 < argc ? argv[i + 1] : "";
    if (arg == "--addr" || arg == "--config" || arg == "--connection" || arg == "--schema") {
      ++i;
      continue;
    }
    if (!arg.empty() && arg[0] == '-')
      continue;
    return std::string{arg};
  }
  return {};
}

void print_error(std::string_view message, std::string_view hint) {
  std::cerr << "pgkit: error: " << redact_secrets(message) << '\n';
  if (!hint.empty())
    std::cerr << "pgkit: hint: " << redact_secrets(hint) << '\n';
}

// Refuses an unknown command before CLI11 sees it, suggesting the nearest known one.
bool check_command_word(const std::string& word) {
  if (word.empty())
    return true;
  std::string nearest;
  std::size_t best = std::string::npos;
  for (const auto& entry : k_commands) {
    if (entry.name == word)
      return true;
    if (!is_public(entry))
      continue;
    auto distance = edit_distance(word, entry.name);
    if (distance < best) {
      best = distance;
      nearest = std::string{entry.name};
    }
  }
  std::string hint = "run 'pgkit --help' for the list of commands";
  if (best <= 3)
    hint = "did you mean '" + nearest + "'? " + hint;
  print_error("unknown command '" + word + "'", hint);
  return false;
}

int exit_code_for(error_kind kind) {
  switch (kind) {
    case error_kind::usage:
    case error_kind::config:
      return exit_usage;
    case error_kind::check_failed:
      return exit_check_failed;
    default:
      return exit_failure;
  }
}

int run(int argc, char** argv) {
  CLI::App app{"pgkit: PostgreSQL schema modules, pool, cache, sessions and LISTEN/NOTIFY",
               "pgkit"};
  app.footer(k_footer);
  app.fallthrough();
  app.set_version_flag("--version",
                       std::string{"pgkit "} + version() + " (libpqxx " + pqxx_version() + ")");
  global_options globals;
  app.add_option("--addr", globals.addr, "PostgreSQL URL or conninfo to connect to")
      ->option_text("URL");
  app.add_option("--config", globals.config_file,
                 "database.toml to read (default ./database.toml, then ./config/database.toml)")
      ->option_text("FILE");
  app.add_option("--connection", globals.connection,
                 "connection name in database.toml (default main)")
      ->option_text("NAME");
  app.add_option("--schema", globals.schema, "schema holding pgkit's tables (default pgkit)")
      ->option_text("NAME");
  app.add_flag("--json", globals.json, "print one JSON document (JSON lines for listen)");
  app.add_flag("-q,--quiet", globals.quiet, "print nothing on success");
  app.add_flag("-v,--verbose", globals.verbose, "print progress details on stderr");

  int exit_status = exit_ok;
  for (const auto& entry : k_commands) {
    auto* command = app.add_subcommand(std::string{entry.name}, std::string{entry.summary});
    command->fallthrough();
    if (!is_public(entry))
      command->group("");
    entry.setup(*command, globals, exit_status);
  }

  if (!check_command_word(find_command_word(argc, argv)))
    return exit_usage;
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    print_error(e.what(), "run 'pgkit --help' for usage");
    return exit_usage;
  }
  if (app.get_subcommands().empty()) {
    std::cerr << app.help();
    print_error("no command given", "run 'pgkit --help' for the list of commands");
    return exit_usage;
  }
  return exit_status;
}

}  // namespace
}  // namespace pgkit::cli

int main(int argc, char** argv) {
  using namespace pgkit::cli;
  try {
    return run(argc, argv);
  } catch (const pgkit::error& e) {
    print_error(e.what(), e.hint());
    return exit_code_for(e.kind());
  } catch (const std::exception& e) {
    print_error(std::string{"internal error: "} + e.what(),
                "this is a bug in pgkit; please report it with the command you ran");
    return exit_failure;
  }
}
