// The README's session example (tests/integration/example_session.cpp) compiles, runs against
// the sandbox, says what to do when the session module is missing, and is the text the README
// shows.

#include <doctest/doctest.h>

#include <pqxx/pqxx>

#include <fstream>
#include <sstream>

#include "harness.hpp"
#include "pgkit/migration.hpp"

TEST_CASE("README example: pgkit::session_store") {
  pgkit_test::scratch_database db{"session_example"};
  auto options = pgkit_test::in_app_dir(db.url());

  SUBCASE("runs every operation against the session module") {
    pqxx::connection connection{db.url()};
    pgkit::apply_modules(connection, {"session"});
    auto result = pgkit_test::run_process({PGKIT_EXAMPLE_SESSION}, options);
    CHECK(result.err == "");
    CHECK(result.exit_code == 0);
    CHECK(result.out ==
          "{\"user\": 42}, 167 h left\nsaved\nsigned out\nswept 0 expired sessions\n");
    CHECK(pgkit_test::query_value(db.url(), "SELECT count(*) FROM pgkit.session") == "0");
  }
  SUBCASE("without the session module it says what to apply") {
    auto result = pgkit_test::run_process({PGKIT_EXAMPLE_SESSION}, options);
    CHECK(result.exit_code == 1);
    CHECK(result.err.find("app: creating a session: ") == 0);
    CHECK(result.err.find("app: hint: run pgkit apply session\n") != std::string::npos);
  }
  SUBCASE("the README shows this very program") {
    CHECK(pgkit_test::readme_shows("tests/integration/example_session.cpp"));
  }
}
