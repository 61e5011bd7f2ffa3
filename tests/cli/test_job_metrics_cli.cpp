// --metrics-file of the cron commands end to end: what cache-gc, session-purge, apply and
// migrate --apply write passes `promtool check metrics` and carries the run's counts; a failed
// run writes success 0 and keeps the previous file's last-success time.

#include <doctest/doctest.h>

#include <regex>
#include <string>

#include "harness.hpp"

using pgkit_test::query_value;
using pgkit_test::read_file;
using pgkit_test::run_pgkit;
using pgkit_test::run_process;

namespace {

// The value of `series` (name and labels as written) in `text`, or "" when it is absent.
std::string value_of(const std::string& text, const std::string& series) {
  auto at = text.find("\n" + series + " ");
  if (at == std::string::npos)
    return {};
  auto start = at + series.size() + 2;
  return text.substr(start, text.find('\n', start) - start);
}

void check_with_promtool(const std::string& path) {
  pgkit_test::process_options input;
  input.input = read_file(path);
  auto checked = run_process({"promtool", "check", "metrics"}, input);
  CHECK_MESSAGE(checked.exit_code == 0, (checked.out + checked.err));
}

}  // namespace

TEST_CASE("--metrics-file") {
  pgkit_test::scratch_database db{"job_metrics"};
  auto dir = pgkit_test::temp_dir("job-metrics");

  SUBCASE("cache-gc writes its deletions; a failed run keeps the last success") {
    REQUIRE(run_pgkit({"apply", "--addr", db.url(), "cache"}).exit_code == 0);
    query_value(db.url(),
                "INSERT INTO pgkit.cache (resource_type, key, value, expires_at) SELECT 'old', "
                "'k' || i, '\\x00', now() - interval '1 minute' FROM generate_series(1, 2500) i");
    auto file = dir + "/cache_gc.prom";
    auto run =
        run_pgkit({"cache-gc", "--addr", db.url(), "--batch-size", "1000", "--metrics-file", file});
    REQUIRE_MESSAGE(run.exit_code == 0, run.err);
    auto text = "\n" + read_file(file);
    check_with_promtool(file);
    CHECK(value_of(text, "pgkit_job_success{job=\"cache-gc\"}") == "1");
    CHECK(value_of(text, "pgkit_job_rows_deleted{job=\"cache-gc\",table=\"cache\"}") == "2500");
    CHECK(value_of(text, "pgkit_job_batches{job=\"cache-gc\"}") == "3");
    auto last_success =
        value_of(text, "pgkit_job_last_success_timestamp_seconds{job=\"cache-gc\"}");
    REQUIRE(!last_success.empty());
    CHECK(std::stod(last_success) > 1.7e9);
    CHECK(!value_of(text, "pgkit_job_duration_seconds{job=\"cache-gc\"}").empty());

    query_value(db.url(), "DROP TABLE pgkit.cache");
    auto failed = run_pgkit({"cache-gc", "--addr", db.url(), "--metrics-file", file});
    CHECK(failed.exit_code == 1);
    auto after = "\n" + read_file(file);
    check_with_promtool(file);
    CHECK(value_of(after, "pgkit_job_success{job=\"cache-gc\"}") == "0");
    CHECK(value_of(after, "pgkit_job_last_success_timestamp_seconds{job=\"cache-gc\"}") ==
          last_success);
    CHECK(value_of(after, "pgkit_job_rows_deleted{job=\"cache-gc\",table=\"cache\"}").empty());
    // Nothing is left beside the file: the temporary was renamed over it.
    auto listing = run_process({"ls", "-A", dir});
    CHECK(listing.out == "cache_gc.prom\n");
  }
  SUBCASE("a first run that fails records no last success") {
    auto file = dir + "/never.prom";
    auto failed = run_pgkit({"cache-gc", "--addr", db.url(), "--metrics-file", file});
    CHECK(failed.exit_code == 1);
    check_with_promtool(file);
    auto text = "\n" + read_file(file);
    CHECK(value_of(text, "pgkit_job_success{job=\"cache-gc\"}") == "0");
    CHECK(value_of(text, "pgkit_job_last_success_timestamp_seconds{job=\"cache-gc\"}") == "0");
  }
  SUBCASE("session-purge writes its deletions per table") {
    REQUIRE(run_pgkit({"apply", "--addr", db.url(), "session"}).exit_code == 0);
    query_value(db.url(),
                "INSERT INTO pgkit.session (key_hash, expires_at) SELECT "
                "sha256(('old' || i)::bytea), now() - interval '1 minute' FROM "
                "generate_series(1, 1500) i");
    auto file = dir + "/purge.prom";
    auto run = run_pgkit({"session-purge", "--addr", db.url(), "--metrics-file", file});
    REQUIRE_MESSAGE(run.exit_code == 0, run.err);
    check_with_promtool(file);
    auto text = "\n" + read_file(file);
    CHECK(value_of(text, "pgkit_job_success{job=\"session-purge\"}") == "1");
    CHECK(value_of(text, "pgkit_job_rows_deleted{job=\"session-purge\",table=\"session\"}") ==
          "1500");
    CHECK(value_of(text, "pgkit_job_batches{job=\"session-purge\"}") == "2");
  }
  SUBCASE("apply and migrate --apply write the migrations they applied") {
    auto file = dir + "/apply.prom";
    auto run = run_pgkit({"apply", "--addr", db.url(), "cache", "--metrics-file", file});
    REQUIRE_MESSAGE(run.exit_code == 0, run.err);
    check_with_promtool(file);
    auto text = "\n" + read_file(file);
    CHECK(value_of(text, "pgkit_job_success{job=\"apply\"}") == "1");
    CHECK(std::stoi(value_of(text, "pgkit_job_migrations_applied{job=\"apply\"}")) >= 1);
    auto again =
        run_pgkit({"migrate", "--apply", "--addr", db.url(), "cache", "--metrics-file", file});
    REQUIRE_MESSAGE(again.exit_code == 0, again.err);
    CHECK(value_of("\n" + read_file(file), "pgkit_job_migrations_applied{job=\"apply\"}") == "0");
  }
  SUBCASE("migrate without --apply refuses --metrics-file") {
    auto run =
        run_pgkit({"migrate", "--addr", db.url(), "cache", "--metrics-file", dir + "/dry.prom"});
    CHECK(run.exit_code == 2);
    CHECK(run.err.find("--metrics-file needs --apply") != std::string::npos);
  }
  SUBCASE("a file in a missing directory is a clear error after the run") {
    REQUIRE(run_pgkit({"apply", "--addr", db.url(), "cache"}).exit_code == 0);
    auto run =
        run_pgkit({"cache-gc", "--addr", db.url(), "--metrics-file", dir + "/missing/gc.prom"});
    CHECK(run.exit_code == 1);
    CHECK(run.err.find("cannot write the metrics file " + dir + "/missing/gc.prom") !=
          std::string::npos);
  }
}
