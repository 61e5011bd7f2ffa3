#include "job_metrics.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include "pgkit/error.hpp"

namespace pgkit::cli {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr const char* k_last_success = "pgkit_job_last_success_timestamp_seconds";

// The last-success time the previous file recorded for `job`, or 0.
double previous_last_success(const std::string& path, const std::string& job) {
  std::ifstream previous{path};
  const std::string prefix = std::string{k_last_success} + "{job=\"" + job + "\"} ";
  for (std::string line; std::getline(previous, line);) {
    if (line.compare(0, prefix.size(), prefix) != 0)
      continue;
    try {
      return std::stod(line.substr(prefix.size()));
    } catch (const std::exception&) {
      return 0;
    }
  }
  return 0;
}

MetricFamily gauge(const std::string& name, const std::string& help, const std::string& job,
                   double value, std::vector<ClientMetric::Label> more = {}) {
  ClientMetric sample;
  sample.label.push_back({"job", job});
  for (auto& label : more)
    sample.label.push_back(std::move(label));
  sample.gauge.value = value;
  return MetricFamily{name, help, MetricType::Gauge, {sample}};
}

std::string render(const std::string& job, const job_outcome& outcome, bool succeeded,
                   double duration, double last_success) {
  std::vector<MetricFamily> families;
  families.push_back(gauge("pgkit_job_success", "1 when the last run succeeded, 0 when it failed",
                           job, succeeded ? 1 : 0));
  families.push_back(
      gauge(k_last_success, "Unix time of the last successful run (0: none)", job, last_success));
  families.push_back(
      gauge("pgkit_job_duration_seconds", "How long the last run took", job, duration));
  if (!outcome.rows_deleted.empty()) {
    MetricFamily rows{
        "pgkit_job_rows_deleted", "Rows the last run deleted, per table", MetricType::Gauge, {}};
    for (const auto& [table, count] : outcome.rows_deleted) {
      ClientMetric sample;
      sample.label = {{"job", job}, {"table", table}};
      sample.gauge.value = static_cast<double>(count);
      rows.metric.push_back(sample);
    }
    families.push_back(rows);
  }
  if (outcome.batches) {
    families.push_back(gauge("pgkit_job_batches", "Batches the last run committed", job,
                             static_cast<double>(*outcome.batches)));
  }
  if (outcome.migrations_applied) {
    families.push_back(gauge("pgkit_job_migrations_applied", "Migrations the last run applied", job,
                             static_cast<double>(*outcome.migrations_applied)));
  }
  return prometheus::TextSerializer{}.Serialize(families);
}

[[noreturn]] void cannot_write(const std::string& path, int error_number) {
  throw error(error_kind::internal,
              "cannot write the metrics file " + path + ": " + std::strerror(error_number),
              "check that its directory exists and is writable");
}

// Writes `text` to a temporary file beside `path` and renames it over `path`.
void write_atomically(const std::string& path, const std::string& text) {
  std::string temporary = path + ".tmp." + std::to_string(::getpid());
  std::FILE* file = std::fopen(temporary.c_str(), "w");
  if (file == nullptr)
    cannot_write(path, errno);
  bool written = std::fwrite(text.data(), 1, text.size(), file) == text.size();
  int error_number = errno;
  if (std::fclose(file) != 0 && written) {
    written = false;
    error_number = errno;
  }
  if (!written || std::rename(temporary.c_str(), path.c_str()) != 0) {
    error_number = written ? errno : error_number;
    std::remove(temporary.c_str());
    cannot_write(path, error_number);
  }
}

}  // namespace

void job_outcome::record(const sweep_result& result, bool dry_run) {
  batches = result.batches;
  for (const auto& table : result.tables)
    rows_deleted.emplace_back(table.table, dry_run ? 0 : table.rows);
}

void add_metrics_file_option(CLI::App& command, std::string& path) {
  command
      .add_option("--metrics-file", path,
                  "write the run's outcome to FILE for node_exporter's textfile collector")
      ->option_text("FILE");
}

int run_job(const std::string& job, const std::string& path,
            const std::function<int(job_outcome&)>& run) {
  job_outcome outcome;
  auto started = std::chrono::steady_clock::now();
  auto seconds_since = [&started] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  int status = 1;
  try {
    status = run(outcome);
  } catch (...) {
    if (!path.empty()) {
      try {
        write_atomically(
            path, render(job, outcome, false, seconds_since(), previous_last_success(path, job)));
      } catch (const error&) {
        // The run's own error is the one to report.
      }
    }
    throw;
  }
  if (!path.empty()) {
    bool succeeded = status == 0;
    auto now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    write_atomically(path, render(job, outcome, succeeded, seconds_since(),
                                  succeeded ? now : previous_last_success(path, job)));
  }
  return status;
}

}  // namespace pgkit::cli
