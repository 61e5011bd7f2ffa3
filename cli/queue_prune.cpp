// `pgkit queue-prune`: deletes completed, discarded and cancelled jobs that ended more than a
// retention ago, in short batches. Meant for cron, like cache-gc: one summary line on stderr
// (or one JSON document on stdout), nothing at all with --quiet.

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "commands.hpp"
#include "context.hpp"
#include "number_option.hpp"
#include "pgkit/queue.hpp"

namespace pgkit::cli {
namespace {

struct queue_prune_options {
  std::chrono::milliseconds retention{std::chrono::hours{24 * 7}};
  std::size_t batch_size = 1000;
  std::optional<std::chrono::milliseconds> max_duration;  // std::nullopt: run until done
  bool dry_run = false;
};

int run_queue_prune(const queue_prune_options& options, context& ctx) {
  queue_options store_options;
  store_options.schema = ctx.schema();
  queue_store store{ctx.connect_pool(), store_options};
  sweep_options settings;
  settings.batch_size = options.batch_size;
  settings.max_duration = options.max_duration;
  settings.dry_run = options.dry_run;
  const auto& out = ctx.out();
  if (out.verbose()) {
    settings.progress = [&out](std::size_t batch, std::size_t total) {
      out.detail("batch deleted " + std::to_string(batch) + " (" + std::to_string(total) +
                 " in all)");
    };
  }
  auto result = store.prune(options.retention, settings);
  if (out.json()) {
    out.document({{"schema", store.schema()},
                  {"deleted", result.deleted},
                  {"dry_run", options.dry_run},
                  {"complete", result.complete},
                  {"batches", result.batches},
                  {"seconds", duration_seconds(result.elapsed)}});
    return exit_ok;
  }
  std::string jobs =
      std::to_string(result.deleted) + (result.deleted == 1 ? " finished job" : " finished jobs");
  if (options.dry_run) {
    out.report("would delete " + jobs + " (dry run)");
    return exit_ok;
  }
  std::string line = "deleted " + jobs + " in " + duration_text(result.elapsed);
  if (!result.complete)
    line += "; stopped after --max-seconds with finished jobs left (the next run continues)";
  out.report(line);
  return exit_ok;
}

}  // namespace

void setup_queue_prune(CLI::App& command, const global_options& globals, int& exit_status) {
  auto options = std::make_shared<queue_prune_options>();
  add_seconds_option(command, "--retention", options->retention, zero_seconds::allowed,
                     "delete jobs that ended longer ago than this, default 604800 (7 days)");
  add_count_option(command, "--batch-size", options->batch_size, 1, 1000000,
                   "rows deleted per transaction, default 1000");
  add_seconds_option(command, "--max-seconds", options->max_duration, zero_seconds::refused,
                     "start no new batch after this long, default no limit");
  command.add_flag("--dry-run", options->dry_run, "count what would be deleted, delete nothing");
  command.callback([options, &globals, &exit_status] {
    context ctx{globals};
    exit_status = run_queue_prune(*options, ctx);
  });
}

}  // namespace pgkit::cli
