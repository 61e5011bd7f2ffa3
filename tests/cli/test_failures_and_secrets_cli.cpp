// What the library tells the CLI user when things go wrong: a connection cut off mid-run
// (pg_terminate_backend from a second connection) names the server's reason, and no output
// of any command, in text, -v or --json, ever shows a password.

#include <doctest/doctest.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "harness.hpp"

using namespace std::chrono_literals;
using pgkit_test::query_value;
using pgkit_test::run_pgkit;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Runs `args` (pgkit's) in the background until its backend in `db` matches `waiting` (a
// pg_stat_activity condition), terminates that backend and returns what pgkit printed.
pgkit_test::process_result cut_off(const pgkit_test::scratch_database& db,
                                   const std::vector<std::string>& args,
                                   const std::string& waiting) {
  std::vector<std::string> argv{pgkit_test::pgkit_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  pgkit_test::child_process pgkit{argv};
  const std::string find_backend =
      "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND "
      "application_name = 'pgkit' AND " +
      waiting;
  // Find and terminate in one statement, again until it hits: a backend found waiting in one
  // statement may have stopped waiting by the next (a sweep's short first lock wait gives way to
  // its second), and then nothing would be terminated.
  REQUIRE(pgkit_test::eventually([&] {
    return query_value(db.url(), "SELECT bool_or(pg_terminate_backend(pid)) FROM (" + find_backend +
                                     ") AS b") == "t";
  }));
  pgkit_test::process_result result;
  result.exit_code = pgkit.wait(60s);
  result.err = pgkit.err();
  result.out = pgkit.unread_out();
  return result;
}

void check_cut_off_report(const pgkit_test::process_result& result) {
  INFO("stderr: " << result.err);
  CHECK(result.exit_code == 1);
  CHECK(contains(result.err, "pgkit: error: "));
  CHECK(contains(result.err, "terminating connection due to administrator command\n"));
  CHECK(contains(result.err, "pgkit: hint: the server closed this connection"));
  CHECK_FALSE(contains(result.err, "FATAL"));
  CHECK_FALSE(contains(result.err, "client encoding"));
}

}  // namespace

TEST_CASE("a connection lost mid-run reports the server's reason") {
  pgkit_test::scratch_database db{"cut_off"};
  auto applied = run_pgkit({"apply", "--addr", db.url(), "cache", "session"});
  REQUIRE_MESSAGE(applied.exit_code == 0, applied.err);

  SUBCASE("apply, during a long migration") {
    auto dir = pgkit_test::temp_dir("pgkit-cut-off");
    std::filesystem::create_directories(dir + "/slow");
    std::ofstream{dir + "/slow/20260101000000_sleep.sql"}
        << "-- migrate:up\nSELECT pg_sleep(60);\n-- migrate:down\n";
    auto result = cut_off(db, {"apply", "--addr", db.url(), "--migrations-dir", dir, "slow"},
                          "query LIKE '%pg_sleep(60)%'");
    check_cut_off_report(result);
    CHECK(query_value(db.url(),
                      "SELECT count(*) FROM pgkit.schema_migration WHERE module = "
                      "'slow'") == "0");
  }
  SUBCASE("cache-gc and session-purge, waiting for a lock") {
    for (const std::string table : {"cache", "session"}) {
      pgkit_test::child_process holder{{"psql", "-X", "-q", "-A", "-t", db.url()}};
      holder.write_stdin("BEGIN; LOCK TABLE pgkit." + table +
                         " IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n");
      REQUIRE(holder.read_line(30s) == std::optional<std::string>{"locked"});
      auto command = table == "cache" ? "cache-gc" : "session-purge";
      // The command's lock timeout is far longer than the test's search for its backend, so
      // that only the termination can end its wait, however loaded the machine.
      auto result = cut_off(db, {command, "--addr", db.url(), "--lock-timeout", "600"},
                            "wait_event_type = 'Lock'");
      check_cut_off_report(result);
      holder.write_stdin("ROLLBACK;\n");
      holder.close_stdin();
      holder.wait(30s);
    }
  }
}

TEST_CASE("a dry run keeps to --max-seconds while a lock holds its count up") {
  pgkit_test::scratch_database db{"dry_run_deadline"};
  auto applied = run_pgkit({"apply", "--addr", db.url(), "cache", "session"});
  REQUIRE_MESSAGE(applied.exit_code == 0, applied.err);
  for (const std::string table : {"cache", "session"}) {
    pgkit_test::child_process holder{{"psql", "-X", "-q", "-A", "-t", db.url()}};
    holder.write_stdin("BEGIN; LOCK TABLE pgkit." + table +
                       " IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n");
    REQUIRE(holder.read_line(30s) == std::optional<std::string>{"locked"});
    auto command = table == "cache" ? "cache-gc" : "session-purge";
    // The lock is held until the command has ended: only its own deadline can end the count.
    pgkit_test::child_process pgkit{{pgkit_test::pgkit_binary(), command, "--addr", db.url(),
                                     "--dry-run", "--max-seconds", "0.5", "--lock-timeout", "600"}};
    int exit_code = pgkit.wait(60s);
    INFO(command << " stderr: " << pgkit.err());
    CHECK(exit_code == 1);
    CHECK(contains(pgkit.err(), "time limit of 500 ms passed while counting"));
    CHECK(contains(pgkit.err(), "nothing was deleted"));
    holder.write_stdin("ROLLBACK;\n");
    holder.close_stdin();
    holder.wait(30s);
  }
}

TEST_CASE("passwords never show: --addr URLs in text, -v and --json") {
  // Generated URLs to a closed port, with the password written raw (as people do) or
  // percent-encoded; every password starts with "Zq" and nothing else has capitals.
  std::mt19937 random{20261201};
  const std::string specials = "/@:?#&=%' !*[],;${}";
  const std::string letters = "ABCDEFGHJKLMNPRSTUVWXYabcdefghijkmnopqrstuvwxyz23456789";
  for (int round = 0; round < 12; ++round) {
    std::string password = "Zq";
    for (int i = 0; i < 10; ++i) {
      const auto& pool = (i % 3 == 1) ? specials : letters;
      password += pool[std::uniform_int_distribution<std::size_t>{0, pool.size() - 1}(random)];
    }
    std::string encoded;
    for (char c : password) {
      if (std::isalnum(static_cast<unsigned char>(c)) != 0) {
        encoded += c;
      } else {
        static const char* const hex = "0123456789ABCDEF";
        encoded += '%';
        encoded += hex[static_cast<unsigned char>(c) >> 4];
        encoded += hex[static_cast<unsigned char>(c) & 0x0F];
      }
    }
    for (const auto& url :
         {"postgresql://app:" + password + "@127.0.0.1:1/app?connect_timeout=2",
          "postgresql://app:" + encoded + "@127.0.0.1:1/app?connect_timeout=2",
          "host=127.0.0.1 port=1 connect_timeout=2 password='" + password + "'"}) {
      for (const std::vector<std::string>& args :
           {std::vector<std::string>{"-v", "status", "--addr", url},
            std::vector<std::string>{"--json", "-v", "status", "--addr", url},
            std::vector<std::string>{"__resolve", "--addr", url},
            std::vector<std::string>{"--json", "__resolve", "--addr", url}}) {
        auto result = run_pgkit(args);
        INFO("url: " << url);
        INFO("stdout: " << result.out);
        INFO("stderr: " << result.err);
        bool failed_with_message =
            result.exit_code != 0 && result.err.find("pgkit: error: ") != std::string::npos;
        CHECK((result.exit_code == 0 || failed_with_message));
        for (const auto& secret : {password, encoded, password.substr(0, 4)}) {
          CHECK(result.out.find(secret) == std::string::npos);
          CHECK(result.err.find(secret) == std::string::npos);
        }
      }
    }
  }
}

TEST_CASE("-v shows the server's notices; without it nothing of them is printed") {
  pgkit_test::scratch_database db{"notices_cli"};
  auto dir = pgkit_test::temp_dir("pgkit-notices");
  std::filesystem::create_directories(dir + "/loud");
  std::ofstream{dir + "/loud/20260101000000_loud.sql"}
      << "-- migrate:up\nDO $$ BEGIN RAISE NOTICE 'hello from the migration'; END $$;\n"
         "-- migrate:down\n";
  auto quiet = run_pgkit({"apply", "--addr", db.url(), "--migrations-dir", dir, "loud"});
  CHECK_MESSAGE(quiet.exit_code == 0, quiet.err);
  CHECK_FALSE(contains(quiet.err, "hello from the migration"));
  query_value(db.url(), "DROP SCHEMA pgkit CASCADE");
  auto verbose = run_pgkit({"-v", "apply", "--addr", db.url(), "--migrations-dir", dir, "loud"});
  CHECK_MESSAGE(verbose.exit_code == 0, verbose.err);
  CHECK(contains(verbose.err, "pgkit: server notice: hello from the migration\n"));
}
