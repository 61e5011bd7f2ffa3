#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "child_process.hpp"
#include "harness.hpp"
#include "pgkit/connection.hpp"

namespace {

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.pop_back();
  return text;
}

}  // namespace

TEST_CASE("scripts/pg-sandbox") {
  std::string script = pgkit_test::source_dir() + "/scripts/pg-sandbox";
  std::string owner = "pgkit-test-sandbox-" + std::to_string(::getpid());

  SUBCASE("two sandboxes run at once on their own ports and are gone after stop") {
    auto first = pgkit_test::run_process({script, "start", "--owner", owner});
    auto second = pgkit_test::run_process({script, "start", "--owner", owner});
    REQUIRE_MESSAGE(first.exit_code == 0, first.err);
    REQUIRE_MESSAGE(second.exit_code == 0, second.err);
    std::string first_dir = trimmed(first.out), second_dir = trimmed(second.out);
    CHECK(first_dir != second_dir);

    std::string first_url = trimmed(pgkit_test::run_process({script, "url", first_dir}).out);
    std::string second_url = trimmed(pgkit_test::run_process({script, "url", second_dir}).out);
    CHECK(first_url != second_url);
    // Each server is a separate cluster: a table made in one is absent from the other.
    pgkit_test::query_value(first_url, "CREATE TABLE only_in_first (x int)");
    CHECK(pgkit_test::query_value(first_url, "SELECT to_regclass('only_in_first') IS NOT NULL") ==
          "t");
    CHECK(pgkit_test::query_value(second_url, "SELECT to_regclass('only_in_first') IS NOT NULL") ==
          "f");
    CHECK(pgkit_test::query_value(first_url, "SHOW fsync") == "off");

    auto stopped = pgkit_test::run_process({script, "stop-owned", owner});
    CHECK_MESSAGE(stopped.exit_code == 0, stopped.err);
    CHECK_FALSE(std::filesystem::exists(first_dir));
    CHECK_FALSE(std::filesystem::exists(second_dir));
    CHECK_THROWS(pgkit::connect(first_url + "?connect_timeout=2"));
  }
  SUBCASE("a state file from a killed run is cleaned up by the next start") {
    std::string state = pgkit_test::temp_dir("sandbox-state") + "/sandbox.env";
    auto killed_run =
        pgkit_test::run_process({script, "start", "--owner", owner, "--state", state});
    REQUIRE_MESSAGE(killed_run.exit_code == 0, killed_run.err);
    std::string stale_dir = trimmed(killed_run.out);
    // The next run finds the state file its predecessor left and stops that server first.
    auto next_run = pgkit_test::run_process({script, "start", "--owner", owner, "--state", state});
    REQUIRE_MESSAGE(next_run.exit_code == 0, next_run.err);
    CHECK_FALSE(std::filesystem::exists(stale_dir));
    auto listed = pgkit_test::run_process({script, "list"});
    CHECK(listed.out.find(stale_dir) == std::string::npos);
    CHECK(listed.out.find(trimmed(next_run.out)) != std::string::npos);
    CHECK(pgkit_test::run_process({script, "stop", state}).exit_code == 0);
    CHECK_FALSE(std::filesystem::exists(trimmed(next_run.out)));
    CHECK_FALSE(std::filesystem::exists(state));
  }
  SUBCASE("a restarted sandbox keeps its port and data") {
    auto started = pgkit_test::run_process({script, "start", "--owner", owner});
    REQUIRE_MESSAGE(started.exit_code == 0, started.err);
    std::string dir = trimmed(started.out);
    std::string url = trimmed(pgkit_test::run_process({script, "url", dir}).out);
    pgkit_test::query_value(url, "CREATE TABLE kept (x int)");
    auto restarted = pgkit_test::run_process({script, "restart", dir});
    CHECK_MESSAGE(restarted.exit_code == 0, restarted.err);
    CHECK(pgkit_test::query_value(url, "SELECT to_regclass('kept') IS NOT NULL") == "t");
    CHECK(pgkit_test::run_process({script, "stop", dir}).exit_code == 0);
    CHECK_FALSE(std::filesystem::exists(dir));
  }
  SUBCASE("a start that failed leaves nothing, and stopping its state file is quiet") {
    std::string state = pgkit_test::temp_dir("sandbox-state") + "/sandbox.env";
    pgkit_test::process_options no_server;
    no_server.env["PG_BINDIR"] = pgkit_test::temp_dir("no-postgres");
    auto failed =
        pgkit_test::run_process({script, "start", "--owner", owner, "--state", state}, no_server);
    CHECK(failed.exit_code == 1);
    CHECK(failed.err.find("PG_BINDIR=" + no_server.env["PG_BINDIR"] +
                          " holds no initdb, pg_ctl and postgres") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(state));
    // What the CTest fixture's cleanup runs after a failed start: no second, misleading error.
    auto stopped = pgkit_test::run_process({script, "stop", state});
    CHECK(stopped.exit_code == 0);
    CHECK(stopped.err.empty());
  }
  SUBCASE("PG_BINDIR selects the server the sandbox runs") {
    const char* bindir = std::getenv("PG_BINDIR");
    auto started = pgkit_test::run_process({script, "start", "--owner", owner});
    REQUIRE_MESSAGE(started.exit_code == 0, started.err);
    std::string dir = trimmed(started.out);
    std::string url = trimmed(pgkit_test::run_process({script, "url", dir}).out);
    if (bindir != nullptr) {
      // "postgres (PostgreSQL) 17.10" (Debian adds " (Debian 15.18-...)") runs a 17 server.
      auto said = pgkit_test::run_process({std::string{bindir} + "/postgres", "--version"}).out;
      auto number = said.substr(said.find("(PostgreSQL) ") + 13);
      CHECK(number.substr(0, number.find('.')) ==
            pgkit_test::query_value(url,
                                    "SELECT current_setting('server_version_num')::int / 10000"));
    }
    CHECK(pgkit_test::run_process({script, "stop", dir}).exit_code == 0);
  }
  SUBCASE("a standby streams from its primary until it is promoted") {
    pgkit_test::own_sandbox primary;
    pgkit_test::query_value(primary.url(), "CREATE TABLE before_copy (x int)");
    pgkit_test::query_value(primary.url(), "INSERT INTO before_copy VALUES (1)");
    pgkit_test::own_sandbox standby{pgkit_test::own_sandbox::standby_of{primary}};
    CHECK(standby.url() != primary.url());
    CHECK(pgkit_test::query_value(standby.url(), "SELECT pg_is_in_recovery()") == "t");
    pgkit_test::query_value(primary.url(), "INSERT INTO before_copy VALUES (2)");
    CHECK(pgkit_test::eventually([&] {
      return pgkit_test::query_value(standby.url(), "SELECT count(*) FROM before_copy") == "2";
    }));
    CHECK(pgkit_test::query_value(primary.url(), "SELECT state FROM pg_stat_replication") ==
          "streaming");
    CHECK_THROWS(pgkit_test::query_value(standby.url(), "INSERT INTO before_copy VALUES (3)"));

    primary.stop();
    standby.promote();
    CHECK(pgkit_test::query_value(standby.url(), "SELECT pg_is_in_recovery()") == "f");
    pgkit_test::query_value(standby.url(), "INSERT INTO before_copy VALUES (3)");
    CHECK(pgkit_test::query_value(standby.url(), "SELECT count(*) FROM before_copy") == "3");
  }
}
