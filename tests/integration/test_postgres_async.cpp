// What postgres_async's users (seed 003) look for: close_finished, the four-state status,
// notifications on the query connection, and many statements in flight (pgkit::pipeline).
// And what liteorm's users (seed 004) look for in a listener: one whose connection comes from
// a pool and goes back to it on close (after UNLISTEN *), built from a pool or a
// connection_config, and a receive that one call can abandon (like a Go context).

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/pqxx_compat.hpp"
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

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("postgres_async: close_finished and the four-state status") {
  pgkit_test::scratch_database db{"pa_close"};
  auto conn = pgkit::connect(db.url());
  CHECK(pgkit::status(*conn) == pgkit::connection_state::open);
  CHECK(pgkit::status(*conn).error.empty());

  SUBCASE("the server kicks the connection: not graceful, with the server's reason") {
    const auto pid = value_of(*conn, "SELECT pg_backend_pid()");
    std::optional<pgkit::connection_end> end;
    std::thread waiter{[&] { end = pgkit::close_finished(*conn); }};
    auto other = pgkit::connect(db.url());
    value_of(*other, "SELECT pg_terminate_backend(" + pid + ")");
    waiter.join();
    REQUIRE(end.has_value());
    CHECK_FALSE(end->graceful);
    CHECK(contains(end->error, "terminating connection due to administrator command"));
    // status says the same, with its error, once it has read what the server sent.
    CHECK(pgkit_test::eventually(
        [&] { return pgkit::status(*conn) == pgkit::connection_state::failed; }));
    auto failed = pgkit::status(*conn);
    CHECK(contains(failed.error, "terminating connection"));
    CHECK(failed.resources_released);
    // A connection that ended already is reported at once.
    auto again = pgkit::close_finished(*conn, {nullptr, 10s});
    REQUIRE(again.has_value());
    CHECK_FALSE(again->graceful);
  }

  SUBCASE("close() on another thread: graceful") {
    std::optional<pgkit::connection_end> end;
    std::thread waiter{[&] { end = pgkit::close_finished(*conn); }};
    // The waiter may start before or after the close: graceful either way.
    pgkit::execute_no_data(*conn, "SELECT 1 WHERE false");
    pgkit::close(*conn);
    waiter.join();
    REQUIRE(end.has_value());
    CHECK(end->graceful);
    CHECK(end->error.empty());
    auto closed = pgkit::status(*conn);
    CHECK(closed == pgkit::connection_state::closed);
    CHECK(closed.resources_released);
    CHECK(pgkit::close_finished(*conn)->graceful);
  }

  SUBCASE("the timeout and the interrupt end the wait, not the connection") {
    CHECK_FALSE(pgkit::close_finished(*conn, {nullptr, 50ms}).has_value());
    pgkit::interrupt stop;
    std::thread trigger{[&] { stop.trigger(); }};
    CHECK_FALSE(pgkit::close_finished(*conn, {&stop, std::nullopt}).has_value());
    trigger.join();
    CHECK(pgkit::status(*conn) == pgkit::connection_state::open);
    CHECK(value_of(*conn, "SELECT 'still here'") == "still here");
  }
}

TEST_CASE("postgres_async: listen_to_notifications") {
  pgkit_test::scratch_database db{"pa_listen"};
  auto conn = pgkit::connect(db.url());
  const int own_pid = std::stoi(value_of(*conn, "SELECT pg_backend_pid()"));
  std::vector<std::string> first, second, other;
  int sender = 0;
  pgkit::listen_to_notifications(*conn, "Jobs Done", [&](int pid, const std::string& payload) {
    sender = pid;
    first.push_back(payload);
  });
  pgkit::listen_to_notifications(
      *conn, "Jobs Done", [&](int, const std::string& payload) { second.push_back(payload); });
  pgkit::listen_to_notifications(
      *conn, "other", [&](int, const std::string& payload) { other.push_back(payload); });

  SUBCASE("called after the statement they arrived with, every callback of the channel") {
    pgkit::execute_no_data(*conn, "NOTIFY \"Jobs Done\", 'one'");
    CHECK(first == std::vector<std::string>{"one"});
    CHECK(second == std::vector<std::string>{"one"});
    CHECK(other.empty());
    CHECK(sender == own_pid);
  }

  SUBCASE("arriving between statements: wait_for_notifications calls them") {
    auto sender_conn = pgkit::connect(db.url());
    pgkit::execute_no_data(*sender_conn, "NOTIFY other, 'from elsewhere'");
    std::size_t taken = 0;
    while (other.empty())
      taken += pgkit::wait_for_notifications(*conn, {nullptr, 10s});
    CHECK(taken == 1);
    CHECK(other == std::vector<std::string>{"from elsewhere"});
    CHECK(first.empty());
    CHECK(pgkit::wait_for_notifications(*conn, {nullptr, 20ms}) == 0);
  }

  SUBCASE("the transaction caveats: delivered after COMMIT; a rolled-back LISTEN hears nothing") {
    pgkit::execute_no_data(*conn, "BEGIN");
    pgkit::execute_no_data(*conn, "NOTIFY other, 'in a transaction'");
    CHECK(other.empty());
    pgkit::execute_no_data(*conn, "COMMIT");
    CHECK(other == std::vector<std::string>{"in a transaction"});

    std::vector<std::string> never;
    pgkit::execute_no_data(*conn, "BEGIN");
    pgkit::listen_to_notifications(
        *conn, "undone", [&](int, const std::string& payload) { never.push_back(payload); });
    pgkit::execute_no_data(*conn, "ROLLBACK");
    pgkit::execute_no_data(*conn, "NOTIFY undone, 'lost'");
    pgkit::execute_no_data(*conn, "NOTIFY other, 'after'");
    CHECK(never.empty());
    CHECK(other.back() == "after");
  }

  SUBCASE("bad input") {
    CHECK_THROWS_AS(pgkit::listen_to_notifications(*conn, "", [](int, const std::string&) {}),
                    pgkit::usage_error);
    auto plain = pgkit::connect(db.url());
    CHECK_THROWS_AS(pgkit::wait_for_notifications(*plain, {nullptr, 10ms}), pgkit::usage_error);
  }
}

TEST_CASE("postgres_async: a new connection at a destroyed one's address has no callbacks") {
  // The callbacks are kept by libpq handle; a connection destroyed without close() leaves its
  // entry, and malloc often gives the next connection the same address. wait_for_notifications
  // took the old entry for the new connection's (found as a flaky "bad input" subcase above).
  pgkit_test::scratch_database db{"pa_reuse"};
  bool reused = false;
  for (int attempt = 0; attempt < 20 && !reused; ++attempt) {
    std::uintptr_t old_address = 0;
    {
      auto first = pgkit::connect(db.url());
      pgkit::listen_to_notifications(*first, "c", [](int, const std::string&) {});
      old_address = reinterpret_cast<std::uintptr_t>(pgkit::detail::libpq_handle(*first));
    }
    auto next = pgkit::connect(db.url());
    if (reinterpret_cast<std::uintptr_t>(pgkit::detail::libpq_handle(*next)) != old_address)
      continue;
    reused = true;
    CHECK_THROWS_AS(pgkit::wait_for_notifications(*next, {nullptr, 10ms}), pgkit::usage_error);
  }
  if (!reused) {
    MESSAGE(
        "no new connection got a destroyed one's address in 20 tries (AddressSanitizer "
        "quarantines freed memory): nothing to check here");
  }
}

TEST_CASE("postgres_async: pgkit::pipeline") {
  pgkit_test::scratch_database db{"pa_pipeline"};
  auto conn = pgkit::connect(db.url());
  pgkit::execute_no_data(*conn, "CREATE TABLE item (id int PRIMARY KEY, note text)");

  SUBCASE("results in order, errors by kind, the rest of a failed sync skipped") {
    pgkit::pipeline batch{*conn};
    batch.add("INSERT INTO item VALUES ($1, $2)", {"1", "one"});
    batch.add("INSERT INTO item VALUES ($1, $2)", {"2", std::nullopt});
    batch.add("SELECT id, note FROM item ORDER BY id");
    batch.sync();
    batch.add("INSERT INTO item VALUES ($1, 'three')", {"3"});
    batch.add("INSERT INTO item VALUES ($1, 'again')", {"1"});
    batch.add("INSERT INTO item VALUES ($1, 'four')", {"4"});
    batch.sync();
    const auto last = batch.add("SELECT count(*) FROM item");
    CHECK(batch.size() == 7);
    auto results = batch.collect();
    CHECK(batch.size() == 0);
    REQUIRE(results.size() == 7);
    CHECK(results[0].outcome == pgkit::pipeline_outcome::ok);
    CHECK(results[0].command_tag == "INSERT 0 1");
    CHECK(results[0].affected_rows == 1);
    REQUIRE(results[2].rows.size() == 2);
    CHECK(results[2].rows[0] == pgkit::params{"1", "one"});
    CHECK(results[2].rows[1] == pgkit::params{"2", std::nullopt});
    // The second sync: 3 went in first, 1 collided, 4 never ran, and 3 was rolled back.
    CHECK(results[3].outcome == pgkit::pipeline_outcome::ok);
    CHECK(results[4].outcome == pgkit::pipeline_outcome::failed);
    REQUIRE(results[4].error.has_value());
    CHECK(results[4].error->kind() == pgkit::error_kind::unique_violation);
    CHECK(results[5].outcome == pgkit::pipeline_outcome::skipped);
    REQUIRE(results[5].error.has_value());
    CHECK(contains(results[5].error->what(), "not run"));
    CHECK(results[last].outcome == pgkit::pipeline_outcome::ok);
    CHECK(results[last].rows.at(0).at(0) == "2");
    CHECK(pgkit::status(*conn) == pgkit::connection_state::open);
    CHECK(value_of(*conn, "SELECT string_agg(id::text, ',' ORDER BY id) FROM item") == "1,2");
  }

  SUBCASE("inside a transaction a sync does not commit") {
    pgkit::execute_no_data(*conn, "BEGIN");
    pgkit::pipeline batch{*conn};
    for (int i = 10; i < 20; ++i)
      batch.add("INSERT INTO item VALUES ($1)", {std::to_string(i)});
    for (const auto& each : batch.collect())
      CHECK(each.outcome == pgkit::pipeline_outcome::ok);
    pgkit::execute_no_data(*conn, "ROLLBACK");
    CHECK(value_of(*conn, "SELECT count(*) FROM item") == "0");
  }

  SUBCASE("the timeout cancels the statement running; the connection stays usable") {
    pgkit::pipeline batch{*conn, {nullptr, 200ms}};
    batch.add("SELECT pg_sleep(30)");
    batch.add("INSERT INTO item VALUES (5)");
    const auto started = std::chrono::steady_clock::now();
    auto e = pgkit_test::expect_error([&] { batch.collect(); });
    CHECK(e.kind() == pgkit::error_kind::canceled);
    CHECK(std::chrono::steady_clock::now() - started < 20s);
    CHECK(value_of(*conn, "SELECT count(*) FROM item") == "0");
  }

  SUBCASE("bad input is refused before anything is sent") {
    pgkit::pipeline batch{*conn};
    CHECK_THROWS_AS(batch.add("SELECT $1", {std::string{"a\0b", 3}}), pgkit::usage_error);
    CHECK(batch.size() == 0);
    CHECK(batch.collect().empty());
  }
}

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
