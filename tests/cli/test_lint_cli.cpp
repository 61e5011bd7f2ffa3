#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

#include "harness.hpp"
#include "migration_cli_support.hpp"

namespace fs = std::filesystem;
using pgkit_test::query_value;
using pgkit_test::run_pgkit;
using pgkit_test::scratch_database;
using namespace pgkit_test::migration_cli;

namespace {

// A dbmate-format migration adding an index to an existing table, two lines down.
const std::string k_index_migration = migration_text(
    "-- the orders index\nCREATE INDEX orders_a "
    "ON orders (a);",
    "DROP INDEX orders_a;");

nlohmann::json parse_json(const std::string& text) {
  auto document = nlohmann::json::parse(text, nullptr, false);
  REQUIRE_MESSAGE(!document.is_discarded(), text);
  return document;
}

}  // namespace

TEST_CASE("pgkit lint without a database") {
  auto dir = fs::path{pgkit_test::temp_dir("pgkit-lint")};

  SUBCASE("the built-in modules lint clean") {
    auto result = run_pgkit({"lint"});
    CHECK_MESSAGE(result.exit_code == 0, result.err);
    CHECK(result.out.empty());
    CHECK(contains(result.err, "0 findings"));
  }
  SUBCASE("a migration file: text report, exit 3, the element's line and column") {
    write_file(dir / "20260101000000_index.sql", k_index_migration);
    auto result = run_pgkit({"lint", (dir / "20260101000000_index.sql").string()});
    CHECK(result.exit_code == 3);
    CHECK(contains(result.out,
                   "20260101000000_index.sql:3:1: error: "
                   "require-concurrent-index-creation: "));
    CHECK(contains(result.out, "help: CREATE INDEX CONCURRENTLY"));
    CHECK(contains(result.err, "1 finding (1 at or above error) in 1 file"));
  }
  SUBCASE("--json prints the documented document") {
    write_file(
        dir / "add.sql",
        "ALTER TABLE orders\n  ADD COLUMN n bigint NOT NULL;\nCREATE TABLE t (at timestamp);");
    auto result = run_pgkit({"lint", "--json", (dir / "add.sql").string()});
    CHECK(result.exit_code == 3);
    auto document = parse_json(result.out);
    CHECK(document["files"] == 1);
    CHECK(document["statements"] == 2);
    REQUIRE(document["findings"].is_array());
    nlohmann::json required;
    nlohmann::json timestamp;
    for (const auto& f : document["findings"]) {
      for (const char* key :
           {"file", "line", "column", "rule", "level", "message", "help", "statement", "table"})
        CHECK_MESSAGE(f.contains(key), key);
      if (f["rule"] == "adding-required-field")
        required = f;
      if (f["rule"] == "prefer-timestamp-tz")
        timestamp = f;
    }
    REQUIRE(required.is_object());
    CHECK(required["file"] == (dir / "add.sql").string());
    CHECK(required["line"] == 2);
    CHECK(required["column"] == 23);
    CHECK(required["level"] == "error");
    CHECK(required["statement"] == "ALTER TABLE orders");
    CHECK(required["table"].is_null());
    REQUIRE(timestamp.is_object());
    CHECK(timestamp["level"] == "warning");
    CHECK(timestamp["line"] == 3);
    auto same = run_pgkit({"lint", "--format", "json", (dir / "add.sql").string()});
    CHECK(same.out == result.out);
  }
  SUBCASE("--format github prints workflow annotations") {
    write_file(dir / "drop.sql", "DROP INDEX i;\nCREATE TABLE t (c char(2));");
    auto result = run_pgkit({"lint", "--format", "github", (dir / "drop.sql").string()});
    CHECK(result.exit_code == 3);
    CHECK(contains(result.out, "::error file=" + (dir / "drop.sql").string() +
                                   ",line=1,col=1,title=require-concurrent-index-deletion::"));
    CHECK(contains(result.out, "::warning file=" + (dir / "drop.sql").string() +
                                   ",line=2,col=19,title=ban-char-field::"));
    CHECK(contains(result.out, "%0Ahelp: "));
  }
  SUBCASE("--fail-on, --include, --exclude and suppression comments") {
    write_file(dir / "types.sql", "CREATE TABLE t (n integer);");
    CHECK(run_pgkit({"lint", (dir / "types.sql").string()}).exit_code == 0);
    CHECK(run_pgkit({"lint", "--fail-on", "warning", (dir / "types.sql").string()}).exit_code == 3);
    CHECK(run_pgkit({"lint", "--fail-on", "warning", "--exclude", "prefer-bigint-over-int",
                     (dir / "types.sql").string()})
              .exit_code == 0);
    write_file(dir / "drop.sql",
               "SET lock_timeout = '1s';\nSET statement_timeout = '5s';\n"
               "-- pgkit:lint-ignore require-concurrent-index-deletion the index is unused\n"
               "DROP INDEX i;\nDROP TABLE t;");
    auto result = run_pgkit({"lint", "--json", (dir / "drop.sql").string()});
    CHECK(result.exit_code == 0);
    auto document = parse_json(result.out);
    REQUIRE(document["findings"].size() == 1);
    CHECK(document["findings"][0]["rule"] == "ban-drop-table");
    auto none = run_pgkit({"lint", "--exclude", "all", "--include", "ban-drop-table", "--json",
                           (dir / "drop.sql").string()});
    CHECK(parse_json(none.out)["findings"].size() == 1);
  }
  SUBCASE("transaction:false makes CONCURRENTLY right, a transactional migration wrong") {
    write_file(dir / "app/20260101000000_a.sql",
               "-- migrate:up\nCREATE TABLE orders (a bigint);\n"
               "-- migrate:down\nDROP TABLE orders;\n");
    write_file(dir / "app/20260101000100_b.sql",
               "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY b ON orders (a);\n"
               "-- migrate:down\nDROP INDEX b;\n");
    write_file(dir / "app/20260101000200_c.sql",
               migration_text("CREATE INDEX CONCURRENTLY c ON orders (a);"));
    auto result = run_pgkit({"lint", "--json", "--migrations-dir", dir.string(), "app"});
    CHECK(result.exit_code == 3);
    auto findings = parse_json(result.out)["findings"];
    REQUIRE(findings.size() == 1);
    CHECK(findings[0]["rule"] == "ban-concurrent-index-creation-in-transaction");
    CHECK(contains(findings[0]["file"].get<std::string>(), "20260101000200_c.sql"));
    SUBCASE("--down lints the down sections too") {
      auto down = run_pgkit({"lint", "--down", "--json", "--migrations-dir", dir.string(), "app"});
      // b's DROP INDEX b; a's DROP TABLE orders is exempt (the run created orders)
      auto found = parse_json(down.out)["findings"];
      REQUIRE(found.size() == 2);
      CHECK(found[0]["rule"] == "require-concurrent-index-deletion");
    }
  }
  SUBCASE("usage errors exit 2") {
    auto unknown = run_pgkit({"lint", "--include", "ban-drop-tabel"});
    CHECK(unknown.exit_code == 2);
    CHECK(contains(unknown.err, "did you mean 'ban-drop-table'"));
    CHECK(run_pgkit({"lint", "--format", "xml"}).exit_code == 2);
    CHECK(run_pgkit({"lint", "--fail-on", "info"}).exit_code == 2);
    auto missing = run_pgkit({"lint", (dir / "nope.sql").string()});
    CHECK(missing.exit_code == 2);
    CHECK(contains(missing.err, "cannot read"));
    CHECK(run_pgkit({"lint", "no_such_module"}).exit_code == 2);
  }
}

TEST_CASE("pgkit lint with a database") {
  scratch_database db{"cli_lint"};
  auto addr = "--addr=" + db.url();
  auto dir = fs::path{pgkit_test::temp_dir("pgkit-lint")};
  auto plain = fs::path{pgkit_test::temp_dir("pgkit-lint")};
  REQUIRE(run_psql(db,
                   "CREATE TABLE big (a bigint); INSERT INTO big SELECT generate_series(1, "
                   "300); CREATE TABLE small (a bigint); ANALYZE big; ANALYZE small;")
              .exit_code == 0);
  write_file(dir / "app/20260101000000_tables.sql",
             migration_text("CREATE TABLE fresh (a bigint);", "DROP TABLE fresh;"));
  write_file(dir / "app/20260101000100_indexes.sql",
             migration_text("CREATE INDEX big_a ON big (a);\nCREATE INDEX small_a ON small (a);\n"
                            "CREATE INDEX fresh_a ON fresh (a);",
                            "SELECT 1;"));
  write_file(plain / "absent.sql", "CREATE INDEX gone_a ON gone (a);");

  SUBCASE("findings carry the live table's size; large tables are errors, absent ones quiet") {
    auto result = run_pgkit({"lint", addr, "--json", "--large-table-rows", "100",
                             (dir / "app/20260101000100_indexes.sql").string(),
                             (plain / "absent.sql").string()});
    CHECK(result.exit_code == 3);
    auto findings = parse_json(result.out)["findings"];
    REQUIRE(findings.size() == 2);
    CHECK(findings[0]["level"] == "error");
    CHECK(findings[0]["table"]["name"] == "big");
    CHECK(findings[0]["table"]["rows_estimate"] == 300);
    CHECK(findings[0]["table"]["bytes"].get<long long>() > 0);
    CHECK(contains(findings[0]["message"].get<std::string>(), "(big: about 300 rows, "));
    CHECK(findings[1]["level"] == "warning");
    CHECK(findings[1]["table"]["name"] == "small");
    auto lenient = run_pgkit({"lint", addr, (dir / "app/20260101000100_indexes.sql").string()});
    CHECK(lenient.exit_code == 0);  // 300 rows is below the default 1 000 000
  }
  SUBCASE("--pending lints only what apply would run") {
    auto applied = run_pgkit({"apply", addr, "--migrations-dir", dir.string(), "app"});
    REQUIRE_MESSAGE(applied.exit_code == 0, applied.err);
    write_file(dir / "app/20260101000200_more.sql",
               migration_text("ALTER TABLE fresh ALTER COLUMN a TYPE numeric;"));
    auto result = run_pgkit({"lint", addr, "--pending", "--json", "--large-table-rows", "100",
                             "--migrations-dir", dir.string(), "app"});
    CHECK(result.exit_code == 0);
    auto document = parse_json(result.out);
    CHECK(document["files"] == 1);
    REQUIRE(document["findings"].size() == 1);
    CHECK(document["findings"][0]["rule"] == "changing-column-type");
    CHECK(document["findings"][0]["level"] == "warning");
    CHECK(document["findings"][0]["table"]["rows_estimate"] == 0);
  }
  SUBCASE("apply --lint refuses with exit 3 and applies nothing") {
    auto refused = run_pgkit({"apply", addr, "--lint", "--migrations-dir", dir.string(), "app"});
    CHECK(refused.exit_code == 0);  // below --large-table-rows' default: warnings only
    write_file(dir / "app/20260101000200_bad.sql",
               migration_text("CREATE INDEX CONCURRENTLY c ON big (a);"));
    auto bad =
        run_pgkit({"migrate", "--apply", addr, "--lint", "--migrations-dir", dir.string(), "app"});
    CHECK(bad.exit_code == 3);
    CHECK(contains(bad.err, "ban-concurrent-index-creation-in-transaction"));
    CHECK(contains(bad.err, "nothing was applied"));
    CHECK(query_value(db.url(),
                      "SELECT count(*) FROM pgkit.schema_migration WHERE module = "
                      "'app'") == "2");
    CHECK(query_value(db.url(), "SELECT count(*) FROM pg_indexes WHERE indexname = 'c'") == "0");
  }
}
