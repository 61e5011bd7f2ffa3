// The CLI beside a primary and its streaming standby (sandboxes of the test's own): `pgkit
// listen` across a failover, and migration commands pointed at the standby.

#include <doctest/doctest.h>

#include <signal.h>

#include <chrono>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "child_process.hpp"
#include "harness.hpp"
#include "pgkit/connection.hpp"
#include "pgkit/migration.hpp"
#include "pgkit/notify.hpp"

using namespace std::chrono_literals;
using pgkit_test::own_sandbox;
using pgkit_test::run_pgkit;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("pgkit listen keeps printing across a failover") {
  own_sandbox primary;
  own_sandbox standby{own_sandbox::standby_of{primary}};
  auto url = pgkit_test::primary_of(primary, standby);
  pgkit_test::child_process listen{{pgkit_test::pgkit_binary(), "listen", "--addr", url,
                                    "--verbose", "jobs", "--heartbeat", "1"}};
  REQUIRE_MESSAGE(listen.wait_for_stderr("pgkit: listening on", 30s), listen.err());
  {
    auto sender = pgkit::connect(url);
    pgkit::notify(*sender, "jobs", "before");
  }
  CHECK(listen.read_line(10s) == std::optional<std::string>{"jobs\tbefore"});

  primary.stop();
  standby.promote();
  REQUIRE_MESSAGE(listen.wait_for_stderr("reconnected", 60s), listen.err());
  {
    auto sender = pgkit::connect(url);
    pgkit::notify(*sender, "jobs", "after the promotion");
  }
  CHECK(listen.read_line(10s) == std::optional<std::string>{"jobs\tafter the promotion"});
  listen.send_signal(SIGTERM);
  CHECK(listen.wait(30s) == 0);
}

TEST_CASE("migration commands pointed at a standby") {
  own_sandbox primary;
  REQUIRE(run_pgkit({"apply", "--addr=" + primary.url(), "cache"}).exit_code == 0);
  own_sandbox standby{own_sandbox::standby_of{primary}};
  auto addr = "--addr=" + standby.url();
  // Another session holds the migration lock on the standby: a command that went for the lock
  // first would wait for it and then report a lock timeout instead.
  auto holder = pgkit::connect(standby.url());
  pqxx::nontransaction{*holder}.exec("SELECT pg_advisory_lock(" +
                                     std::to_string(pgkit::migration_lock_key("pgkit")) + ")");

  SUBCASE("apply and rollback exit 1, naming the standby, before any lock") {
    for (const auto& command :
         {std::vector<std::string>{"apply", addr, "--lock-wait", "5", "session"},
          std::vector<std::string>{"rollback", addr, "--lock-wait", "5", "cache"}}) {
      auto refused = run_pgkit(command);
      CHECK(refused.exit_code == 1);
      CHECK_MESSAGE(contains(refused.err,
                             "pgkit: error: the server at " + standby.address() + " is a standby"),
                    refused.err);
      CHECK_FALSE(contains(refused.err, "migration lock"));
    }
    CHECK(pgkit_test::query_value(primary.url(), "SELECT to_regclass('pgkit.session') IS NULL") ==
          "t");
  }
  SUBCASE("status works there") {
    auto status = run_pgkit({"status", addr, "--exit-code", "cache"});
    CHECK_MESSAGE(status.exit_code == 0, status.err);
    CHECK(contains(status.out, "up to date"));
  }
}
