// docs/metrics.md's example end to end: what it serves on /metrics passes `promtool check
// metrics`, and the pool's, the cache's (both tiers), the session store's and the listener's
// counters move as the example uses them.

#include <doctest/doctest.h>

#include <chrono>
#include <regex>
#include <string>

#include "child_process.hpp"
#include "harness.hpp"

using namespace std::chrono_literals;
using pgkit_test::run_pgkit;
using pgkit_test::run_process;

namespace {

// The value of the sample `series` (name and labels exactly as served), or -1 when absent.
double sample(const std::string& scraped, const std::string& series) {
  std::regex line{"(^|\n)" +
                  std::regex_replace(series, std::regex{R"([{}\[\]().+*?^$|\\])"}, R"(\$&)") +
                  " ([^\n ]+)"};
  std::smatch match;
  if (!std::regex_search(scraped, match, line))
    return -1;
  return std::stod(match[2]);
}

std::string scrape(const std::string& address) {
  auto fetched = run_process({"curl", "-sSf", "--max-time", "10", address});
  REQUIRE_MESSAGE(fetched.exit_code == 0, fetched.err);
  return fetched.out;
}

void check_with_promtool(const std::string& scraped) {
  pgkit_test::process_options input;
  input.input = scraped;
  auto checked = run_process({"promtool", "check", "metrics"}, input);
  CHECK_MESSAGE(checked.exit_code == 0, (checked.out + checked.err));
}

}  // namespace

TEST_CASE("pgkit::metrics") {
  pgkit_test::scratch_database db{"metrics"};
  for (const char* module : {"cache", "session"}) {
    auto applied = run_pgkit({"apply", "--addr", db.url(), module});
    REQUIRE_MESSAGE(applied.exit_code == 0, applied.err);
  }
  pgkit_test::child_process example{{PGKIT_EXAMPLE_METRICS, db.url()}};
  auto serving = example.read_line(20s);
  REQUIRE_MESSAGE(serving.has_value(), example.err());
  std::smatch match;
  REQUIRE(std::regex_match(*serving, match,
                           std::regex{"serving (http://127\\.0\\.0\\.1:[0-9]+/metrics)"}));
  const std::string address = match[1];

  auto before = scrape(address);
  check_with_promtool(before);
  const std::string pool = "{db_client_connection_pool_name=\"main\"}";
  const std::string cache = "{cache=\"main\"}";
  CHECK(sample(before, "pgkit_listener_connected{listener=\"jobs\"}") == 1);
  CHECK(sample(before, "db_client_connection_max" + pool) > 0);
  CHECK(sample(before, "pgkit_cache_sets_total" + cache) == 0);
  CHECK(sample(before, "pgkit_listener_notifications_total{listener=\"jobs\"}") == 0);

  for (int round = 1; round <= 2; ++round) {
    example.write_stdin("work\n");
    auto done = example.read_line(20s);
    REQUIRE_MESSAGE(done == std::optional<std::string>{"done"}, example.err());
  }
  auto after = scrape(address);
  check_with_promtool(after);
  // Two rounds: each sets "home" (dropping the near tier's copy), reads it from the table and
  // then from the near tier, and misses "missing" in the table.
  CHECK(sample(after, "pgkit_cache_sets_total" + cache) == 2);
  CHECK(sample(after, "pgkit_cache_hits_total" + cache) >= 2);
  CHECK(sample(after, "pgkit_cache_misses_total" + cache) >= 2);
  CHECK(sample(after, "pgkit_cache_near_hits_total" + cache) >= 1);
  CHECK(sample(after, "pgkit_cache_operations_total" + cache) >
        sample(before, "pgkit_cache_operations_total" + cache));
  CHECK(sample(after, "pgkit_cache_errors_total{cache=\"main\",kind=\"sql\"}") == 0);
  CHECK(sample(after, "pgkit_session_operations_total{store=\"main\"}") >=
        sample(before, "pgkit_session_operations_total{store=\"main\"}") + 4);
  CHECK(sample(after, "pgkit_listener_notifications_total{listener=\"jobs\"}") == 2);
  CHECK(sample(after, "pgkit_listener_last_heartbeat_timestamp_seconds{listener=\"jobs\"}") > 0);
  CHECK(sample(after, "pgkit_pool_acquires_total" + pool) >
        sample(before, "pgkit_pool_acquires_total" + pool));
  // Every acquire is one observation of the wait histogram, its +Inf bucket included.
  CHECK(sample(after, "db_client_connection_wait_time_seconds_count" + pool) ==
        sample(after, "pgkit_pool_acquires_total" + pool) +
            sample(after, "db_client_connection_timeouts_total" + pool));
  CHECK(sample(after,
               "db_client_connection_wait_time_seconds_bucket{db_client_connection_pool_name="
               "\"main\",le=\"+Inf\"}") ==
        sample(after, "db_client_connection_wait_time_seconds_count" + pool));
  CHECK(sample(after,
               "db_client_connections_usage{db_client_connection_pool_name=\"main\","
               "state=\"used\"}") == 0);

  example.close_stdin();
  CHECK(example.wait(20s) == 0);
}
