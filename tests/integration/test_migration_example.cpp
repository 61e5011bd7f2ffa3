// The program of docs/migrations.md, "From a program" (tests/integration/example_migration.cpp),
// compiles, applies a module of its own and the cache module, and is the text the page shows.

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "harness.hpp"

TEST_CASE("docs/migrations.md example: pgkit::apply_modules from a program") {
  pgkit_test::scratch_database db{"example_migration"};
  auto dir = std::filesystem::path{pgkit_test::temp_dir("pgkit-example")};
  std::filesystem::create_directories(dir / "app");
  std::ofstream{dir / "app" / "20260301000000_orders.sql"}
      << "-- migrate:up\nCREATE TABLE orders (id uuid PRIMARY KEY DEFAULT uuid7())\n"
         "-- migrate:down\nDROP TABLE orders\n";

  auto first = pgkit_test::run_process({PGKIT_EXAMPLE_MIGRATION, db.url(), dir.string()});
  CHECK_MESSAGE(first.exit_code == 0, first.err);
  CHECK(first.out.find("applied app 20260301000000_orders in ") != std::string::npos);
  CHECK(first.out.find("6 applied, 0 drifted\n") != std::string::npos);
  CHECK(pgkit_test::query_value(db.url(), "SELECT to_regclass('pgkit.orders') IS NOT NULL") == "t");
  auto again = pgkit_test::run_process({PGKIT_EXAMPLE_MIGRATION, db.url(), dir.string()});
  CHECK(again.out == "0 applied, 0 drifted\n");

  auto page = pgkit_test::read_file(pgkit_test::source_dir() + "/docs/migrations.md");
  auto program =
      pgkit_test::read_file(pgkit_test::source_dir() + "/tests/integration/example_migration.cpp");
  CHECK(page.find("```cpp\n" + program + "```") != std::string::npos);
}
