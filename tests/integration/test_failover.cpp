// Failover on this machine, with PostgreSQL's own streaming replication: a primary and a
// standby (sandboxes of the test's own, never the shared fixture server), synchronous
// replication, a pool on a multi-host URL with target_session_attrs=read-write under a steady
// load of cache and session calls from 4 threads, and a listener. The primary is stopped
// (immediate shutdown, as a crash) and the standby promoted.

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "child_process.hpp"
#include "harness.hpp"
#include "pgbouncer.hpp"
#include "pgkit/cache.hpp"
#include "pgkit/error.hpp"
#include "pgkit/listener.hpp"
#include "pgkit/notify.hpp"
#include "pgkit/pool.hpp"
#include "pgkit/session.hpp"

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using pgkit_test::own_sandbox;
using pgkit_test::query_value;

namespace {

long long ms(steady::duration duration) {
  return static_cast<long long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(duration).count());
}

// A session whose creation (and latest data) the store acknowledged.
struct acknowledged_session {
  std::string key;
  std::string data;
  std::vector<std::string> in_doubt;  // data of set() calls that failed: each may have committed

  // Returns true when `read` is what the session may hold.
  bool may_hold(const std::string& read) const {
    return read == data || std::find(in_doubt.begin(), in_doubt.end(), read) != in_doubt.end();
  }
};

// What one load thread saw.
struct worker_log {
  std::vector<acknowledged_session> sessions;
  std::vector<steady::time_point> succeeded_at;  // when each successful call returned
  struct failure {
    steady::time_point started;
    std::string what;
  };
  std::vector<failure> failures;
};

// One call of the steady load: the four store operations in turn. Throws what the store threw.
void one_call(pgkit::cache_store& cache, pgkit::session_store& sessions, worker_log& log,
              int worker, long step) {
  auto data = "w" + std::to_string(worker) + "-" + std::to_string(step);
  switch (step % 4) {
    case 0:
      log.sessions.push_back({sessions.generate(data), data, {}});
      break;
    case 1: {
      if (log.sessions.empty())
        return;
      auto& last = log.sessions.back();
      last.in_doubt.push_back(data);
      if (sessions.set(last.key, data) == pgkit::set_result::updated)
        last.data = data;
      last.in_doubt.clear();
      break;
    }
    case 2:
      cache.set("failover", "w" + std::to_string(worker), data);
      break;
    default:
      if (!log.sessions.empty()) {
        auto& last = log.sessions.back();
        auto read = sessions.get(last.key);
        if (!read || !last.may_hold(read->data))
          throw std::runtime_error("session " + last.data + " read back wrong");
        last.data = read->data;  // what was in doubt is known now
        last.in_doubt.clear();
      }
      cache.get("failover", "w" + std::to_string(worker));
      break;
  }
}

// Synchronous replication: a commit returns once the standby has the WAL on disk. Set after the
// copy, so the promoted standby does not wait for a standby of its own. The sandbox runs with
// synchronous_commit=off on its command line; a role setting overrides that.
void replicate_synchronously(const own_sandbox& primary) {
  query_value(primary.url(), "ALTER SYSTEM SET synchronous_standby_names = '*'");
  query_value(primary.url(), "ALTER ROLE postgres SET synchronous_commit = on");
  query_value(primary.url(), "SELECT pg_reload_conf()");
  REQUIRE(pgkit_test::eventually([&] {
    return query_value(primary.url(), "SELECT sync_state FROM pg_stat_replication") == "sync";
  }));
}

}  // namespace

TEST_CASE("failover: the standby is promoted under load") {
  own_sandbox primary;
  primary.apply({"cache", "session"});
  own_sandbox standby{own_sandbox::standby_of{primary}};
  replicate_synchronously(primary);

  auto url = pgkit_test::primary_of(primary, standby);
  auto config = pgkit::config_from_url(url, "test");
  config.pool_size = 4;
  config.connect_timeout = 5s;
  auto pool = std::make_shared<pgkit::pool>(config);
  pgkit::cache_store cache{pool};
  pgkit::session_store sessions{pool};

  // The listener: its own thread, since it is not thread-safe.
  std::mutex listener_mutex;
  std::vector<pgkit::listener_event> events;
  std::vector<pgkit::notification> received;
  std::optional<steady::time_point> reconnected_at;
  pgkit::listener_options listener_options;
  listener_options.reconnect_initial_delay = 100ms;
  listener_options.reconnect_max_delay = 1s;
  listener_options.heartbeat_interval = 2s;
  listener_options.connect_timeout = 5s;
  listener_options.on_event = [&](const pgkit::listener_event& event) {
    std::lock_guard lock{listener_mutex};
    events.push_back(event);
    if (event.kind == pgkit::listener_event_kind::reconnected && !reconnected_at)
      reconnected_at = steady::now();
  };
  pgkit::listener listener{url, listener_options};
  listener.listen("failover");
  std::thread listening{[&] {
    while (auto got = listener.receive()) {
      std::lock_guard lock{listener_mutex};
      received.push_back(*got);
    }
  }};

  // Shared with the workers: when the promotion completed (0 until then), and how many calls
  // each worker has completed, in all and since that moment.
  std::atomic<bool> stopping{false};
  std::atomic<steady::rep> promoted_at{0};
  std::vector<std::atomic<long>> completed(4), completed_after_promotion(4);
  std::vector<worker_log> logs(4);
  std::vector<std::thread> workers;
  for (std::size_t worker = 0; worker < 4; ++worker) {
    workers.emplace_back([&, worker] {
      auto& log = logs[worker];
      for (long step = 0; !stopping; ++step) {
        auto started = steady::now();
        try {
          one_call(cache, sessions, log, static_cast<int>(worker), step);
          log.succeeded_at.push_back(steady::now());
          ++completed[worker];
          auto promoted = promoted_at.load();
          if (promoted != 0 && started.time_since_epoch().count() > promoted)
            ++completed_after_promotion[worker];
        } catch (const std::exception& e) {
          log.failures.push_back({started, e.what()});
          std::this_thread::sleep_for(20ms);  // as an application would before its next request
        }
      }
    });
  }
  auto each_worker = [](const std::vector<std::atomic<long>>& counts, long at_least) {
    return std::all_of(counts.begin(), counts.end(),
                       [&](const std::atomic<long>& count) { return count >= at_least; });
  };

  CHECK(pgkit_test::eventually([&] { return each_worker(completed, 100); }, 60s));
  // A caller that is idle across the failover must not see an error either.
  auto idle_caller = sessions.generate("idle caller");
  auto stopped_at = steady::now();
  primary.stop();
  standby.promote();
  auto promoted = steady::now();
  promoted_at = promoted.time_since_epoch().count();
  CHECK(pgkit_test::eventually([&] { return each_worker(completed_after_promotion, 100); }, 60s));

  // The listener finds the new primary by itself; a notification sent now arrives.
  CHECK(pgkit_test::eventually(
      [&] {
        std::lock_guard lock{listener_mutex};
        return reconnected_at.has_value();
      },
      60s));
  auto idle_read = sessions.get(idle_caller);
  REQUIRE(idle_read);
  CHECK(idle_read->data == "idle caller");
  pgkit::notify(*pool, "failover", "after the promotion");
  CHECK(pgkit_test::eventually(
      [&] {
        std::lock_guard lock{listener_mutex};
        return std::any_of(received.begin(), received.end(), [](const pgkit::notification& n) {
          return n.payload == "after the promotion";
        });
      },
      30s));

  stopping = true;
  for (auto& worker : workers)
    worker.join();
  listener.stop();
  listening.join();

  // No call that started after the promotion completed failed.
  std::size_t failed_before = 0;
  long long longest_outage = 0, shortest_outage = -1;
  for (auto& log : logs) {
    for (auto& failure : log.failures) {
      CHECK_MESSAGE(failure.started <= promoted, failure.what);
      if (failure.started <= promoted)
        ++failed_before;
    }
    // The outage this caller saw: the longest time without a successful call, from its last
    // success before the stop on.
    auto first = std::upper_bound(log.succeeded_at.begin(), log.succeeded_at.end(), stopped_at);
    REQUIRE(first != log.succeeded_at.begin());
    long long outage = 0;
    for (auto it = std::prev(first); std::next(it) != log.succeeded_at.end(); ++it)
      outage = std::max(outage, ms(*std::next(it) - *it));
    longest_outage = std::max(longest_outage, outage);
    shortest_outage = shortest_outage < 0 ? outage : std::min(shortest_outage, outage);
  }

  // No session acknowledged before the stop (or after) is lost, and none holds other data.
  std::size_t checked = 0;
  for (auto& log : logs) {
    for (auto& acknowledged : log.sessions) {
      auto read = sessions.get(acknowledged.key);
      REQUIRE_MESSAGE(read, ("acknowledged session lost: " + acknowledged.data));
      CHECK_MESSAGE(acknowledged.may_hold(read->data),
                    (acknowledged.data + " read back as " + read->data));
      ++checked;
    }
  }
  // The cache is UNLOGGED: the promoted standby starts it empty, and it works at once.
  cache.set("failover", "after", "works");
  CHECK(cache.get("failover", "after") == "works");

  long long listener_after = 0;
  {
    std::lock_guard lock{listener_mutex};
    listener_after = ms(*reconnected_at - stopped_at);
  }
  std::printf(
      "failover: stop + promotion took %lld ms; each caller's outage %lld to %lld ms; "
      "%zu calls failed, all started before the promotion completed; the listener reconnected "
      "%lld ms after the stop; %zu acknowledged sessions all read back\n",
      ms(promoted - stopped_at), shortest_outage, longest_outage, failed_before, listener_after,
      checked);
}

TEST_CASE("failover behind PgBouncer in transaction mode, repointed by the operator") {
  own_sandbox primary;
  primary.apply({"session"});
  own_sandbox standby{own_sandbox::standby_of{primary}};
  replicate_synchronously(primary);
  pgkit_test::pgbouncer bouncer{pgkit_test::port_of(primary.url())};
  auto config = pgkit::config_from_url(bouncer.url("postgres"), "test");
  config.pool_size = 2;
  config.pooler = pgkit::pooler_mode::pgbouncer_transaction;
  auto pool = std::make_shared<pgkit::pool>(config);
  pgkit::session_store sessions{pool};
  auto before = sessions.generate("before the failover");

  primary.stop();
  standby.promote();
  // The procedure of docs/scaling.md: point PgBouncer at the new primary and reload it.
  bouncer.repoint(pgkit_test::port_of(standby.url()));
  auto repointed = steady::now();
  // Statements that reach a server connection PgBouncer has not yet found dead may fail once;
  // after that the same pool, never restarted, works on the new primary.
  std::size_t failed = 0;
  CHECK(pgkit_test::eventually(
      [&] {
        try {
          auto read = sessions.get(before);
          return read && read->data == "before the failover";
        } catch (const pgkit::error&) {
          ++failed;
          return false;
        }
      },
      30s));
  auto recovered = steady::now();
  auto after = sessions.generate("after the failover");
  CHECK(sessions.get(after)->data == "after the failover");
  CHECK(query_value(standby.url(), "SELECT count(*) FROM pgkit.session") == "2");
  std::printf("failover behind PgBouncer: working %lld ms after the reload, %zu calls failed\n",
              ms(recovered - repointed), failed);
}
