#include <doctest/doctest.h>

#include <pqxx/pqxx>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "pgkit/connection.hpp"
#include "pgkit/error.hpp"
#include "pgkit/listener.hpp"
#include "pgkit/notify.hpp"
#include "pgkit/pool.hpp"

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

// Receives until a notification arrives or `patience` passes.
std::optional<pgkit::notification> next(pgkit::listener& listener,
                                        std::chrono::milliseconds patience = 10s) {
  return listener.receive(patience);
}

}  // namespace

TEST_CASE("pgkit::listener") {
  pgkit_test::scratch_database db{"listener"};
  auto sender = pgkit::connect(db.url());
  auto sender_pid = sender->backendpid();
  pgkit::listener listener{db.url()};

  SUBCASE("several channels at once, each notification with its channel, payload and sender") {
    for (const char* channel : {"alpha", "beta", "gamma"})
      listener.listen(channel);
    CHECK(listener.channels() == std::vector<std::string>{"alpha", "beta", "gamma"});
    pgkit::notify(*sender, "beta", "2");
    pgkit::notify(*sender, "alpha", "1");
    pgkit::notify(*sender, "gamma", "3");
    pgkit::notify(*sender, "delta", "not listened to");
    std::vector<std::pair<std::string, std::string>> received;
    for (int i = 0; i < 3; ++i) {
      auto got = next(listener);
      REQUIRE(got);
      received.emplace_back(got->channel, got->payload);
      CHECK(got->sender_pid == sender_pid);
      CHECK(got->received_at <= std::chrono::system_clock::now());
    }
    CHECK(received == std::vector<std::pair<std::string, std::string>>{
                          {"beta", "2"}, {"alpha", "1"}, {"gamma", "3"}});
    CHECK_FALSE(listener.receive(200ms));
  }

  SUBCASE("odd channel names are quoted and kept exactly as given") {
    std::vector<std::string> names{"Upper Case",      "with space", "quo\"te",
                                   "semi;colon -- x", "ünïcødé ✓",  std::string(63, 'x')};
    for (const auto& name : names)
      listener.listen(name);
    for (const auto& name : names)
      pgkit::notify(*sender, name, "to " + name);
    for (const auto& name : names) {
      auto got = next(listener);
      REQUIRE(got);
      CHECK(got->channel == name);
      CHECK(got->payload == "to " + name);
    }
    // Case is kept: "Upper Case" is not "upper case".
    pgkit::notify(*sender, "upper case", "other channel");
    CHECK_FALSE(listener.receive(200ms));
  }

  SUBCASE("names PostgreSQL would cut or refuse are refused before anything is sent") {
    CHECK_THROWS_AS(listener.listen(std::string(64, 'x')), pgkit::usage_error);
    CHECK_THROWS_AS(listener.listen(""), pgkit::usage_error);
    CHECK_THROWS_AS(listener.listen(std::string{"nul\0byte", 8}), pgkit::usage_error);
    try {
      listener.listen(std::string(64, 'x'));
    } catch (const pgkit::usage_error& e) {
      CHECK(std::string{e.what()}.find("64 bytes long; PostgreSQL allows at most 63") !=
            std::string::npos);
    }
    CHECK(listener.channels().empty());
    CHECK(listener.connected());
  }

  SUBCASE("unicode, newlines, tabs, empty and 7999-byte payloads arrive intact") {
    listener.listen("payloads");
    std::vector<std::string> payloads{"line one\nline two\r\n\ttabbed", "日本語 ✓ émoji 🎉", "",
                                      "quote ' and \" and \\", std::string(7999, 'p')};
    for (const auto& payload : payloads)
      pgkit::notify(*sender, "payloads", payload);
    for (const auto& payload : payloads) {
      auto got = next(listener);
      REQUIRE(got);
      CHECK(got->payload == payload);
    }
  }

  SUBCASE("notifications sent while the caller is busy queue up in order, none dropped") {
    listener.listen("burst");
    constexpr int count = 2000;
    {
      pqxx::work tx{*sender};
      tx.exec("SELECT pg_notify('burst', i::text) FROM generate_series(1, 1000) AS i");
      tx.commit();
    }
    for (int i = 1001; i <= count; ++i)
      pgkit::notify(*sender, "burst", std::to_string(i));
    std::this_thread::sleep_for(300ms);  // the caller is busy; the server keeps sending
    int expected = 1;
    while (auto got = listener.receive(2s)) {
      if (got->payload != std::to_string(expected)) {
        FAIL("notification " << expected << " arrived as " << got->payload);
      }
      if (++expected > count)
        break;
    }
    CHECK(expected == count + 1);
  }

  SUBCASE("receive(timeout) waits about that long and returns nothing") {
    listener.listen("quiet");
    auto started = steady::now();
    CHECK_FALSE(listener.receive(300ms));
    auto waited = steady::now() - started;
    CHECK(waited >= 300ms);
    CHECK(waited < 2300ms);
    started = steady::now();
    CHECK_FALSE(listener.receive(0ms));
    CHECK(steady::now() - started < 1s);
  }

  SUBCASE("stop() from another thread wakes a receive that waits forever") {
    listener.listen("never");
    auto started = steady::now();
    std::thread stopper{[&] {
      std::this_thread::sleep_for(200ms);
      listener.stop();
    }};
    auto got = listener.receive();
    stopper.join();
    CHECK_FALSE(got);
    CHECK(listener.stopped());
    CHECK(steady::now() - started < 10s);
    // Stopping is final: later calls return at once.
    pgkit::notify(*sender, "never", "after stop");
    CHECK_FALSE(listener.receive(5s));
  }

  SUBCASE("run() hands every notification to the handler until stop()") {
    listener.listen("work");
    for (int i = 0; i < 5; ++i)
      pgkit::notify(*sender, "work", std::to_string(i));
    std::vector<std::string> handled;
    listener.run([&](const pgkit::notification& n) {
      handled.push_back(n.payload);
      if (handled.size() == 5)
        listener.stop();
    });
    CHECK(handled == std::vector<std::string>{"0", "1", "2", "3", "4"});
  }

  SUBCASE("unlisten() stops delivery for that channel only") {
    listener.listen("keep");
    listener.listen("drop");
    listener.unlisten("drop");
    CHECK(listener.channels() == std::vector<std::string>{"keep"});
    pgkit::notify(*sender, "drop", "x");
    pgkit::notify(*sender, "keep", "y");
    auto got = next(listener);
    REQUIRE(got);
    CHECK(got->channel == "keep");
    CHECK_FALSE(listener.receive(200ms));
  }

  SUBCASE("notify in a transaction is delivered on commit and never on rollback") {
    listener.listen("tx");
    {
      pqxx::work tx{*sender};
      pgkit::notify(tx, "tx", "rolled back");
    }
    {
      pqxx::work tx{*sender};
      pgkit::notify(tx, "tx", "committed");
      CHECK_FALSE(listener.receive(200ms));
      tx.commit();
    }
    auto got = next(listener);
    REQUIRE(got);
    CHECK(got->payload == "committed");
    CHECK_FALSE(listener.receive(200ms));
  }

  SUBCASE("notify through a pool leases a connection for the call and gives it back") {
    listener.listen("pooled");
    pgkit::pool pool{pgkit::config_from_url(db.url())};
    pgkit::notify(pool, "pooled", "via the pool");
    auto got = next(listener);
    REQUIRE(got);
    CHECK(got->channel == "pooled");
    CHECK(got->payload == "via the pool");
    auto stats = pool.stats();
    CHECK(stats.acquired == 1);
    CHECK(stats.in_use == 0);
    CHECK_THROWS_AS(pgkit::notify(pool, "pooled", std::string(8000, 'p')), pgkit::usage_error);
    CHECK(pool.stats().acquired == 1);
  }

  SUBCASE("a payload of 8000 bytes is refused and nothing is sent") {
    listener.listen("big");
    try {
      pgkit::notify(*sender, "big", std::string(8000, 'p'));
      FAIL("an 8000-byte payload was accepted");
    } catch (const pgkit::usage_error& e) {
      CHECK(std::string{e.what()}.find("8000 bytes") != std::string::npos);
    }
    CHECK_FALSE(listener.receive(300ms));
  }

  SUBCASE("a terminated backend: connection_lost, reconnected, LISTENing again") {
    std::vector<pgkit::listener_event> events;
    pgkit::listener_options options;
    options.reconnect_initial_delay = 50ms;
    options.on_event = [&](const pgkit::listener_event& event) { events.push_back(event); };
    pgkit::listener watched{db.url(), options};
    watched.listen("Resync Me");
    auto old_pid = watched.backend_pid();
    CHECK(old_pid != 0);
    pgkit::notify(*sender, "Resync Me", "before");
    auto before = watched.receive(10s);
    REQUIRE(before);
    CHECK(before->payload == "before");
    pqxx::nontransaction{*sender}.exec("SELECT pg_terminate_backend(" + std::to_string(old_pid) +
                                       ")");
    // The next receive notices the loss, reconnects and LISTENs again.
    auto deadline = steady::now() + 20s;
    while (watched.reconnects() == 0 && steady::now() < deadline)
      CHECK_FALSE(watched.receive(100ms));
    REQUIRE(watched.reconnects() == 1);
    CHECK(watched.connected());
    CHECK(watched.backend_pid() != old_pid);
    REQUIRE(events.size() >= 2);
    CHECK(events.front().kind == pgkit::listener_event_kind::connection_lost);
    CHECK_FALSE(events.front().reason.empty());
    CHECK(events.back().kind == pgkit::listener_event_kind::reconnected);
    pgkit::notify(*sender, "Resync Me", "after");
    auto after = watched.receive(10s);
    REQUIRE(after);
    CHECK(after->payload == "after");
  }

  SUBCASE("close() unlistens and ends the session; the listener is then unusable") {
    listener.listen("closing");
    auto pid = listener.backend_pid();
    listener.close();
    CHECK_FALSE(listener.connected());
    CHECK_THROWS_AS(listener.receive(0ms), pgkit::usage_error);
    CHECK_THROWS_AS(listener.listen("again"), pgkit::usage_error);
    listener.close();  // twice is fine
    auto gone = "SELECT count(*) FROM pg_stat_activity WHERE pid = " + std::to_string(pid);
    auto deadline = steady::now() + 10s;
    while (pgkit_test::query_value(db.url(), gone) != "0" && steady::now() < deadline)
      std::this_thread::sleep_for(50ms);
    CHECK(pgkit_test::query_value(db.url(), gone) == "0");
  }
}

TEST_CASE("pgkit::listener refusals") {
  pgkit_test::scratch_database db{"listener_refusals"};

  SUBCASE("a transaction-mode pooler is refused with a configuration error") {
    pgkit::listener_options options;
    options.pooler = pgkit::pooler_mode::pgbouncer_transaction;
    try {
      pgkit::listener refused{db.url(), options};
      FAIL("the listener accepted a transaction-mode pooler");
    } catch (const pgkit::config_error& e) {
      CHECK(std::string{e.what()}.find("transaction-mode pooler") != std::string::npos);
      CHECK_FALSE(e.hint().empty());
    }
  }
  SUBCASE("a server that is not there fails the constructor, password hidden") {
    try {
      pgkit::listener refused{"postgresql://app:topsecret@127.0.0.1:1/app"};
      FAIL("the listener connected to port 1");
    } catch (const pgkit::error& e) {
      CHECK(e.kind() == pgkit::error_kind::connection);
      CHECK(std::string{e.what()}.find("topsecret") == std::string::npos);
      CHECK(std::string{e.what()}.find("postgresql://app:***@127.0.0.1:1/app") !=
            std::string::npos);
    }
  }
}

TEST_CASE("pgkit::listener session_setup runs on every connection, before LISTEN") {
  pgkit_test::scratch_database db{"listener_setup"};
  auto holds_lock = [&](int pid) {
    return pgkit_test::query_value(db.url(),
                                   "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                   "AND classid = 42 AND objid = 7 AND granted AND pid = " +
                                       std::to_string(pid)) == "1";
  };
  pgkit::listener_options options;
  options.reconnect_initial_delay = 50ms;
  options.session_setup = "SELECT pg_advisory_lock_shared(42, 7)";
  pgkit::listener listener{db.url(), options};
  listener.listen("setup");
  auto first_pid = listener.backend_pid();
  CHECK(holds_lock(first_pid));
  pgkit_test::query_value(db.url(),
                          "SELECT pg_terminate_backend(" + std::to_string(first_pid) + ")");
  CHECK(pgkit_test::eventually([&] {
    listener.receive(50ms);
    return listener.reconnects() == 1 && listener.connected();
  }));
  CHECK(listener.backend_pid() != first_pid);
  CHECK(holds_lock(listener.backend_pid()));

  SUBCASE("a setup the server refuses fails the first connection and says so") {
    options.session_setup = "SELECT no_such_function()";
    auto failure = pgkit_test::expect_error([&] { pgkit::listener refused{db.url(), options}; });
    CHECK(std::string{failure.what()}.find("session setup") != std::string::npos);
    CHECK(std::string{failure.what()}.find("no_such_function") != std::string::npos);
  }
}

TEST_CASE("pgkit::listener::listen refused by the server") {
  pgkit_test::scratch_database scratch{"listener_refused"};
  // A LATIN1 database: the server refuses (22P05) a channel name that is valid UTF-8 but has
  // no LATIN1 form, after pgkit sent it (pgkit itself refuses invalid UTF-8 before sending).
  const std::string latin1 = "pgkit_listener_refused_latin1";
  pgkit_test::query_value(pgkit_test::sandbox_url(), "DROP DATABASE IF EXISTS " + latin1);
  pgkit_test::query_value(pgkit_test::sandbox_url(),
                          "CREATE DATABASE " + latin1 +
                              " ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
  std::string url = pgkit_test::with_database(scratch.url(), latin1);
  url += (url.find('?') == std::string::npos ? "?" : "&") + std::string{"client_encoding=UTF8"};
  auto sender = pgkit::connect(url);
  pgkit::listener listener{url};
  listener.listen("kept");
  const std::string refused = "price in \xe2\x82\xac";
  CHECK_THROWS_AS(listener.listen(refused), pgkit::sql_error);
  CHECK(listener.channels() == std::vector<std::string>{"kept"});
  // The refused channel is not part of the next subscription: after a reconnect the listener
  // LISTENs again and delivers.
  pgkit_test::query_value(
      url, "SELECT pg_terminate_backend(" + std::to_string(listener.backend_pid()) + ")");
  CHECK_FALSE(listener.receive(300ms));
  CHECK(pgkit_test::eventually([&] {
    listener.receive(50ms);
    return listener.connected();
  }));
  pgkit::notify(*sender, "kept", "after");
  auto got = next(listener);
  REQUIRE(got);
  CHECK(got->payload == "after");
  CHECK(listener.reconnects() == 1);
  listener.stop();
  pgkit_test::query_value(pgkit_test::sandbox_url(), "DROP DATABASE " + latin1 + " WITH (FORCE)");
}

TEST_CASE("the listener's connection sends notices to the handler, never to stderr") {
  pgkit_test::scratch_database db{"listener_notices"};
  std::vector<pgkit::server_notice> received;
  pgkit::set_notice_handler(
      [&](const pgkit::server_notice& notice) { received.push_back(notice); });
  {
    pgkit::listener listener{db.url()};
    listener.listen("c");
    pgkit_test::query_value(
        db.url(), "SELECT pg_terminate_backend(" + std::to_string(listener.backend_pid()) + ")");
    CHECK(pgkit_test::eventually([&] {
      listener.receive(50ms);
      return listener.reconnects() == 1;
    }));
  }
  pgkit::set_notice_handler({});
  bool saw_farewell = false;
  for (const auto& notice : received) {
    if (notice.severity == "FATAL" &&
        notice.message == "terminating connection due to administrator command")
      saw_farewell = true;
  }
  CHECK(saw_farewell);
}
