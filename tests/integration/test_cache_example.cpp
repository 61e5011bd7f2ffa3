// The README's cache example (tests/integration/example_cache.cpp) compiles, runs against the
// sandbox, says what to do when the cache module is missing, and is the text the README shows.

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "harness.hpp"

TEST_CASE("README example: pgkit::cache_store") {
  pgkit_test::scratch_database db{"example_cache"};
  auto options = pgkit_test::in_app_dir(db.url());

  SUBCASE("runs once the cache module is applied") {
    auto applied = pgkit_test::run_pgkit({"apply", "--addr", db.url(), "cache"});
    REQUIRE(applied.exit_code == 0);
    auto result = pgkit_test::run_process({PGKIT_EXAMPLE_CACHE}, options);
    CHECK_MESSAGE(result.exit_code == 0, result.err);
    CHECK(result.out ==
          "hello\n<h1>About</h1>\nAda\nGrace\n(miss)\nsweep deleted 1 expired entry\n");
    CHECK(pgkit_test::query_value(db.url(),
                                  "SELECT string_agg(resource_type || ':' || key, ' ' "
                                  "ORDER BY resource_type, key) FROM pgkit.cache") ==
          "greeting:en page:/about user:1");
  }
  SUBCASE("without the cache module it says what to run") {
    auto result = pgkit_test::run_process({PGKIT_EXAMPLE_CACHE}, options);
    CHECK(result.exit_code == 1);
    CHECK(result.err ==
          "app: the cache module is not applied in schema pgkit (there is no table "
          "pgkit.cache)\napp: hint: run pgkit apply cache\n");
  }
  SUBCASE("the README shows this very program") {
    CHECK(pgkit_test::readme_shows("tests/integration/example_cache.cpp"));
  }
}
