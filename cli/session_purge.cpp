// `pgkit session-purge`: deletes expired web sessions, and the auth module's expired sessions
// and spent one-time tokens, in short batches. Meant for cron: one summary line (or one JSON
// document) on stdout, notes on stderr, nothing at all with --quiet.

#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "connect.hpp"
#include "pgkit/session.hpp"

namespace pgkit::cli {
namespace {

struct session_purge_options {
  std::size_t batch_size = 1000;
  double max_seconds = 0;  // 0: not given
  std::string only;        // "", "session" or "auth"
  bool dry_run = false;
};

std::string seconds_text(std::chrono::microseconds elapsed) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f s", static_cast<double>(elapsed.count()) / 1e6);
  return text;
}

void print_text(const purge_result& result, const session_purge_options& options) {
  std::string line = options.dry_run ? "would delete " : "deleted ";
  for (std::size_t i = 0; i < result.tables.size(); ++i) {
    const auto& entry = result.tables[i];
    if (i > 0)
      line += i + 1 == result.tables.size() ? " and " : ", ";
    line += std::to_string(entry.rows) + (i == 0 ? " rows from " : " from ") + entry.table;
  }
  line += options.dry_run ? " (dry run)" : " in " + seconds_text(result.elapsed);
  if (!result.complete) {
    line += "; stopped after --max-seconds with expired rows left (the next run continues)";
  }
  std::cout << line << '\n';
}

void print_json(const purge_result& result, const session_purge_options& options) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& entry : result.tables)
    out[entry.table] = entry.rows;
  out["dry_run"] = options.dry_run;
  out["complete"] = result.complete;
  out["batches"] = result.batches;
  out["seconds"] = static_cast<double>(result.elapsed.count()) / 1e6;
  out["skipped_modules"] = result.skipped_modules;
  std::cout << out.dump(2) << '\n';
}

int run_session_purge(const session_purge_options& options, const global_options& globals) {
  purge_options settings;
  settings.batch_size = options.batch_size;
  if (options.max_seconds > 0) {
    settings.max_duration =
        std::chrono::milliseconds{static_cast<long long>(std::llround(options.max_seconds * 1000))};
  }
  settings.scope = options.only == "session" ? purge_scope::session
                   : options.only == "auth"  ? purge_scope::auth
                                             : purge_scope::all;
  settings.mode = options.dry_run ? purge_mode::count_only : purge_mode::delete_rows;

  auto schema = resolve_schema(globals);
  auto connection = open_connection(globals);
  auto result = purge_expired_sessions(*connection, schema, settings);
  if (!globals.quiet) {
    for (const auto& module : result.skipped_modules) {
      std::cerr << "pgkit: note: the " << module << " module is not applied in schema " << schema
                << "; skipping its tables\n";
    }
  }
  if (globals.json)
    print_json(result, options);
  else if (!globals.quiet)
    print_text(result, options);
  return exit_ok;
}

}  // namespace

void setup_session_purge(CLI::App& command, const global_options& globals, int& exit_status) {
  auto options = std::make_shared<session_purge_options>();
  command
      .add_option("--batch-size", options->batch_size,
                  "rows deleted per transaction (default 1000)")
      ->option_text("N")
      ->check(CLI::PositiveNumber);
  command
      .add_option("--max-seconds", options->max_seconds,
                  "start no new batch after SECONDS (default: run until done)")
      ->option_text("SECONDS")
      ->check(CLI::PositiveNumber);
  command
      .add_option("--only", options->only,
                  "purge only the session module's table or only the auth module's tables")
      ->option_text("session|auth")
      ->check(CLI::IsMember({"session", "auth"}));
  command.add_flag("--dry-run", options->dry_run, "count what would be deleted; delete nothing");
  command.callback(
      [options, &globals, &exit_status] { exit_status = run_session_purge(*options, globals); });
}

}  // namespace pgkit::cli
