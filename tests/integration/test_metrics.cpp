// docs/metrics.md's example end to end: what it serves on /metrics passes `promtool check
// metrics`, and the pool's, the cache's (both tiers), the session store's and the listener's
// counters move as the example uses them; the stores' statistics() count failures by kind.

#include <doctest/doctest.h>

#include <chrono>
#include <regex>
#include <string>
#include <thread>

#include <prometheus/text_serializer.h>

#include <pgkit/metrics.hpp>
#include <pgkit/pgkit.hpp>

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
  auto applied = run_pgkit({"apply", "--addr", db.url(), "cache", "session"});
  REQUIRE_MESSAGE(applied.exit_code == 0, applied.err);
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

TEST_CASE("pgkit::metrics counts what the stores and the listener do") {
  pgkit_test::scratch_database db{"metrics_lib"};
  auto applied = run_pgkit({"apply", "--addr", db.url(), "cache", "session", "auth"});
  REQUIRE_MESSAGE(applied.exit_code == 0, applied.err);
  auto connections = pgkit::start(pgkit::config_from_url(db.url()));
  pgkit::cache_store cache{connections};
  pgkit::session_store sessions{connections};
  pgkit::auth_store auth{connections};
  pgkit::metrics observed;
  observed.observe("main", connections);
  observed.observe("main", cache);
  observed.observe("web", sessions);
  observed.observe("users", auth);

  SUBCASE("a failed statement is counted by its kind") {
    sessions.get(sessions.generate("{}", std::chrono::hours{1}));
    auto before = sessions.statistics();
    CHECK(before.operations == 2);
    pgkit_test::query_value(db.url(), "DROP TABLE pgkit.session");
    CHECK_THROWS_AS(sessions.generate("{}", std::chrono::hours{1}), pgkit::error);
    auto after = sessions.statistics();
    CHECK(after.operations == 3);
    CHECK(after.errors[static_cast<std::size_t>(pgkit::error_kind::undefined_object)] == 1);
    prometheus::TextSerializer text;
    auto scraped = text.Serialize(observed.Collect());
    CHECK(sample(scraped, "pgkit_session_errors_total{store=\"web\",kind=\"undefined_object\"}") ==
          1);
    CHECK(sample(scraped, "pgkit_auth_operations_total{store=\"users\"}") == 0);
  }
  SUBCASE("the cache's hits, misses and sets, get_many included") {
    cache.set_many("t", {{"a", "1"}, {"b", "2"}}, std::chrono::hours{1});
    auto values = cache.get_many("t", {"a", "b", "c"});
    CHECK(values[2] == std::nullopt);
    auto stats = cache.statistics();
    CHECK(stats.sets == 2);
    CHECK(stats.hits == 2);
    CHECK(stats.misses == 1);
    CHECK(stats.errors[static_cast<std::size_t>(pgkit::error_kind::usage)] == 0);
  }
  SUBCASE("one name per kind of thing observed") {
    CHECK_THROWS_AS(observed.observe("main", connections), pgkit::usage_error);
    CHECK_THROWS_AS(observed.observe("", sessions), pgkit::usage_error);
    observed.observe("main", sessions);  // another kind may reuse a name
  }
  SUBCASE("the listener's statistics, read from another thread") {
    pgkit::listener jobs{db.url()};
    jobs.listen("jobs");
    observed.observe("jobs", jobs);
    pgkit::notify(*connections, "jobs", "1");
    REQUIRE(jobs.receive(std::chrono::seconds{10}).has_value());
    std::string scraped;
    std::thread scraper{
        [&] { scraped = prometheus::TextSerializer{}.Serialize(observed.Collect()); }};
    scraper.join();
    CHECK(sample(scraped, "pgkit_listener_connected{listener=\"jobs\"}") == 1);
    CHECK(sample(scraped, "pgkit_listener_notifications_total{listener=\"jobs\"}") == 1);
    CHECK(sample(scraped, "pgkit_listener_reconnects_total{listener=\"jobs\"}") == 0);
  }
}
