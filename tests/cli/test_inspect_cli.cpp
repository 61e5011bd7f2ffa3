// `pgkit inspect` end to end: on a database with known contents --exact reports those numbers,
// the estimates come within 10 % of them after ANALYZE on a 1 M-row cache, and the backends
// listening on pgkit's channel and holding the migration lock are the ones the test started in
// that database (not those of another database on the same server).

#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <string>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "child_process.hpp"
#include "harness.hpp"
#include "pgkit/migration.hpp"

using namespace std::chrono_literals;
using pgkit_test::query_value;
using pgkit_test::run_pgkit;

namespace {

nlohmann::json inspect(const std::string& url, bool exact) {
  std::vector<std::string> args{"--json", "inspect", "--addr", url};
  if (exact)
    args.emplace_back("--exact");
  auto run = run_pgkit(args);
  REQUIRE_MESSAGE(run.exit_code == 0, run.err);
  return nlohmann::json::parse(run.out);
}

bool within_ten_percent(std::uint64_t estimate, std::uint64_t exact) {
  return std::abs(static_cast<double>(estimate) - static_cast<double>(exact)) <=
         0.1 * static_cast<double>(exact);
}

}  // namespace

TEST_CASE("pgkit inspect") {
  pgkit_test::scratch_database db{"inspect"};
  auto applied = run_pgkit({"apply", "--addr", db.url(), "cache", "session", "auth"});
  REQUIRE_MESSAGE(applied.exit_code == 0, applied.err);

  SUBCASE("--exact reports the rows the tables hold") {
    query_value(db.url(),
                "INSERT INTO pgkit.cache (resource_type, key, expires_at) SELECT 't', 'k' || i, "
                "CASE WHEN i <= 30 THEN now() - interval '1 minute' END FROM "
                "generate_series(1, 100) i");
    query_value(db.url(),
                "INSERT INTO pgkit.session (key_hash, expires_at) SELECT "
                "sha256(i::text::bytea), now() + CASE WHEN i <= 7 THEN interval "
                "'-1 minute' ELSE interval '1 hour' END FROM generate_series(1, 20) i");
    query_value(db.url(),
                "INSERT INTO pgkit.auth_user (email, deleted_at) VALUES "
                "('a@example.com', NULL), ('b@example.com', NULL), "
                "('c@example.com', now())");
    auto report = inspect(db.url(), true);
    CHECK(report["exact"] == true);
    CHECK(report["schema"] == "pgkit");
    const auto& cache = report["tables"]["cache"];
    CHECK(cache["rows"] == 100);
    CHECK(cache["live"] == 70);
    CHECK(cache["expired"] == 30);
    CHECK(cache["table_bytes"].get<std::uint64_t>() > 0);
    CHECK(report["tables"]["session"]["live"] == 13);
    CHECK(report["tables"]["session"]["expired"] == 7);
    CHECK(report["tables"]["auth_user"]["live"] == 2);
    CHECK(report["tables"]["auth_user"]["deleted"] == 1);
    CHECK(report["tables"]["auth_one_time_token"]["rows"] == 0);
    bool cache_module = false;
    for (const auto& module : report["modules"])
      cache_module = cache_module || (module["module"] == "cache" &&
                                      !module["applied_version"].get<std::string>().empty());
    CHECK(cache_module);

    auto text = run_pgkit({"inspect", "--addr", db.url(), "--exact"});
    CHECK(text.exit_code == 0);
    CHECK(text.out.find("cache               100 rows (live 70, expired 30)") != std::string::npos);
    CHECK(text.out.find("migration lock: free") != std::string::npos);
  }
  SUBCASE("estimates come within 10 % after ANALYZE on a 1 M-row cache") {
    query_value(db.url(),
                "INSERT INTO pgkit.cache (resource_type, key, expires_at) SELECT 't', "
                "'k' || i, now() + CASE WHEN i % 5 = 0 THEN interval '-1 minute' ELSE "
                "interval '1 hour' END FROM generate_series(1, 1000000) i");
    query_value(db.url(), "ANALYZE pgkit.cache");
    auto estimated = inspect(db.url(), false)["tables"]["cache"];
    CHECK(within_ten_percent(estimated["rows"].get<std::uint64_t>(), 1000000));
    CHECK(within_ten_percent(estimated["expired"].get<std::uint64_t>(), 200000));
    CHECK(within_ten_percent(estimated["live"].get<std::uint64_t>(), 800000));
  }
  SUBCASE("listeners on pgkit's channel and the migration lock's holder") {
    // A second database with its own listener and its own holder of the same lock key: the
    // report covers the database it was asked about, so neither may be counted.
    pgkit_test::scratch_database elsewhere{"inspect_other"};
    pgkit_test::child_process listening_elsewhere{
        {pgkit_test::pgkit_binary(), "listen", "--addr", elsewhere.url(), "pgkit_cache"}};
    pqxx::connection holder_elsewhere{elsewhere.url()};
    pqxx::nontransaction tx_elsewhere{holder_elsewhere};
    tx_elsewhere.exec("SELECT pg_advisory_lock(" +
                      std::to_string(pgkit::migration_lock_key("pgkit")) + ")");
    pgkit_test::child_process listening{
        {pgkit_test::pgkit_binary(), "listen", "--addr", db.url(), "pgkit_cache"}};
    const std::string listening_here =
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query "
        "LIKE 'LISTEN %pgkit_cache%'";
    REQUIRE(pgkit_test::eventually([&] {
      return query_value(db.url(), listening_here) == "1" &&
             query_value(elsewhere.url(), listening_here) == "1";
    }));
    pqxx::connection holder{db.url()};
    pqxx::nontransaction tx{holder};
    tx.exec("SELECT pg_advisory_lock(" + std::to_string(pgkit::migration_lock_key("pgkit")) + ")");
    auto report = inspect(db.url(), false);
    REQUIRE(report["listeners"].size() == 1);
    CHECK(report["migration_lock_holders"].size() == 1);
    CHECK(report["migration_lock_holders"][0]["pid"] == holder.backendpid());
    CHECK(report["tables"]["cache"]["rows"] == 0);
  }
}
