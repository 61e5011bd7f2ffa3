// bench/pool: what the pool costs. Prints, side by side with a baseline measured in the same
// run, (1) acquire + release uncontended against a mutex lock/unlock, (2) `SELECT 1` through
// the pool against the same statement on one connection without a pool and against a raw libpq
// loop, (3) contended throughput: 8 threads over a pool of 4 against 4 threads that each own a
// connection.
//   bench_pool [URL]   (default: $PGKIT_BENCH_URL, $DATABASE_URL, else a throwaway server of its
//   own)

#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <pgkit/pgkit.hpp>
#include <pqxx/pqxx>

#include "support.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

double ns_per(clock_type::duration elapsed, long iterations) {
  return static_cast<double>(
             std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count()) /
         static_cast<double>(iterations);
}

void row(const char* what, double measured, const char* baseline_name, double baseline,
         const char* unit) {
  std::printf("%-34s %12.1f %-6s | %-26s %12.1f %-6s | ratio %.3f\n", what, measured, unit,
              baseline_name, baseline, unit, measured / baseline);
}

}  // namespace

int main(int argc, char** argv) {
  bench::server server{argc, argv, "pgkit-bench-pool"};
  const std::string& url = server.url();
  int status = 0;
  try {
    auto config = pgkit::config_from_url(url, "bench");
    config.pool_size = 4;
    pgkit::pool pool{config};
    pool.warm_up();

    // 1. acquire + release, one thread, a warm pool.
    constexpr long k_acquires = 1'000'000;
    auto started = clock_type::now();
    for (long i = 0; i < k_acquires; ++i)
      pool.acquire().release();
    double acquire_ns = ns_per(clock_type::now() - started, k_acquires);
    std::mutex mutex;
    started = clock_type::now();
    for (long i = 0; i < k_acquires; ++i) {
      mutex.lock();
      mutex.unlock();
      mutex.lock();
      mutex.unlock();
    }
    double mutex_ns = ns_per(clock_type::now() - started, k_acquires);

    // 2. SELECT 1 round trips, the variants interleaved over several rounds (best of each) so
    // that a noisy neighbour does not favour one of them.
    constexpr long k_selects = 10'000;
    auto single = pgkit::connect(config);
    PGconn* raw = PQconnectdb(config.conninfo().c_str());
    double pooled_ns = 1e18, single_ns = 1e18, raw_ns = 1e18;
    for (int round = 0; round < 3; ++round) {
      started = clock_type::now();
      for (long i = 0; i < k_selects; ++i) {
        auto lease = pool.acquire();
        pqxx::nontransaction tx{*lease};
        tx.exec("SELECT 1");
      }
      pooled_ns = std::min(pooled_ns, ns_per(clock_type::now() - started, k_selects));
      started = clock_type::now();
      for (long i = 0; i < k_selects; ++i) {
        pqxx::nontransaction tx{*single};
        tx.exec("SELECT 1");
      }
      single_ns = std::min(single_ns, ns_per(clock_type::now() - started, k_selects));
      started = clock_type::now();
      for (long i = 0; i < k_selects; ++i)
        PQclear(PQexec(raw, "SELECT 1"));
      raw_ns = std::min(raw_ns, ns_per(clock_type::now() - started, k_selects));
    }
    PQfinish(raw);

    // 3. Throughput for a fixed time: threads sharing the pool against threads that each own a
    // connection.
    constexpr auto k_window = std::chrono::seconds{3};
    auto throughput = [&](int threads, auto&& work) {
      std::atomic<long> done{0};
      std::atomic<bool> stop{false};
      std::vector<std::thread> workers;
      for (int t = 0; t < threads; ++t)
        workers.emplace_back([&] { work(done, stop); });
      std::this_thread::sleep_for(k_window);
      stop = true;
      for (auto& worker : workers)
        worker.join();
      return static_cast<double>(done) / static_cast<double>(k_window.count());
    };
    auto through_pool = [&](std::atomic<long>& done, std::atomic<bool>& stop) {
      while (!stop) {
        auto lease = pool.acquire();
        pqxx::nontransaction tx{*lease};
        tx.exec("SELECT 1");
        ++done;
      }
    };
    auto own_connection = [&](std::atomic<long>& done, std::atomic<bool>& stop) {
      auto own = pgkit::connect(config);
      while (!stop) {
        pqxx::nontransaction tx{*own};
        tx.exec("SELECT 1");
        ++done;
      }
    };
    double owned_rate = throughput(4, own_connection);
    double pooled4_rate = throughput(4, through_pool);
    double pooled8_rate = throughput(8, through_pool);

    auto stats = pool.stats();
    std::printf("pgkit pool benchmark against %s (pool_size 4)\n", config.describe().c_str());
    row("acquire + release, uncontended", acquire_ns, "2x mutex lock/unlock", mutex_ns, "ns");
    row("SELECT 1 through the pool", pooled_ns, "SELECT 1, one connection", single_ns, "ns");
    row("SELECT 1 through the pool", pooled_ns, "SELECT 1, raw libpq", raw_ns, "ns");
    row("4 threads over a pool of 4", pooled4_rate, "4 threads, own connection", owned_rate,
        "stmt/s");
    row("8 threads over a pool of 4", pooled8_rate, "4 threads, own connection", owned_rate,
        "stmt/s");
    std::printf(
        "pool overhead on a SELECT 1 round trip: %+.1f %% against the same libpqxx calls "
        "on one connection (target: under 5 %%)\n",
        (pooled_ns / single_ns - 1.0) * 100.0);
    std::printf(
        "the pool's own work (acquire + release) is %.2f %% of a raw libpq round trip; "
        "the rest of the gap to raw libpq is libpqxx's transaction and result objects\n",
        acquire_ns / raw_ns * 100.0);
    std::printf("counters: acquired %llu, waited %llu, created %llu, destroyed %llu\n",
                static_cast<unsigned long long>(stats.acquired),
                static_cast<unsigned long long>(stats.waited),
                static_cast<unsigned long long>(stats.created),
                static_cast<unsigned long long>(stats.destroyed()));
  } catch (const std::exception& e) {
    std::cerr << "bench_pool: " << e.what() << '\n';
    status = 1;
  }
  return status;
}
