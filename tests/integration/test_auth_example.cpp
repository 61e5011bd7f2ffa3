// The README's auth example (tests/integration/example_auth.cpp) compiles, runs against the
// sandbox with libsodium's default argon2id limits, says what to do when the auth module is
// missing, and is the text the README shows.

#include <doctest/doctest.h>

#include <pqxx/pqxx>

#include "harness.hpp"
#include "pgkit/migration.hpp"

TEST_CASE("README example: pgkit::auth_store") {
  pgkit_test::scratch_database db{"auth_example"};
  auto options = pgkit_test::in_app_dir(db.url());

  SUBCASE("signs up, signs in, resets a password, searches and deletes") {
    pqxx::connection connection{db.url()};
    pgkit::apply_modules(connection, {"auth"});
    auto result = pgkit_test::run_process({PGKIT_EXAMPLE_AUTH}, options);
    CHECK(result.err == "");
    CHECK(result.exit_code == 0);
    CHECK(result.out == "signed in from 192.0.2.1\nused once\nada@example.com\ndeleted\n");
    CHECK(pgkit_test::query_value(db.url(), "SELECT count(*) FROM pgkit.auth_session") == "0");
    CHECK(pgkit_test::query_value(db.url(),
                                  "SELECT deleted_at IS NOT NULL AND password_hash LIKE "
                                  "'$argon2id$v=19$m=65536,t=2,p=1$%' FROM pgkit.auth_user") ==
          "t");
  }
  SUBCASE("without the auth module it says what to apply") {
    auto result = pgkit_test::run_process({PGKIT_EXAMPLE_AUTH}, options);
    CHECK(result.exit_code == 1);
    CHECK(result.err ==
          "app: the auth module is not applied in schema pgkit (its tables are missing or out of "
          "date)\n"
          "app: hint: run pgkit apply auth\n");
  }
  SUBCASE("the README shows this very program") {
    CHECK(pgkit_test::readme_shows("tests/integration/example_auth.cpp"));
  }
}
