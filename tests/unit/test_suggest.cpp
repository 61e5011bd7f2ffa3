#include <doctest/doctest.h>

#include "core/suggest.hpp"

TEST_CASE("pgkit::nearest_word") {
  std::vector<std::string> commands{"migrate", "apply", "status", "rollback", "print-sql"};

  SUBCASE("a typo finds the word it was meant to be") {
    CHECK(pgkit::nearest_word("migrat", commands) == "migrate");
    CHECK(pgkit::nearest_word("stauts", commands) == "status");
    CHECK(pgkit::nearest_word("print_sql", commands) == "print-sql");
  }
  SUBCASE("a word unlike every candidate finds nothing") {
    CHECK_FALSE(pgkit::nearest_word("frobnicate", commands).has_value());
    CHECK_FALSE(pgkit::nearest_word("x", {}).has_value());
  }
}
