// A real-world-sized set of user modules (tests/fixtures/parity, described in its README.md)
// brought to the same schema by every path pgkit offers.

#include <doctest/doctest.h>

#include <filesystem>

#include "harness.hpp"
#include "migration_cli_support.hpp"

using namespace pgkit_test::migration_cli;
using pgkit_test::query_value;
using pgkit_test::run_pgkit;
using pgkit_test::scratch_database;

namespace {

const std::vector<std::string> k_modules = {"shop", "forum", "analytics"};

std::string fixture_dir() {
  return (fs::path{pgkit_test::source_dir()} / "tests" / "fixtures" / "parity").string();
}

std::size_t fixture_files() {
  std::size_t count = 0;
  for (const auto& module : fs::directory_iterator{fixture_dir()}) {
    if (module.is_directory())
      count += static_cast<std::size_t>(
          std::distance(fs::directory_iterator{module.path()}, fs::directory_iterator{}));
  }
  return count;
}

}  // namespace

TEST_CASE("pgkit: apply, rollback, re-apply, print-sql plain and dbmate reach the same schema") {
  REQUIRE(fixture_files() >= 100);
  std::vector<std::string> common{"--migrations-dir", fixture_dir()};
  auto modules = args(common, k_modules);

  scratch_database applied{"fixture_apply"};
  auto addr = "--addr=" + applied.url();
  query_value(applied.url(), "CREATE SCHEMA pgkit");  // rolling back leaves the schema
  auto empty = schema_catalog(applied);
  auto apply = run_pgkit(args({"apply", addr}, modules));
  REQUIRE_MESSAGE(apply.exit_code == 0, apply.err);
  CHECK(contains(apply.err, "applied 106 migrations"));  // 104 files and core's two
  auto reference = schema_catalog(applied);
  auto reference_bookkeeping = bookkeeping(applied);
  CHECK(contains(reference, "index pgkit CREATE INDEX shop_item7_title ON pgkit.shop_item7"));
  CHECK(contains(reference, "type pgkit.forum_state e draft,active,archived"));
  CHECK(contains(reference, "trigger pgkit CREATE TRIGGER stats_item1_touch"));

  SUBCASE("rollback of everything, then apply again") {
    for (const auto& module : {"analytics", "forum", "shop", "core"}) {
      auto rollback = run_pgkit(args({"rollback", addr, module, "--to", "0"}, common));
      REQUIRE_MESSAGE(rollback.exit_code == 0, rollback.err);
    }
    CHECK(schema_catalog(applied) == empty);
    auto again = run_pgkit(args({"apply", addr}, modules));
    REQUIRE_MESSAGE(again.exit_code == 0, again.err);
    CHECK(schema_catalog(applied) == reference);
  }
  SUBCASE("print-sql --format plain under psql") {
    scratch_database scripted{"fixture_plain"};
    auto psql = run_plain_script(scripted, modules);
    REQUIRE_MESSAGE(psql.exit_code == 0, psql.err);
    CHECK_MESSAGE(psql.err.empty(), psql.err);  // no notice either
    CHECK(schema_catalog(scripted) == reference);
    CHECK(bookkeeping(scripted) == reference_bookkeeping);
  }
  SUBCASE("print-sql --format dbmate under the real dbmate") {
    scratch_database migrated{"fixture_dbmate"};
    auto out = pgkit_test::temp_dir("pgkit-fixture-dbmate");
    auto written = run_pgkit(args({"print-sql", "--format", "dbmate", "--out", out}, modules));
    REQUIRE_MESSAGE(written.exit_code == 0, written.err);
    auto up = pgkit_test::run_process({dbmate(), "--url",
                                       dbmate_url(migrated) + "&search_path=public,pgkit",
                                       "--migrations-dir", out, "--no-dump-schema", "up"});
    REQUIRE_MESSAGE(up.exit_code == 0, up.err);
    CHECK(schema_catalog(migrated) == reference);
    CHECK(bookkeeping(migrated) == reference_bookkeeping);
    auto status = run_pgkit(args({"status", "--addr=" + migrated.url(), "--exit-code"}, modules));
    CHECK_MESSAGE(status.exit_code == 0, status.out);
  }
}
