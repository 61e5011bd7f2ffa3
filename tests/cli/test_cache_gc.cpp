// `pgkit cache-gc` end to end: the summary line, --json, --dry-run, --quiet, --resource-type,
// bad options, a database without the cache module, and two runs at once on 60 000 rows.

#include <doctest/doctest.h>

#include <regex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "harness.hpp"

using pgkit_test::query_value;
using pgkit_test::run_pgkit;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A scratch database with the cache module applied, `expired` expired rows of type "old" and
// 1 000 live rows (half with an expiry in the future, half without one).
struct cache_database {
  explicit cache_database(int expired, const std::string& schema = "pgkit") : db{"cache_gc"} {
    auto applied = run_pgkit({"apply", "--addr", db.url(), "--schema", schema, "cache"});
    REQUIRE_MESSAGE(applied.exit_code == 0, applied.err);
    table = schema + ".cache";
    add_expired(expired, "old");
    query_value(db.url(),
                "INSERT INTO " + table +
                    " (resource_type, key, expires_at) SELECT "
                    "'live', 'k' || i, CASE WHEN i % 2 = 0 THEN now() + interval '1 hour' END "
                    "FROM generate_series(1, 1000) AS i");
  }
  void add_expired(int count, const std::string& type) {
    query_value(db.url(), "INSERT INTO " + table +
                              " (resource_type, key, value, expires_at) "
                              "SELECT '" +
                              type +
                              "', 'k' || i, '\\x00ff', now() - interval '1 minute' "
                              "FROM generate_series(1, " +
                              std::to_string(count) + ") AS i");
  }
  std::string count(const std::string& where) const {
    return query_value(db.url(), "SELECT count(*) FROM " + table + " WHERE " + where);
  }
  std::string live() const { return count("resource_type = 'live'"); }

  pgkit_test::scratch_database db;
  std::string table;
};

}  // namespace

TEST_CASE("pgkit cache-gc") {
  SUBCASE("deletes expired entries and prints one summary line on stderr") {
    cache_database c{2500};
    auto result = run_pgkit({"cache-gc", "--addr", c.db.url(), "--batch-size", "1000"});
    CHECK_MESSAGE(result.exit_code == 0, result.err);
    CHECK(std::regex_match(
        result.err, std::regex{"deleted 2500 expired cache entries in [0-9]+\\.[0-9][0-9] s\n"}));
    CHECK(result.out.empty());
    CHECK(c.count("expires_at <= now()") == "0");
    CHECK(c.live() == "1000");
    auto again = run_pgkit({"cache-gc", "--addr", c.db.url()});
    CHECK(
        std::regex_match(again.err, std::regex{"deleted 0 expired cache entries in [0-9.]+ s\n"}));
  }
  SUBCASE("one expired entry is an entry") {
    cache_database c{1};
    auto result = run_pgkit({"cache-gc", "--addr", c.db.url()});
    CHECK(contains(result.err, "deleted 1 expired cache entry in "));
  }
  SUBCASE("--json prints one document with the counts") {
    cache_database c{1200};
    auto result = run_pgkit({"--json", "cache-gc", "--addr", c.db.url(), "--batch-size", "500"});
    CHECK_MESSAGE(result.exit_code == 0, result.err);
    auto report = nlohmann::json::parse(result.out);
    CHECK(report["deleted"] == 1200);
    CHECK(report["batches"] == 3);
    CHECK(report["finished"] == true);
    CHECK(report["dry_run"] == false);
    CHECK(report["schema"] == "pgkit");
    CHECK(report["resource_type"].is_null());
    CHECK(report["seconds"].get<double>() >= 0);
  }
  SUBCASE("--dry-run counts and deletes nothing") {
    cache_database c{700};
    auto result = run_pgkit({"cache-gc", "--addr", c.db.url(), "--dry-run"});
    CHECK(result.exit_code == 0);
    CHECK(result.err == "would delete 700 expired cache entries (dry run)\n");
    CHECK(c.count("true") == "1700");
    auto json = run_pgkit({"cache-gc", "--addr", c.db.url(), "--dry-run", "--json"});
    auto report = nlohmann::json::parse(json.out);
    CHECK(report["expired"] == 700);
    CHECK(report["deleted"] == 0);
    CHECK(report["dry_run"] == true);
  }
  SUBCASE("-q prints nothing on success") {
    cache_database c{10};
    auto result = run_pgkit({"cache-gc", "--addr", c.db.url(), "-q"});
    CHECK(result.exit_code == 0);
    CHECK(result.out.empty());
    CHECK(result.err.empty());
    CHECK(c.count("true") == "1000");
  }
  SUBCASE("--resource-type limits it to one type") {
    cache_database c{300};
    c.add_expired(200, "other");
    auto result = run_pgkit({"cache-gc", "--addr", c.db.url(), "--resource-type", "other"});
    CHECK(contains(result.err, "deleted 200 expired cache entries"));
    CHECK(c.count("resource_type = 'old'") == "300");
    CHECK(c.count("resource_type = 'other'") == "0");
  }
  SUBCASE("--verbose reports each batch on stderr") {
    cache_database c{250};
    auto result = run_pgkit({"cache-gc", "--addr", c.db.url(), "--batch-size", "100", "-v"});
    CHECK(contains(result.err, "pgkit: batch deleted 100 (100 in all)\n"));
    CHECK(contains(result.err, "pgkit: batch deleted 50 (250 in all)\n"));
  }
  SUBCASE("--schema, and --max-seconds accepts fractions") {
    cache_database c{100, "app_cache"};
    auto result = run_pgkit(
        {"cache-gc", "--addr", c.db.url(), "--schema", "app_cache", "--max-seconds", "30.5"});
    CHECK_MESSAGE(result.exit_code == 0, result.err);
    CHECK(contains(result.err, "deleted 100 expired cache entries"));
  }
}

TEST_CASE("pgkit cache-gc failures") {
  pgkit_test::scratch_database db{"cache_gc_fail"};

  SUBCASE("bad options exit 2 without touching the database") {
    for (const auto& args : std::vector<std::vector<std::string>>{{"--batch-size", "0"},
                                                                  {"--batch-size", "-5"},
                                                                  {"--batch-size", "many"},
                                                                  {"--max-seconds", "0"},
                                                                  {"--max-seconds", "-1"},
                                                                  {"--max-seconds", "soon"},
                                                                  {"--resource-type", ""},
                                                                  {"--no-such-option"}}) {
      std::vector<std::string> argv{"cache-gc", "--addr", "postgresql://nobody@127.0.0.1:1/x"};
      argv.insert(argv.end(), args.begin(), args.end());
      auto result = run_pgkit(argv);
      CHECK_MESSAGE(result.exit_code == 2, args.front());
      CHECK(contains(result.err, "pgkit: error: "));
      CHECK(result.out.empty());
    }
    auto zero = run_pgkit({"cache-gc", "--batch-size", "0"});
    CHECK(contains(zero.err,
                   "pgkit: error: --batch-size must be a whole number from 1 to 1000000, not "
                   "'0'\n"));
  }
  SUBCASE("without the cache module: exit 1 and the command that fixes it") {
    auto result = run_pgkit({"cache-gc", "--addr", db.url()});
    CHECK(result.exit_code == 1);
    CHECK(result.err ==
          "pgkit: error: the cache module is not applied in schema pgkit (there is no table "
          "pgkit.cache)\npgkit: hint: run pgkit apply cache\n");
    auto dry = run_pgkit({"cache-gc", "--addr", db.url(), "--dry-run", "--schema", "other"});
    CHECK(dry.exit_code == 1);
    CHECK(contains(dry.err, "pgkit: hint: run pgkit apply cache --schema other\n"));
  }
  SUBCASE("an unreachable server: exit 1") {
    auto result = run_pgkit({"cache-gc", "--addr", "postgresql://nobody:secret@127.0.0.1:1/x"});
    CHECK(result.exit_code == 1);
    CHECK(contains(result.err, "pgkit: error: "));
    CHECK_FALSE(contains(result.err, "secret"));
  }
}

TEST_CASE("pgkit cache-gc: two runs at once on 60 000 expired rows") {
  cache_database c{60000};
  pgkit_test::process_result first, second;
  auto run = [&c](pgkit_test::process_result& into) {
    into = run_pgkit({"cache-gc", "--addr", c.db.url(), "--json", "--batch-size", "1000"});
  };
  std::thread one{run, std::ref(first)};
  std::thread two{run, std::ref(second)};
  one.join();
  two.join();
  REQUIRE_MESSAGE(first.exit_code == 0, first.err);
  REQUIRE_MESSAGE(second.exit_code == 0, second.err);
  auto a = nlohmann::json::parse(first.out), b = nlohmann::json::parse(second.out);
  MESSAGE("first deleted " << a["deleted"] << ", second " << b["deleted"]);
  CHECK(a["deleted"].get<long>() + b["deleted"].get<long>() == 60000);
  CHECK(c.count("expires_at <= now()") == "0");
  CHECK(c.live() == "1000");
  CHECK(c.count("resource_type = 'live' AND expires_at IS NULL") == "500");
}

TEST_CASE("pgkit cache-gc --max-seconds is a deadline for the batch in flight") {
  cache_database c{100};
  // A table lock held elsewhere keeps the first batch waiting (its lock timeout, 600 s, is far
  // longer than the time limit, so that only the limit can end the wait however loaded the
  // machine); the batch is canceled when the limit passes.
  pqxx::connection holder{c.db.url()};
  pqxx::work lock{holder};
  lock.exec("LOCK TABLE " + c.table + " IN ACCESS EXCLUSIVE MODE");
  auto result = run_pgkit(
      {"cache-gc", "--addr", c.db.url(), "--max-seconds", "0.5", "--lock-timeout", "600"});
  lock.abort();
  CHECK(result.exit_code == 1);
  CHECK(result.out == "");
  CHECK(contains(result.err, "pgkit: error: deleting expired entries: the time limit of "));
  CHECK(contains(result.err, "passed while a batch was running"));
  CHECK(contains(result.err, "after deleting 0 expired entries in 0 batches"));
  CHECK(c.count("resource_type = 'old'") == "100");
}
