#pragma once
// --metrics-file FILE of the cron commands (cache-gc, session-purge, apply, migrate --apply):
// the run's outcome in node_exporter's textfile format, written whole to a temporary file beside
// FILE and renamed over it. A failed run keeps the previous file's last-success time.
// docs/metrics.md lists the series.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "pgkit/store.hpp"

namespace pgkit::cli {

/// What a run tells its metrics file besides success and duration.
struct job_outcome {
  std::vector<std::pair<std::string, std::uint64_t>> rows_deleted;  ///< per table
  std::optional<std::size_t> batches;
  std::optional<std::size_t> migrations_applied;

  /// Records a sweep's rows per table and batches (a dry run deletes nothing).
  void record(const sweep_result& result, bool dry_run);
};

/// Adds --metrics-file FILE, stored into `path`.
void add_metrics_file_option(CLI::App& command, std::string& path);

/// Runs `run` and returns its exit status. With a non-empty `path`, writes the outcome of job
/// `job` there afterwards (success when `run` returned 0), also when `run` threw, which is then
/// rethrown. Throws pgkit::error (exit 1) when the file cannot be written after a run that
/// succeeded.
int run_job(const std::string& job, const std::string& path,
            const std::function<int(job_outcome&)>& run);

}  // namespace pgkit::cli
