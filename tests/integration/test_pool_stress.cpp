// The pool under contention: 16 threads share a pool of 4 for 20 000 statements, and 64 threads
// share a pool of 2 without anyone starving. Also run by the tsan suite (ThreadSanitizer), so it
// must stay quick enough to run instrumented.

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "pgkit/connection.hpp"
#include "pgkit/pool.hpp"
#include "stores/statements.hpp"

using namespace std::chrono_literals;

TEST_CASE("pgkit::pool under contention") {
  pgkit_test::scratch_database db{"stress"};
  constexpr int k_threads = 16;
  constexpr int k_statements = 20000;
  constexpr std::size_t k_pool_size = 4;
  // The fairness bound: queued callers are served first come, first served and a connection
  // changes hands at least once per hand-off slice, so no caller waits longer than this, even on
  // a loaded machine under ThreadSanitizer. Each wait is normally a few ms.
  constexpr auto k_wait_bound = 10s;

  auto config = pgkit::config_from_url(db.url(), "test");
  config.pool_size = k_pool_size;
  config.acquire_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(k_wait_bound);
  pgkit::pool pool{config};

  std::atomic<int> errors{0};
  std::atomic<long long> sum{0};
  std::atomic<bool> running{true};
  std::vector<std::chrono::steady_clock::duration> longest_wait(k_threads);

  // Watches the server's view: never more than pool_size connections to this database (an
  // autovacuum worker in it is no connection of the pool's).
  std::atomic<int> most_backends{0};
  std::thread watcher{[&] {
    auto admin = pgkit::connect(db.url());
    while (running) {
      pqxx::nontransaction tx{*admin};
      auto backends = tx.exec(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                            "current_database() AND pid <> pg_backend_pid() "
                            "AND backend_type = 'client backend'")[0][0]
                          .as<int>();
      most_backends = std::max(most_backends.load(), backends);
      std::this_thread::sleep_for(5ms);
    }
  }};

  std::vector<std::thread> threads;
  for (int t = 0; t < k_threads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < k_statements; i += k_threads) {
        try {
          auto before = std::chrono::steady_clock::now();
          auto lease = pool.acquire();
          longest_wait[static_cast<std::size_t>(t)] = std::max(
              longest_wait[static_cast<std::size_t>(t)], std::chrono::steady_clock::now() - before);
          auto result = pgkit::detail::run_statement(lease, {"pgkit_stress", "SELECT $1::int"},
                                                     {pgkit::detail::int_param(i)}, "stress", {},
                                                     pgkit::detail::result_format::text);
          sum += std::stoi(result.bytes(0, 0));
        } catch (const std::exception& e) {
          if (errors++ < 5)
            MESSAGE("statement " << i << " failed: " << e.what());
        }
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  running = false;
  watcher.join();

  CHECK(errors == 0);
  CHECK(sum == static_cast<long long>(k_statements) * (k_statements - 1) / 2);
  auto stats = pool.stats();
  CHECK(stats.acquired == k_statements);
  CHECK(stats.created <= k_pool_size);
  CHECK(stats.destroyed() == 0);
  CHECK(stats.in_use == 0);
  CHECK(stats.idle == stats.created);
  CHECK(stats.timed_out == 0);
  CHECK(most_backends <= static_cast<int>(k_pool_size));
  CHECK(stats.longest_wait < k_wait_bound);
  auto slowest = *std::max_element(longest_wait.begin(), longest_wait.end());
  CHECK(slowest < k_wait_bound);
  MESSAGE("longest wait " << std::chrono::duration_cast<std::chrono::milliseconds>(slowest).count()
                          << " ms, " << stats.waited << " of " << stats.acquired
                          << " acquires waited");
  pool.close();
  // Backends exit a moment after their clients hang up: wait for them, with a generous bound.
  CHECK(pgkit_test::eventually([&] {
    return pgkit_test::query_value(db.url(),
                                   "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                   "current_database() AND pid <> pg_backend_pid()") == "0";
  }));
}

TEST_CASE("pgkit::pool does not starve anyone") {
  // 64 threads loop over a pool of 2 for a few seconds. Threads that are running take their
  // connection back ahead of the queue, but only within their hand-off slice: every thread keeps
  // making progress. A test of progress, not of time: each thread must complete at least one
  // statement per second of the run (normally it completes hundreds).
  pgkit_test::scratch_database db{"starve"};
  constexpr int k_threads = 64;
  constexpr auto k_run = 4s;
  auto config = pgkit::config_from_url(db.url(), "test");
  config.pool_size = 2;
  config.acquire_timeout = 60s;
  pgkit::pool pool{config};
  pool.warm_up();

  std::atomic<bool> running{true};
  std::atomic<int> errors{0};
  std::vector<long> completed(k_threads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < k_threads; ++t) {
    threads.emplace_back([&, t] {
      while (running) {
        try {
          auto lease = pool.acquire();
          pqxx::nontransaction tx{*lease};
          tx.exec("SELECT 1");
          ++completed[static_cast<std::size_t>(t)];
        } catch (const std::exception& e) {
          if (errors++ < 5)
            MESSAGE("thread " << t << " failed: " << e.what());
        }
      }
    });
  }
  auto started = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(k_run);
  running = false;
  for (auto& thread : threads)
    thread.join();
  // The run lasted at least k_run; a thread stuck behind overtakers would complete nothing.
  auto seconds =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started)
          .count();
  CHECK(errors == 0);
  auto fewest = *std::min_element(completed.begin(), completed.end());
  CHECK(fewest >= seconds);
  auto stats = pool.stats();
  CHECK(stats.timed_out == 0);
  CHECK(stats.created == 2);
  CHECK(stats.handoffs > 0);
  MESSAGE("fewest statements by one thread "
          << fewest << " in " << seconds << " s; " << stats.acquired << " in all, "
          << stats.overtakes << " overtakes, " << stats.handoffs << " hand-offs ("
          << stats.paired_handoffs << " paired), longest wait "
          << std::chrono::duration_cast<std::chrono::milliseconds>(stats.longest_wait).count()
          << " ms");
}
