// `pgkit lint [--migrations-dir DIR]... [MODULE...|FILE...]`: lints migrations with
// PostgreSQL's own parser (lib/src/lint, docs/lint.md) before they reach a database. With a
// connection the findings carry the live tables' sizes; --pending lints what apply would run.

#include "lint.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

#include "commands.hpp"
#include "migration_common.hpp"
#include "number_option.hpp"
#include "pgkit/error.hpp"
#include "pgkit/query.hpp"

#ifdef PGKIT_HAVE_LINT
#include "lint/lint.hpp"
#endif

namespace pgkit::cli {
namespace {

namespace fs = std::filesystem;

struct lint_cli_options {
  std::vector<std::string> targets;  ///< MODULE... and FILE...
  migration_cli_options run;         ///< --migrations-dir; the modules among the targets
  bool pending = false;
  bool down = false;
  std::size_t pg_version = 0;  ///< 0: the connected server's, else 13
  std::vector<std::string> include;
  std::vector<std::string> exclude;
  std::string fail_on = "error";
  std::string format;  ///< text, json or github; empty: text, or json with --json
  std::size_t large_table_rows = 1000000;
};

#ifndef PGKIT_HAVE_LINT
[[noreturn]] void no_parser() {
  throw config_error("this pgkit was built without libpg_query, which pgkit lint needs",
                     "install libpg-query-dev (Debian 12 and later) and rebuild pgkit");
}
#endif

#ifdef PGKIT_HAVE_LINT

bool is_file_argument(const std::string& word) {
  std::error_code ignored;
  return word.find('/') != std::string::npos ||
         (word.size() > 4 && word.compare(word.size() - 4, 4, ".sql") == 0) ||
         fs::is_regular_file(word, ignored);
}

std::string read_text(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    throw usage_error("cannot read " + path, "give a migration file or a module name");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void add_migration(lint::linter& linter, const migration& m, bool down) {
  linter.count_file();
  linter.add({m.path, m.up_sql, m.up_line, m.up_transaction == transaction_mode::inside, true});
  if (down && !m.down_sql.empty()) {
    linter.add(
        {m.path, m.down_sql, m.down_line, m.down_transaction == transaction_mode::inside, true});
  }
}

// A file given on the command line: a dbmate-format migration, or plain SQL as one up section.
void add_file(lint::linter& linter, const std::string& path, bool down) {
  std::string text = read_text(path);
  bool dbmate =
      text.rfind("-- migrate:up", 0) == 0 || text.find("\n-- migrate:up") != std::string::npos;
  if (!dbmate) {
    linter.count_file();
    linter.add({path, text, 1, false, false});
    return;
  }
  std::string name = fs::path{path}.filename().string();
  try {
    add_migration(linter, parse_migration("", name, text, path), down);
  } catch (const usage_error& e) {
    if (std::string{e.what()}.find("malformed file name") == std::string::npos)
      throw;
    add_migration(linter, parse_migration("", "00000000000000_lint.sql", text, path), down);
  }
}

// Looks tables up as the migration engine's search_path (`SCHEMA, public`) resolves them.
lint::table_lookup live_tables(pqxx::connection& connection, const std::string& run_schema) {
  auto cache = std::make_shared<std::map<std::string, std::optional<lint::table_stats>>>();
  return [&connection, cache, run_schema](const std::string& schema, const std::string& name) {
    std::string key = schema + "." + name;
    auto found = cache->find(key);
    if (found != cache->end())
      return found->second;
    std::optional<lint::table_stats> stats;
    stream_query(
        connection,
        "SELECT greatest(c.reltuples, 0)::bigint, pg_total_relation_size(c.oid) FROM pg_class c "
        "WHERE c.oid = coalesce(to_regclass(quote_ident($1) || '.' || quote_ident($3)), "
        "to_regclass(quote_ident($2) || '.' || quote_ident($3))) AND c.relkind IN ('r', 'p', "
        "'m')",
        {schema.empty() ? run_schema : schema, schema.empty() ? "public" : schema, name},
        [](const std::vector<column_info>&) {},
        [&stats](const row_view& row) {
          stats = lint::table_stats{"", std::stoll(std::string{*row.get(0)}),
                                    std::stoll(std::string{*row.get(1)})};
          return row_action::next;
        });
    cache->emplace(key, stats);
    return stats;
  };
}

std::string location_text(const lint::finding& f) {
  return f.file + ":" + std::to_string(f.line) + ":" + std::to_string(f.column);
}

// GitHub Actions workflow commands escape %, CR and LF in the message, and also : and , in
// the properties.
std::string github_escape(const std::string& text, bool property) {
  std::string out;
  for (char c : text) {
    if (c == '%')
      out += "%25";
    else if (c == '\r')
      out += "%0D";
    else if (c == '\n')
      out += "%0A";
    else if (property && c == ':')
      out += "%3A";
    else if (property && c == ',')
      out += "%2C";
    else
      out += c;
  }
  return out;
}

nlohmann::ordered_json finding_json(const lint::finding& f) {
  nlohmann::ordered_json table = nullptr;
  if (f.table) {
    table = {{"name", f.table->name},
             {"rows_estimate", f.table->rows_estimate},
             {"bytes", f.table->bytes}};
  }
  return {{"file", f.file},
          {"line", f.line},
          {"column", f.column},
          {"rule", f.rule},
          {"level", lint::level_name(f.severity)},
          {"message", f.message},
          {"help", f.help},
          {"statement", f.statement},
          {"table", table}};
}

lint::level parse_level(const std::string& name) {
  return name == "warning" ? lint::level::warning : lint::level::error;
}

std::size_t count_failing(const lint::linter& linter, const std::string& fail_on) {
  std::size_t failing = 0;
  for (const auto& f : linter.findings())
    if (f.severity >= parse_level(fail_on))
      ++failing;
  return failing;
}

void print(const lint::linter& linter, const std::string& format, const output& out) {
  if (format == "json") {
    auto list = nlohmann::ordered_json::array();
    for (const auto& f : linter.findings())
      list.push_back(finding_json(f));
    out.document(
        {{"findings", list}, {"files", linter.files()}, {"statements", linter.statements()}});
    return;
  }
  std::string text;
  for (const auto& f : linter.findings()) {
    if (format == "github") {
      const char* command = f.severity == lint::level::error     ? "error"
                            : f.severity == lint::level::warning ? "warning"
                                                                 : "notice";
      text += std::string{"::"} + command + " file=" + github_escape(f.file, true) +
              ",line=" + std::to_string(f.line) + ",col=" + std::to_string(f.column) +
              ",title=" + github_escape(f.rule, true) +
              "::" + github_escape(f.message + "\nhelp: " + f.help, false) + "\n";
    } else {
      text += location_text(f) + ": " + std::string{lint::level_name(f.severity)} + ": " + f.rule +
              ": " + f.message + "\n  " + f.statement + "\n  help: " + f.help + "\n";
    }
  }
  out.data(text);
}

int run_lint(const lint_cli_options& options, context& ctx) {
  const auto& out = ctx.out();
  std::string format = options.format.empty() ? (out.json() ? "json" : "text") : options.format;
  lint::options settings;
  settings.rules = lint::select_rules(options.include, options.exclude);
  settings.large_table_rows = static_cast<std::int64_t>(options.large_table_rows);
  settings.pg_version = options.pg_version != 0 ? static_cast<int>(options.pg_version) : 13;

  std::vector<std::string> files;
  migration_cli_options module_options = options.run;
  for (const auto& target : options.targets)
    (is_file_argument(target) ? files : module_options.modules).push_back(target);
  if (options.pending && !files.empty()) {
    throw usage_error(
        "--pending lints modules' pending migrations, not files ('" + files.front() + "')",
        "give module names with --pending, or leave it out to lint files");
  }

  const auto& globals = ctx.globals();
  bool connect = options.pending || !globals.addr.empty() || !globals.config_file.empty() ||
                 std::getenv("DATABASE_URL") != nullptr;
  std::unique_ptr<pqxx::connection> connection;
  if (connect) {
    connection = ctx.connect();
    settings.lookup = live_tables(*connection, ctx.schema());
    if (options.pg_version == 0)
      settings.pg_version = connection->server_version() / 10000;
  }

  lint::linter linter{settings};
  if (options.pending) {
    auto plan = plan_migrations(*connection, library_options(ctx, module_options));
    for (const auto& m : plan.pending)
      add_migration(linter, m, options.down);
  } else if (!module_options.modules.empty() || files.empty()) {
    auto catalog = module_catalog::load(module_options.migrations_dirs);
    auto names = module_options.modules.empty() ? catalog.names() : module_options.modules;
    for (const auto* m : run_order(catalog.select(names)))
      add_migration(linter, *m, options.down);
  }
  for (const auto& file : files)
    add_file(linter, file, options.down);

  print(linter, format, out);
  std::size_t failing = count_failing(linter, options.fail_on);
  out.report(std::to_string(linter.findings().size()) + " finding" +
             (linter.findings().size() == 1 ? "" : "s") + " (" + std::to_string(failing) +
             " at or above " + options.fail_on + ") in " + std::to_string(linter.files()) +
             " file" + (linter.files() == 1 ? "" : "s") + ", " +
             std::to_string(linter.statements()) + " statements");
  return failing > 0 ? exit_check_failed : exit_ok;
}

#endif

}  // namespace

CLI::Option* add_fail_on_option(CLI::App& command, std::string& target) {
  return command
      .add_option("--fail-on", target,
                  "findings at or above this level fail the run (exit 3): error or warning "
                  "(default error)")
      ->option_text("LEVEL")
      ->check(CLI::IsMember({"error", "warning"}));
}

void check_lint_available() {
#ifndef PGKIT_HAVE_LINT
  no_parser();
#endif
}

void lint_before_apply(context& ctx, pqxx::connection& connection,
                       const std::vector<migration>& pending, const std::string& fail_on) {
#ifdef PGKIT_HAVE_LINT
  lint::options settings;
  settings.lookup = live_tables(connection, ctx.schema());
  settings.pg_version = connection.server_version() / 10000;
  lint::linter linter{settings};
  for (const auto& m : pending)
    add_migration(linter, m, false);
  std::size_t failing = count_failing(linter, fail_on);
  for (const auto& f : linter.findings()) {
    ctx.out().warning(location_text(f) + ": " + std::string{lint::level_name(f.severity)} + ": " +
                          f.rule + ": " + f.message,
                      f.help);
  }
  if (failing > 0) {
    throw check_failed("lint found " + std::to_string(failing) + " finding" +
                           (failing == 1 ? "" : "s") + " at or above " + fail_on +
                           " in the pending migrations; nothing was applied",
                       "fix them, or suppress one with '-- pgkit:lint-ignore RULE reason' on the "
                       "line before its statement (pgkit lint --pending shows them)");
  }
#else
  (void)ctx, (void)connection, (void)pending, (void)fail_on;
  no_parser();
#endif
}

void setup_lint(CLI::App& command, const global_options& globals, int& exit_status) {
  auto options = std::make_shared<lint_cli_options>();
  command.add_option("target", options->targets,
                     "modules (built in or from --migrations-dir) or migration files to lint "
                     "(default: every module)");
  add_migrations_dir_option(command, options->run);
  command.add_flag("--pending", options->pending,
                   "lint only what apply would run now (needs a connection)");
  command.add_flag("--down", options->down, "lint the down sections too");
  add_count_option(command, "--pg-version", options->pg_version, 9, 99,
                   "the server major the rules assume (default: the connected server's, else 13)");
  command
      .add_option("--include", options->include,
                  "enable these rules besides the default ones (comma-separated; all)")
      ->option_text("RULE,...")
      ->delimiter(',')
      ->allow_extra_args(false);
  command.add_option("--exclude", options->exclude, "disable these rules (comma-separated; all)")
      ->option_text("RULE,...")
      ->delimiter(',')
      ->allow_extra_args(false);
  add_fail_on_option(command, options->fail_on);
  command
      .add_option("--format", options->format,
                  "text, json (as --json) or github (GitHub Actions annotations); default text")
      ->option_text("FORMAT")
      ->check(CLI::IsMember({"text", "json", "github"}));
  add_count_option(command, "--large-table-rows", options->large_table_rows, 1, 1000000000000,
                   "with a connection, lock hazards on tables of at least this many rows are "
                   "errors, on smaller ones warnings (default 1000000)");
  command.callback([options, &globals, &exit_status] {
    context ctx{globals};
#ifdef PGKIT_HAVE_LINT
    exit_status = run_lint(*options, ctx);
#else
    (void)exit_status;
    no_parser();
#endif
  });
}

}  // namespace pgkit::cli
