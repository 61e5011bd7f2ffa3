// The operator's commands (issue 22): lock_timeout retries, create, drop, wait, up, down,
// baseline, dump, load and diff, with the real dbmate beside pgkit where dbmate has the command.

#include <doctest/doctest.h>

#include <pqxx/pqxx>

#include <chrono>
#include <string>

#include "child_process.hpp"
#include "harness.hpp"
#include "migration_cli_support.hpp"

using namespace std::chrono_literals;
using namespace pgkit_test::migration_cli;
using pgkit_test::query_value;
using pgkit_test::run_pgkit;
using pgkit_test::scratch_database;

TEST_CASE("pgkit apply: a migration that hits lock_timeout is retried whole") {
  scratch_database db{"ops_lock_retry"};
  auto addr = "--addr=" + db.url();
  auto dir = pgkit_test::temp_dir("pgkit-lock-retry");
  write_file(fs::path{dir} / "app" / "20260301000000_t.sql",
             migration_text("CREATE TABLE t (x int);", "DROP TABLE t;"));
  REQUIRE(run_pgkit({"apply", addr, "--migrations-dir", dir, "app"}).exit_code == 0);
  write_file(fs::path{dir} / "app" / "20260302000000_u.sql",
             migration_text("CREATE TABLE u (y int);"));
  write_file(fs::path{dir} / "app" / "20260303000000_alter.sql",
             migration_text("ALTER TABLE t ADD COLUMN z int;"));
  pgkit_test::child_process holder{{"psql", "-X", "-q", "-A", "-t", db.url()}};
  holder.write_stdin("BEGIN; LOCK TABLE pgkit.t IN ACCESS SHARE MODE; SELECT 'locked';\n");
  REQUIRE(holder.read_line(30s) == std::optional<std::string>{"locked"});
  const auto applied = [&] {
    return query_value(
        db.url(),
        "SELECT string_agg(version, ',' ORDER BY version) FROM pgkit.schema_migration "
        "WHERE module = 'app'");
  };

  SUBCASE("the holder ends during the retries: the run succeeds") {
    std::vector<std::string> argv{pgkit_test::pgkit_binary(),
                                  "apply",
                                  addr,
                                  "--migrations-dir",
                                  dir,
                                  "--lock-timeout",
                                  "0.05",
                                  "--lock-retries",
                                  "6",
                                  "app"};
    pgkit_test::child_process apply{argv};
    REQUIRE(apply.wait_for_stderr("retrying in 250 ms (retry 1 of 6)", 30s));
    holder.write_stdin("COMMIT;\n");
    CHECK(apply.wait(60s) == 0);
    CHECK(contains(apply.err(), "applied 2 migrations"));
    CHECK(applied() == "20260301000000,20260302000000,20260303000000");
  }
  SUBCASE("retries exhausted: nothing applied, exit 1") {
    auto result = run_pgkit({"apply", addr, "--migrations-dir", dir, "--lock-timeout", "0.05",
                             "--lock-retries", "1", "app"});
    CHECK(result.exit_code == 1);
    CHECK(contains(result.err, "retrying in 250 ms (retry 1 of 1)"));
    CHECK(contains(result.err, "(gave up after 1 retry)"));
    CHECK(contains(result.err, "raise --lock-timeout or --lock-retries"));
    CHECK(applied() == "20260301000000");
    CHECK(query_value(db.url(), "SELECT to_regclass('pgkit.u') IS NULL") == "t");
    holder.write_stdin("ROLLBACK;\n");
  }
  holder.close_stdin();
  holder.wait(30s);
}
