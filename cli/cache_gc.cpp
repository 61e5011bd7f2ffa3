// `pgkit cache-gc`: deletes expired cache entries in short batches, for cron and systemd
// timers. One summary line on stderr, or one JSON document with --json, or nothing with --quiet.

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "commands.hpp"
#include "context.hpp"
#include "core/utf8.hpp"
#include "job_metrics.hpp"
#include "number_option.hpp"
#include "pgkit/cache.hpp"
#include "pgkit/error.hpp"
#include "progress_line.hpp"

namespace pgkit::cli {
namespace {

struct cache_gc_options {
  std::size_t batch_size = 10000;
  std::optional<std::chrono::milliseconds> max_duration;  // std::nullopt: no limit
  std::optional<std::chrono::milliseconds> lock_timeout;  // std::nullopt: the store's default
  std::optional<std::string> resource_type;
  bool dry_run = false;
  std::string metrics_file;
};

std::string entries(std::size_t count) {
  return std::to_string(count) + (count == 1 ? " expired cache entry" : " expired cache entries");
}

// Checked while parsing, like every other option: a resource type is non-empty UTF-8 text.
std::string checked_resource_type(const std::string& type) {
  if (type.empty())
    throw usage_error("--resource-type must not be empty", "run 'pgkit cache-gc --help'");
  check_utf8("--resource-type", type);
  return type;
}

int run_cache_gc(const cache_gc_options& options, context& ctx, job_outcome& outcome) {
  cache_options store_options;
  store_options.schema = ctx.schema();
  cache_store store{ctx.connect_pool(), store_options};
  const auto& out = ctx.out();

  nlohmann::ordered_json report{
      {"schema", store.schema()},
      {"resource_type",
       options.resource_type ? nlohmann::json(*options.resource_type) : nlohmann::json(nullptr)},
      {"dry_run", options.dry_run}};
  std::string summary;
  sweep_options settings;
  settings.batch_size = options.batch_size;
  settings.max_duration = options.max_duration;
  settings.lock_timeout = options.lock_timeout;
  settings.dry_run = options.dry_run;
  settings.resource_type = options.resource_type;
  if (options.dry_run) {
    // Counted by the sweep, so that --max-seconds holds while a lock keeps the count waiting.
    auto result = store.sweep(settings);
    auto expired = static_cast<std::size_t>(result.deleted);
    report["deleted"] = 0;
    report["expired"] = expired;
    report["seconds"] = duration_seconds(result.elapsed);
    summary = "would delete " + entries(expired) + " (dry run)";
  } else {
    if (out.verbose()) {
      settings.progress = [&out](std::size_t batch, std::size_t total) {
        out.detail("batch deleted " + std::to_string(batch) + " (" + std::to_string(total) +
                   " in all)");
      };
    }
    progress_line progress{out};
    if (!settings.progress)
      settings.progress = progress.sweep_progress("cache-gc");
    auto result = store.sweep(settings);
    progress.hide();
    outcome.record(result, false);
    auto deleted = static_cast<std::size_t>(result.deleted);
    report["deleted"] = deleted;
    report["batches"] = result.batches;
    report["seconds"] = duration_seconds(result.elapsed);
    report["finished"] = result.complete;
    summary = "deleted " + entries(deleted) + " in " + duration_text(result.elapsed);
    if (!result.complete)
      summary += " (stopped by --max-seconds; expired entries may remain)";
  }
  if (out.json())
    out.document(report);
  else
    out.report(summary);
  return exit_ok;
}

}  // namespace

void setup_cache_gc(CLI::App& command, const global_options& globals, int& exit_status) {
  auto options = std::make_shared<cache_gc_options>();
  add_count_option(command, "--batch-size", options->batch_size, 1, 1000000,
                   "rows deleted per batch, each its own transaction, default 10000");
  add_seconds_option(command, "--max-seconds", options->max_duration, zero_seconds::refused,
                     "start no new batch after this long, default no limit");
  add_seconds_option(command, "--lock-timeout", options->lock_timeout, zero_seconds::refused,
                     "how long a batch may wait for a table lock, default 2");
  command
      .add_option_function<std::string>(
          "--resource-type",
          [options](const std::string& type) {
            options->resource_type = checked_resource_type(type);
          },
          "only entries of this resource type")
      ->option_text("T");
  command.add_flag("--dry-run", options->dry_run, "count expired entries without deleting them");
  add_metrics_file_option(command, options->metrics_file);
  command.callback([options, &globals, &exit_status] {
    context ctx{globals};
    exit_status = run_job("cache-gc", options->metrics_file, [&](job_outcome& outcome) {
      return run_cache_gc(*options, ctx, outcome);
    });
  });
}

}  // namespace pgkit::cli
