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
  SUBCASE("the first of equally close candidates wins; a closer one replaces it") {
    CHECK(pgkit::nearest_word("abcd", {"abxx", "abcx", "abxd"}) == "abcx");
    CHECK(pgkit::nearest_word("abcd", {"abcx", "abcd"}) == "abcd");
  }
  SUBCASE("a word too long to be a typo gets no suggestion, whatever the candidates") {
    std::string long_name(20000, 'n');
    std::vector<std::string> names(1000, long_name);
    names.push_back(long_name + "x");
    CHECK_FALSE(pgkit::nearest_word(long_name + "y", names).has_value());
    std::string name_129(129, 'a');
    CHECK_FALSE(pgkit::nearest_word(name_129, {name_129 + "b"}).has_value());
    std::string name_128(128, 'a');
    CHECK(pgkit::nearest_word(name_128, {name_128 + "b"}) == name_128 + "b");
  }
}
