// What liteorm's users (seed 004) look for in a listener: one whose connection comes from a
// pool and goes back to it on close (after UNLISTEN *), built from a pool or a
// connection_config, and a receive that one call can abandon (like a Go context).

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "harness.hpp"
#include "pgkit/config.hpp"
#include "pgkit/connection.hpp"
#include "pgkit/error.hpp"
#include "pgkit/listener.hpp"
#include "pgkit/notify.hpp"
#include "pgkit/pool.hpp"
#include "pgkit/query.hpp"

using namespace std::chrono_literals;

namespace {

std::string value_of(pqxx::connection& conn, const std::string& sql) {
  std::string value;
  pgkit::stream_query(conn, sql, {}, {}, [&](const pgkit::row_view& row) {
    value = std::string{row.get(0).value_or("NULL")};
    return pgkit::row_action::next;
  });
  return value;
}

}  // namespace

TEST_CASE("liteorm: Listen and Close on a pooled connection") {
  pgkit_test::scratch_database db{"lo_listen"};
  auto config = pgkit::config_from_url(db.url());
  config.pool_size = 1;
  auto pool = std::make_shared<pgkit::pool>(config);
  auto sender = pgkit::connect(db.url());  // the pool's one connection is the listener's

  SUBCASE("the listener's connection goes back to the pool after UNLISTEN *") {
    pgkit::listener listener{pool};
    listener.listen("jobs");
    const int pid = listener.backend_pid();
    CHECK(pool->stats().in_use == 1);
    pgkit::notify(*sender, "jobs", "one");
    auto got = listener.receive(10s);
    REQUIRE(got.has_value());
    CHECK(got->payload == "one");
    listener.close();
    CHECK(pool->stats().in_use == 0);
    auto lease = pool->acquire();
    CHECK(value_of(*lease, "SELECT pg_backend_pid()") == std::to_string(pid));
    CHECK(value_of(*lease, "SELECT count(*) FROM pg_listening_channels()") == "0");
    CHECK(pool->stats().destroyed() == 0);
  }

  SUBCASE("a listener destroyed without close() does not give a LISTENing session back") {
    int pid = 0;
    {
      pgkit::listener listener{pool};
      listener.listen("jobs");
      pid = listener.backend_pid();
    }
    auto lease = pool->acquire();
    CHECK(value_of(*lease, "SELECT pg_backend_pid()") != std::to_string(pid));
    CHECK(value_of(*lease, "SELECT count(*) FROM pg_listening_channels()") == "0");
  }

  SUBCASE("a busy pool: the first lease's error, kind connection") {
    auto held = pool->acquire();
    pgkit::listener_options options;
    options.connect_timeout = 50ms;
    auto e = pgkit_test::expect_error([&] { pgkit::listener listener(pool, options); });
    CHECK(e.kind() == pgkit::error_kind::connection);
  }

  SUBCASE("from a connection_config; a transaction-mode pooler is refused") {
    pgkit::listener listener{config};
    listener.listen("jobs");
    pgkit::notify(*sender, "jobs", "two");
    auto got = listener.receive(10s);
    REQUIRE(got.has_value());
    CHECK(got->payload == "two");
    auto pooled = config;
    pooled.pooler = pgkit::pooler_mode::pgbouncer_transaction;
    CHECK_THROWS_AS(pgkit::listener{pooled}, pgkit::config_error);
  }
}

TEST_CASE("liteorm: Receive with a per-call cancellation") {
  pgkit_test::scratch_database db{"lo_receive"};
  pgkit::listener listener{db.url()};
  listener.listen("jobs");
  auto sender = pgkit::connect(db.url());

  SUBCASE("an interrupt ends that receive only; the next one gets what arrived") {
    pgkit::interrupt stop;
    std::thread canceler{[&] { stop.trigger(); }};
    CHECK_FALSE(listener.receive(stop).has_value());
    canceler.join();
    CHECK_FALSE(listener.stopped());
    pgkit::notify(*sender, "jobs", "after");
    pgkit::interrupt other;
    auto got = listener.receive(10s, other);
    REQUIRE(got.has_value());
    CHECK(got->payload == "after");
  }

  SUBCASE("a notification queued before the interrupt is not lost") {
    pgkit::notify(*sender, "jobs", "first");
    pgkit::notify(*sender, "jobs", "second");
    auto got = listener.receive(10s);
    REQUIRE(got.has_value());
    CHECK(got->payload == "first");
    pgkit::interrupt stop;
    stop.trigger();
    CHECK_FALSE(listener.receive(10s, stop).has_value());
    got = listener.receive(10s);
    REQUIRE(got.has_value());
    CHECK(got->payload == "second");
  }
}
