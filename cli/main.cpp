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
#include "core/suggest.hpp"
#include "output.hpp"
#include "pgkit/error.hpp"
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
    {"lint", "check migrations for statements that lock or break a live database", setup_lint},
    {"new", "create a migration file for a module of your own (DIR/MODULE/<version>_NAME.sql)",
     setup_new},
    {"up", "create the database if it is missing, then apply MODULE... (dbmate up)", setup_up},
    {"down", "rollback under dbmate's name", setup_rollback},
    {"baseline", "record a module's migrations up to --to VERSION as applied, without running them",
     setup_baseline},
    {"create", "create the database named in the connection (dbmate create)", setup_create},
    {"drop", "drop the database named in the connection (dbmate drop)", setup_drop},
    {"wait", "wait until the server accepts connections (dbmate wait)", setup_wait},
    {"dump", "write the database's schema and pgkit's bookkeeping as SQL (db/schema.sql)",
     setup_dump},
    {"load", "load what dump wrote into an empty database", setup_load},
    {"diff", "compare the database with what its migrations build (drift); exit 3 on drift",
     setup_diff},
    {"listen", "print (or run a command for) each notification on CHANNEL...", setup_listen,
     "--exec"},
    {"notify", "send one notification on CHANNEL", setup_notify},
    {"session-purge", "delete expired sessions and spent auth tokens in short batches (cron)",
     setup_session_purge},
    {"cache-gc", "delete expired cache entries in short batches (for cron)", setup_cache_gc},
    {"inspect", "show what pgkit's tables hold: rows, sizes, listeners, the migration lock",
     setup_inspect},
    {"queue", "enqueue, count, retry, cancel or run (work --exec) background jobs", setup_queue,
     "--exec"},
    {"queue-prune", "delete finished jobs older than a retention in short batches (cron)",
     setup_queue_prune},
};

const char* const k_footer = R"(Exit codes:
  0  success
  1  a database or runtime failure
  2  a usage or configuration error
  3  a check failed (status --exit-code found pending or drifted migrations,
     listen --timeout passed without a notification, lint or apply --lint found
     findings at or above --fail-on, queue retry or cancel found the job in
     another state, diff found drift)

Output: data (SQL, reports, notifications, --json documents) goes to stdout; summaries,
progress, notes, warnings and errors go to stderr. A failed write to stdout exits 1.

Connection: --addr URL, else DATABASE_URL, else --config FILE (default ./database.toml, then
./config/database.toml) with --connection NAME, else libpq's defaults (PGHOST, PGPORT, ...).
See pgkit(1) for details.)";

bool is_public(const command_entry& entry) {
  return !entry.name.empty() && entry.name[0] != '_';
}

// Finds the command word in argv: the first argument that is neither an option nor the value
// of a global option given as a separate word. Returns its index, or argc when there is none.
int find_command_index(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--")
      return i + 1 < argc ? i + 1 : argc;
    if (arg == "--addr" || arg == "--config" || arg == "--connection" || arg == "--schema" ||
        arg == "--env-file") {
      ++i;
      continue;
    }
    if (!arg.empty() && arg[0] == '-')
      continue;
    return i;
  }
  return argc;
}

std::string find_command_word(int argc, char** argv) {
  int index = find_command_index(argc, argv);
  return index < argc ? argv[index] : "";
}

// Moves the words after the command's trailing option into `globals.trailing` and returns the
// argc that CLI11 should see: those words are another program's command line, whose dashes
// CLI11 would otherwise take for pgkit's options.
int split_trailing_words(int argc, char** argv, global_options& globals) {
  int command = find_command_index(argc, argv);
  if (command >= argc)
    return argc;
  for (const auto& entry : k_commands) {
    if (entry.name != argv[command] || entry.trailing_option.empty())
      continue;
    for (int i = command + 1; i < argc; ++i) {
      if (argv[i] == entry.trailing_option) {
        globals.trailing.assign(argv + i + 1, argv + argc);
        return i + 1;
      }
    }
  }
  return argc;
}

// Refuses an unknown command before CLI11 sees it, suggesting the nearest known one.
bool check_command_word(const std::string& word) {
  if (word.empty())
    return true;
  std::vector<std::string> names;
  for (const auto& entry : k_commands) {
    if (entry.name == word)
      return true;
    if (is_public(entry))
      names.emplace_back(entry.name);
  }
  std::string hint = "run 'pgkit --help' for the list of commands";
  if (auto nearest = nearest_word(word, names))
    hint = "did you mean '" + *nearest + "'? " + hint;
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

// --help and --version print through CLI11; a stdout that cannot take it fails like any command.
int exit_after_printing(const CLI::App& app, const CLI::Error& e) {
  int status = app.exit(e);
  check_stdout();
  return status;
}

int run(int argc, char** argv) {
  CLI::App app{"pgkit: PostgreSQL schema modules, pool, cache, sessions and LISTEN/NOTIFY",
               "pgkit"};
  app.footer(k_footer);
  app.fallthrough();
  // One command per run: a word after it (`pgkit apply queue`) is its argument, never a second
  // command, even when a command has that name.
  app.require_subcommand(0, 1);
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
  app.add_option("--env-file", globals.env_file,
                 "dotenv file whose variables are set when not set already (default ./.env)")
      ->option_text("FILE");
  app.add_flag("--json", globals.json, "print one JSON document (JSON lines for listen)");
  app.add_flag("-q,--quiet", globals.quiet,
               "print no summary, progress, note or status report (data, warnings, errors stay)");
  app.add_flag("-v,--verbose", globals.verbose, "print details on stderr (where it connects)");

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
  argc = split_trailing_words(argc, argv, globals);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return exit_after_printing(app, e);
  } catch (const CLI::CallForAllHelp& e) {
    return exit_after_printing(app, e);
  } catch (const CLI::CallForVersion& e) {
    return exit_after_printing(app, e);
  } catch (const CLI::ParseError& e) {
    print_error(e.what(), "run 'pgkit --help' for usage");
    return exit_usage;
  }
  if (app.get_subcommands().empty()) {
    std::cerr << app.help();
    print_error("no command given", "run 'pgkit --help' for the list of commands");
    return exit_usage;
  }
  check_stdout();
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
