// The README's near cache example (tests/integration/example_near_cache.cpp) compiles, runs
// against the sandbox with the second read served by the near tier, and is the text the README
// shows.

#include <doctest/doctest.h>

#include "harness.hpp"

TEST_CASE("README example: pgkit::cache_store near tier") {
  pgkit_test::scratch_database db{"example_near"};
  auto options = pgkit_test::in_app_dir(db.url());

  SUBCASE("runs once the cache module is applied") {
    auto applied = pgkit_test::run_pgkit({"apply", "--addr", db.url(), "cache"});
    REQUIRE(applied.exit_code == 0);
    auto result = pgkit_test::run_process({PGKIT_EXAMPLE_NEAR_CACHE}, options);
    CHECK_MESSAGE(result.exit_code == 0, result.err);
    CHECK(result.out == "Ada\nAda\nGrace\nnear hits 1, misses 2\n");
  }
  SUBCASE("without the cache module it says what to run") {
    auto result = pgkit_test::run_process({PGKIT_EXAMPLE_NEAR_CACHE}, options);
    CHECK(result.exit_code == 1);
    CHECK(result.err ==
          "app: the cache module is not applied in schema pgkit (there is no table "
          "pgkit.cache)\napp: hint: run pgkit apply cache\n");
  }
  SUBCASE("the README shows this very program") {
    CHECK(pgkit_test::readme_shows("tests/integration/example_near_cache.cpp"));
  }
}
