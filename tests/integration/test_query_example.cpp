// The README's query toolkit example (tests/integration/example_query.cpp) compiles, runs
// against the sandbox with the output it promises, and is the text the README shows.

#include <doctest/doctest.h>

#include "harness.hpp"

TEST_CASE("README example: the query toolkit") {
  pgkit_test::scratch_database db{"query_example"};

  SUBCASE("runs against the server") {
    auto result = pgkit_test::run_process({PGKIT_EXAMPLE_QUERY, db.url()});
    CHECK(result.err == "");
    CHECK(result.exit_code == 0);
    CHECK(result.out ==
          "copied 2 rows\n2 columns, the first is id\n1: first\tline\n2: (null)\n"
          "savepoint: unique_violation\ninserted 1 row\ndeadline: canceled\nopen\n");
  }
  SUBCASE("the README shows this very program") {
    CHECK(pgkit_test::readme_shows("tests/integration/example_query.cpp"));
  }
}
