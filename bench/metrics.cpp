// bench/metrics: what observing costs. The pool's acquire/release, a cache get answered by the
// table and one answered by the near tier, each run with nothing observing it and then with a
// pgkit::metrics observing the pool and the store while a thread scrapes it ten times a second
// (Prometheus scrapes every 15 s or so: this is 150 times as often). Prints operations per
// second side by side and the ratio observed / plain; best of PGKIT_BENCH_ROUNDS rounds
// (default 3) of PGKIT_BENCH_SECONDS (default 1) each, the two sides alternating.

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <prometheus/text_serializer.h>

#include <pgkit/metrics.hpp>
#include <pgkit/pgkit.hpp>

#include "cache_common.hpp"

namespace {

using bench::clock_type;

// Operations per second of `threads` threads running `op` for `duration` seconds.
double throughput(int threads, double duration, const std::function<void()>& op) {
  std::atomic<bool> stop{false};
  std::atomic<long> done{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      long count = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        op();
        ++count;
      }
      done += count;
    });
  }
  auto started = clock_type::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(duration));
  stop = true;
  for (auto& worker : workers)
    worker.join();
  return static_cast<double>(done.load()) / bench::seconds(clock_type::now() - started);
}

// Scrapes `observed` ten times a second while it exists.
class scraper {
 public:
  explicit scraper(const pgkit::metrics& observed)
      : m_thread{[this, &observed] {
          while (!m_stop.load()) {
            m_bytes += prometheus::TextSerializer{}.Serialize(observed.Collect()).size();
            std::this_thread::sleep_for(std::chrono::milliseconds{100});
          }
        }} {}
  ~scraper() {
    m_stop = true;
    m_thread.join();
  }
  scraper(const scraper&) = delete;
  scraper& operator=(const scraper&) = delete;

 private:
  std::atomic<bool> m_stop{false};
  std::size_t m_bytes = 0;
  std::thread m_thread;
};

}  // namespace

int main(int argc, char** argv) {
  try {
    bench::server server{argc, argv, "pgkit-bench-metrics"};
    double duration = bench::env("PGKIT_BENCH_SECONDS").empty()
                          ? 1.0
                          : std::stod(bench::env("PGKIT_BENCH_SECONDS"));
    int rounds =
        bench::env("PGKIT_BENCH_ROUNDS").empty() ? 3 : std::stoi(bench::env("PGKIT_BENCH_ROUNDS"));
    bench::cache_schema schema{server.url(), "pgkit_bench_metrics"};
    auto config = pgkit::config_from_url(server.url());
    config.pool_size = 4;
    auto connections = pgkit::start(config);
    pgkit::cache_options table_only;
    table_only.schema = schema.name();
    pgkit::cache_store table{connections, table_only};
    pgkit::cache_options with_near = table_only;
    with_near.near.emplace();
    pgkit::cache_store near{connections, with_near};
    table.set("t", "hit", std::string(100, 'x'), std::chrono::hours{1});
    near.get("t", "hit");  // fills the near tier

    struct operation {
      const char* name;
      int threads;
      std::function<void()> op;
    };
    const operation operations[] = {
        {"pool acquire", 4, [&] { connections->acquire(); }},
        {"get hit", 2, [&] { table.get("t", "hit"); }},
        {"near get hit", 4, [&] { near.get("t", "hit"); }},
    };
    std::printf(
        "bench/metrics: best of %d rounds of %.1f s; observed = pgkit::metrics over the "
        "pool and stores, scraped 10 times a second\n",
        rounds, duration);
    std::printf("%-14s %7s %13s %13s %7s\n", "operation", "threads", "plain ops/s",
                "observed ops/s", "ratio");
    for (const auto& operation : operations) {
      double plain = 0;
      double observed_rate = 0;
      for (int round = 0; round < rounds; ++round) {
        plain = std::max(plain, throughput(operation.threads, duration, operation.op));
        pgkit::metrics observed;
        observed.observe("main", connections);
        observed.observe("table", table);
        observed.observe("near", near);
        scraper scraping{observed};
        observed_rate =
            std::max(observed_rate, throughput(operation.threads, duration, operation.op));
      }
      std::printf("%-14s %7d %13.0f %13.0f %7.3f\n", operation.name, operation.threads, plain,
                  observed_rate, observed_rate / plain);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_metrics: %s\n", e.what());
    return 1;
  }
}
