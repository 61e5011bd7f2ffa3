// The README's pgkit::start example (tests/integration/example_start.cpp) compiles, runs
// against the sandbox, fails with an actionable message, and is the text the README shows.

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "harness.hpp"

TEST_CASE("README example: pgkit::start") {
  pgkit_test::scratch_database db{"example"};
  auto dir = pgkit_test::temp_dir("pgkit-example");
  pgkit_test::process_options options;
  options.cwd = dir;

  SUBCASE("runs against database.toml, with ${VAR} from the environment") {
    std::ofstream{dir + "/database.toml"} << "[connections.main]\nurl = \"${APP_DATABASE_URL}\"\n"
                                          << "pool_size = 3\n";
    options.env["APP_DATABASE_URL"] = db.url();
    auto result = pgkit_test::run_process({PGKIT_EXAMPLE_START}, options);
    CHECK(result.exit_code == 0);
    CHECK(result.out.rfind("hello from " + db.name() + "\npool of 3, server ", 0) == 0);
  }
  SUBCASE("without a configuration file it says what to fix") {
    auto result = pgkit_test::run_process({PGKIT_EXAMPLE_START}, options);
    CHECK(result.exit_code == 1);
    CHECK(result.err.find("app: pgkit::start(\"main\") found no configuration file") !=
          std::string::npos);
    CHECK(result.err.find("\nhint: create database.toml") != std::string::npos);
    CHECK(result.err.find("app: hint:") == std::string::npos);
  }
  SUBCASE("the README shows this very program") {
    CHECK(pgkit_test::readme_shows("tests/integration/example_start.cpp"));
  }
}
