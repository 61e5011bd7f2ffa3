// The parts of pgkit::pool that need no server.

#include <doctest/doctest.h>

#include <utility>

#include "pgkit/error.hpp"
#include "pgkit/pool.hpp"

TEST_CASE("pgkit::lease") {
  SUBCASE("an empty lease can be declared, released, moved and assigned") {
    pgkit::lease empty;
    CHECK(!empty);
    empty.release();
    CHECK(!empty);
    pgkit::lease moved{std::move(empty)};
    CHECK(!moved);
    pgkit::lease assigned;
    assigned = std::move(moved);
    CHECK(!assigned);
  }
}

TEST_CASE("pgkit::pool configuration") {
  SUBCASE("a negative handoff_quantum is refused") {
    auto config = pgkit::config_from_url("postgresql://app@127.0.0.1:1/app", "test");
    config.handoff_quantum = std::chrono::microseconds{-1};
    CHECK_THROWS_AS(pgkit::pool{config}, pgkit::config_error);
  }
}
