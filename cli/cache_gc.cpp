// `pgkit cache-gc`: deletes expired cache entries in short batches, for cron and systemd
// timers. One summary line, or one JSON document with --json, or nothing with --quiet.

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "connect.hpp"
#include "pgkit/cache.hpp"
#include "pgkit/error.hpp"
#include "pgkit/pool.hpp"

namespace pgkit::cli {
namespace {

struct cache_gc_options {
  long long batch_size = 10000;  // signed, so that a negative value is refused, not wrapped
  double max_seconds = 0;        // 0: not given
  std::string resource_type;
  bool dry_run = false;
};

std::string entries(std::size_t count) {
  return std::to_string(count) + (count == 1 ? " expired cache entry" : " expired cache entries");
}

std::string seconds_text(std::chrono::nanoseconds elapsed) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", std::chrono::duration<double>(elapsed).count());
  return text;
}

int run_cache_gc(const cache_gc_options& options, const global_options& globals,
                 const CLI::App& command) {
  if (options.batch_size < 1) {
    throw usage_error(
        "--batch-size must be at least 1 (got " + std::to_string(options.batch_size) + ")",
        "run 'pgkit cache-gc --help'");
  }
  bool limited = command.count("--max-seconds") > 0;
  if (limited && !(options.max_seconds > 0 && std::isfinite(options.max_seconds))) {
    throw usage_error("--max-seconds must be a positive number of seconds",
                      "run 'pgkit cache-gc --help'");
  }
  if (command.count("--resource-type") > 0 && options.resource_type.empty())
    throw usage_error("--resource-type must not be empty", "run 'pgkit cache-gc --help'");

  auto config = resolve_connection(globals);
  config.pool_size = 1;
  if (globals.verbose)
    std::cerr << "pgkit: connecting to " << config.describe() << " (from " << config.source
              << ")\n";
  cache_options store_options;
  store_options.schema = resolve_schema(globals);
  cache store{std::make_shared<pool>(config), store_options};
  std::optional<std::string> resource_type;
  if (!options.resource_type.empty())
    resource_type = options.resource_type;

  nlohmann::json report{
      {"schema", store.schema()},
      {"resource_type", resource_type ? nlohmann::json(*resource_type) : nlohmann::json(nullptr)},
      {"dry_run", options.dry_run}};
  std::string summary;
  if (options.dry_run) {
    auto started = std::chrono::steady_clock::now();
    auto expired = store.count_expired(resource_type);
    auto elapsed = std::chrono::steady_clock::now() - started;
    report["deleted"] = 0;
    report["expired"] = expired;
    report["seconds"] = std::chrono::duration<double>(elapsed).count();
    summary = "would delete " + entries(expired) + " (dry run)";
  } else {
    pgkit::cache_gc_options gc_options;
    gc_options.batch_size = static_cast<std::size_t>(options.batch_size);
    gc_options.resource_type = resource_type;
    if (limited) {
      gc_options.max_duration = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::duration<double>(options.max_seconds));
      if (gc_options.max_duration->count() == 0)
        gc_options.max_duration = std::chrono::milliseconds{1};
    }
    if (globals.verbose) {
      gc_options.progress = [](std::size_t batch, std::size_t total) {
        std::cerr << "pgkit: batch deleted " << batch << " (" << total << " in all)\n";
      };
    }
    auto result = store.gc(gc_options);
    report["deleted"] = result.deleted;
    report["batches"] = result.batches;
    report["seconds"] = std::chrono::duration<double>(result.elapsed).count();
    report["finished"] = result.finished;
    summary = "deleted " + entries(result.deleted) + " in " + seconds_text(result.elapsed);
    if (!result.finished)
      summary += " (stopped by --max-seconds; expired entries may remain)";
  }
  if (globals.json)
    std::cout << report.dump() << '\n';
  else if (!globals.quiet)
    std::cout << summary << '\n';
  return exit_ok;
}

}  // namespace

void setup_cache_gc(CLI::App& command, const global_options& globals, int& exit_status) {
  auto options = std::make_shared<cache_gc_options>();
  command
      .add_option("--batch-size", options->batch_size,
                  "rows deleted per batch, each its own transaction (default 10000)")
      ->option_text("N");
  command
      .add_option("--max-seconds", options->max_seconds,
                  "start no new batch after this many seconds (default: no limit)")
      ->option_text("S");
  command
      .add_option("--resource-type", options->resource_type, "only entries of this resource type")
      ->option_text("T");
  command.add_flag("--dry-run", options->dry_run, "count expired entries without deleting them");
  command.callback([options, &globals, &exit_status, &command] {
    exit_status = run_cache_gc(*options, globals, command);
  });
}

}  // namespace pgkit::cli
