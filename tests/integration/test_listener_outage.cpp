// The listener against a server that goes away: each test case runs its own sandbox server,
// because restarting or freezing the shared one would break the tests running beside it.

#include <doctest/doctest.h>

#include <signal.h>

#include <chrono>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "pgkit/connection.hpp"
#include "pgkit/error.hpp"
#include "pgkit/listener.hpp"
#include "pgkit/notify.hpp"

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

// Calls receive() until `done` or `patience` passes; returns the notifications seen meanwhile.
template <typename Done>
std::vector<pgkit::notification> receive_until(pgkit::listener& listener, Done done,
                                               std::chrono::seconds patience) {
  std::vector<pgkit::notification> seen;
  auto deadline = steady::now() + patience;
  while (!done() && steady::now() < deadline) {
    if (auto got = listener.receive(100ms))
      seen.push_back(*got);
  }
  return seen;
}

}  // namespace

TEST_CASE("pgkit::listener survives its server") {
  pgkit_test::own_sandbox server;
  std::vector<pgkit::listener_event> events;
  pgkit::listener_options options;
  options.reconnect_initial_delay = 100ms;
  options.reconnect_max_delay = 1s;
  options.on_event = [&](const pgkit::listener_event& event) { events.push_back(event); };

  SUBCASE("a restarted server: it reconnects by itself and LISTENs again") {
    pgkit::listener listener{server.url(), options};
    listener.listen("jobs");
    listener.listen("Other Channel");
    server.restart();
    receive_until(
        listener, [&] { return listener.reconnects() > 0; }, 60s);
    REQUIRE(listener.reconnects() == 1);
    REQUIRE_FALSE(events.empty());
    CHECK(events.front().kind == pgkit::listener_event_kind::connection_lost);
    CHECK(events.back().kind == pgkit::listener_event_kind::reconnected);
    auto sender = pgkit::connect(server.url());
    pgkit::notify(*sender, "Other Channel", "after the restart");
    auto got = listener.receive(10s);
    REQUIRE(got);
    CHECK(got->channel == "Other Channel");
    CHECK(got->payload == "after the restart");
  }

  SUBCASE(
      "a frozen backend (half-open connection) is caught by the heartbeat within two "
      "intervals") {
    constexpr auto interval = 1s;
    options.heartbeat_interval = interval;
    pgkit::listener listener{server.url(), options};
    listener.listen("frozen");
    auto backend = listener.backend_pid();
    REQUIRE(backend > 0);
    pgkit_test::resume_on_exit resume{backend};
    REQUIRE(::kill(backend, SIGSTOP) == 0);
    auto frozen_at = steady::now();
    steady::time_point lost_at{};
    receive_until(
        listener,
        [&] {
          for (const auto& event : events) {
            if (event.kind == pgkit::listener_event_kind::connection_lost) {
              if (lost_at == steady::time_point{})
                lost_at = steady::now();
              return true;
            }
          }
          return false;
        },
        30s);
    REQUIRE(lost_at != steady::time_point{});
    // Two intervals, plus generous slack for a loaded machine.
    CHECK(lost_at - frozen_at <= 2 * interval + 2s);
    CHECK(events.front().reason.find("heartbeat") != std::string::npos);
    // The postmaster still answers: the listener comes back on a new backend.
    receive_until(
        listener, [&] { return listener.reconnects() > 0; }, 30s);
    REQUIRE(listener.reconnects() == 1);
    CHECK(listener.backend_pid() != backend);
    auto sender = pgkit::connect(server.url());
    pgkit::notify(*sender, "frozen", "thawed");
    auto got = listener.receive(10s);
    REQUIRE(got);
    CHECK(got->payload == "thawed");
  }

  SUBCASE("with max_reconnect_attempts it gives up, and says how often it tried") {
    options.max_reconnect_attempts = 3;
    options.reconnect_initial_delay = 20ms;
    options.connect_timeout = 2s;
    pgkit::listener listener{server.url(), options};
    listener.listen("doomed");
    server.stop();
    try {
      receive_until(
          listener, [] { return false; }, 60s);
      FAIL("receive kept going with the server gone");
    } catch (const pgkit::error& e) {
      CHECK(e.kind() == pgkit::error_kind::connection_lost);
      CHECK(std::string{e.what()}.find("gave up reconnecting after 3 attempts") !=
            std::string::npos);
    }
    int failed_attempts = 0;
    for (const auto& event : events)
      failed_attempts += event.kind == pgkit::listener_event_kind::reconnect_failed ? 1 : 0;
    CHECK(failed_attempts == 2);  // the third failure throws instead
    CHECK_THROWS_AS(listener.receive(0ms), pgkit::error);
  }
}
