// `pgkit session-purge`: deletes expired web sessions, and the auth module's expired sessions
// and spent one-time tokens, in short batches. Meant for cron: one summary line and notes on
// stderr (or one JSON document on stdout), nothing at all with --quiet.

#include <memory>
#include <optional>
#include <string>

#include "commands.hpp"
#include "context.hpp"
#include "job_metrics.hpp"
#include "number_option.hpp"
#include "pgkit/session.hpp"
#include "progress_line.hpp"

namespace pgkit::cli {
namespace {

struct session_purge_options {
  std::size_t batch_size = 1000;
  std::optional<std::chrono::milliseconds> max_duration;  // std::nullopt: run until done
  std::optional<std::chrono::milliseconds> lock_timeout;  // std::nullopt: the store's default
  std::string only;                                       // "", "session" or "auth"
  bool dry_run = false;
  std::string metrics_file;
};

std::string summary(const sweep_result& result, const session_purge_options& options) {
  std::string line = options.dry_run ? "would delete " : "deleted ";
  for (std::size_t i = 0; i < result.tables.size(); ++i) {
    const auto& entry = result.tables[i];
    if (i > 0)
      line += i + 1 == result.tables.size() ? " and " : ", ";
    line += std::to_string(entry.rows) + (i == 0 ? " rows from " : " from ") + entry.table;
  }
  line += options.dry_run ? " (dry run)" : " in " + duration_text(result.elapsed);
  if (!result.complete) {
    line += "; stopped after --max-seconds with expired rows left (the next run continues)";
  }
  return line;
}

nlohmann::ordered_json document(const sweep_result& result, const session_purge_options& options) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& entry : result.tables)
    out[entry.table] = entry.rows;
  out["dry_run"] = options.dry_run;
  out["complete"] = result.complete;
  out["batches"] = result.batches;
  out["seconds"] = duration_seconds(result.elapsed);
  out["skipped_modules"] = result.skipped_modules;
  return out;
}

int run_session_purge(const session_purge_options& options, context& ctx, job_outcome& outcome) {
  sweep_options settings;
  settings.batch_size = options.batch_size;
  settings.max_duration = options.max_duration;
  settings.lock_timeout = options.lock_timeout;
  settings.scope = options.only == "session" ? sweep_scope::session
                   : options.only == "auth"  ? sweep_scope::auth
                                             : sweep_scope::all;
  settings.dry_run = options.dry_run;

  const auto& schema = ctx.schema();
  auto connections = ctx.connect_pool();
  progress_line progress{ctx.out()};
  settings.progress = progress.sweep_progress("session-purge");
  auto result = sweep_expired_sessions(*connections->acquire(), schema, settings);
  progress.hide();
  outcome.record(result, options.dry_run);
  const auto& out = ctx.out();
  for (const auto& module : result.skipped_modules) {
    out.note("the " + module + " module is not applied in schema " + schema +
             "; skipping its tables");
  }
  if (out.json())
    out.document(document(result, options));
  else
    out.report(summary(result, options));
  return exit_ok;
}

}  // namespace

void setup_session_purge(CLI::App& command, const global_options& globals, int& exit_status) {
  auto options = std::make_shared<session_purge_options>();
  add_count_option(command, "--batch-size", options->batch_size, 1, 1000000,
                   "rows deleted per transaction, default 1000");
  add_seconds_option(command, "--max-seconds", options->max_duration, zero_seconds::refused,
                     "start no new batch after this long, default run until done");
  add_seconds_option(command, "--lock-timeout", options->lock_timeout, zero_seconds::refused,
                     "how long a batch may wait for a table lock, default 2");
  command
      .add_option("--only", options->only,
                  "purge only the session module's table or only the auth module's tables")
      ->option_text("session|auth")
      ->check(CLI::IsMember({"session", "auth"}));
  command.add_flag("--dry-run", options->dry_run, "count what would be deleted; delete nothing");
  add_metrics_file_option(command, options->metrics_file);
  command.callback([options, &globals, &exit_status] {
    context ctx{globals};
    exit_status = run_job("session-purge", options->metrics_file, [&](job_outcome& outcome) {
      return run_session_purge(*options, ctx, outcome);
    });
  });
}

}  // namespace pgkit::cli
