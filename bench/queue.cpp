// bench/queue: pgkit's job queue on one server.
//   bench_queue [URL] [--sustained SECONDS] [--hold-xmin SECONDS]
// Prints jobs/s for single enqueues, enqueue_many, and enqueue+work of no-op jobs at 1 and 8
// worker threads. With --sustained, a producer and 8 claiming threads run for that long and
// every 10 s a line gives claim latency p50/p99, throughput and n_dead_tup of queue_job; with
// --hold-xmin, another session holds a transaction open (pinning the xmin horizon) for that
// long in the middle of the run. Peers (graphile-worker, pg-boss) are not run yet.

#include <pqxx/pqxx>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pgkit/migration.hpp"
#include "pgkit/pool.hpp"
#include "pgkit/queue.hpp"
#include "support.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
const char* const k_schema = "bench_queue";

double seconds_since(clock_type::time_point started) {
  return std::chrono::duration<double>(clock_type::now() - started).count();
}

void reset(const std::string& url) {
  pqxx::connection admin{url};
  pqxx::nontransaction{admin}.exec(std::string{"DROP SCHEMA IF EXISTS "} + k_schema + " CASCADE");
  pgkit::apply_modules(admin, {"queue"}, k_schema);
}

std::string dead_tuples(const std::string& url) {
  pqxx::connection admin{url};
  pqxx::nontransaction tx{admin};
  auto row = tx.exec(std::string{"SELECT n_dead_tup, n_live_tup FROM pg_stat_user_tables "
                                 "WHERE schemaname = '"} +
                     k_schema + "' AND relname = 'queue_job'")[0];
  return row[0].as<std::string>() + " dead / " + row[1].as<std::string>() + " live";
}

double work_all(pgkit::queue_store& store, std::size_t threads) {
  pgkit::queue_worker_options options;
  options.threads = threads;
  options.batch_size = 10;
  pgkit::queue_worker worker{store, options};
  worker.handle("noop", [](const pgkit::job&) {});
  auto started = clock_type::now();
  auto ran = worker.run_until_empty();
  return static_cast<double>(ran) / seconds_since(started);
}

void sustained(const std::string& url, pgkit::queue_store& store, double run_seconds,
               double hold_seconds) {
  std::atomic<bool> done{false};
  std::mutex mutex;
  std::vector<double> latencies;
  std::atomic<std::uint64_t> completed{0};
  std::thread producer([&] {
    while (!done) {
      std::vector<pgkit::job_request> batch(100, pgkit::job_request{"steady", "", {}});
      store.enqueue_many(batch);
    }
  });
  std::vector<std::thread> workers;
  for (int i = 0; i < 8; ++i) {
    workers.emplace_back([&, i] {
      auto name = "bench-" + std::to_string(i);
      while (!done) {
        auto started = clock_type::now();
        auto jobs = store.claim({"steady"}, 10, name);
        auto took = seconds_since(started) * 1000;
        {
          std::lock_guard<std::mutex> guard{mutex};
          latencies.push_back(took);
        }
        for (const auto& job : jobs) {
          store.complete(job);
          ++completed;
        }
        if (jobs.empty())
          std::this_thread::sleep_for(std::chrono::milliseconds{5});
      }
    });
  }
  std::thread holder;
  std::atomic<bool> release{false};
  double hold_from = (run_seconds - hold_seconds) / 2;
  auto started = clock_type::now();
  std::uint64_t last_completed = 0;
  for (double at = 10; at <= run_seconds + 0.001; at += 10) {
    std::this_thread::sleep_until(started + std::chrono::duration_cast<clock_type::duration>(
                                                std::chrono::duration<double>(at)));
    if (hold_seconds > 0 && !holder.joinable() && at > hold_from) {
      holder = std::thread([&] {
        pqxx::connection pin{url};
        pqxx::work tx{pin};
        tx.exec("SELECT txid_current()");
        while (!release)
          std::this_thread::sleep_for(std::chrono::milliseconds{100});
      });
    }
    if (holder.joinable() && at > hold_from + hold_seconds)
      release = true;
    std::vector<double> window;
    {
      std::lock_guard<std::mutex> guard{mutex};
      window.swap(latencies);
    }
    std::sort(window.begin(), window.end());
    auto pick = [&](double q) {
      return window.empty()
                 ? 0.0
                 : window[static_cast<std::size_t>(q * static_cast<double>(window.size() - 1))];
    };
    auto now_completed = completed.load();
    std::printf("t=%4.0fs  %8.0f jobs/s  claim p50 %6.2f ms  p99 %7.2f ms  %s%s\n", at,
                static_cast<double>(now_completed - last_completed) / 10, pick(0.5), pick(0.99),
                dead_tuples(url).c_str(), holder.joinable() && !release ? "  (xmin held)" : "");
    std::fflush(stdout);
    last_completed = now_completed;
  }
  done = true;
  release = true;
  producer.join();
  for (auto& worker : workers)
    worker.join();
  if (holder.joinable())
    holder.join();
}

}  // namespace

int main(int argc, char** argv) {
  double run_seconds = 0;
  double hold_seconds = 0;
  std::vector<char*> positional{argv[0]};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--sustained" && i + 1 < argc)
      run_seconds = std::stod(argv[++i]);
    else if (arg == "--hold-xmin" && i + 1 < argc)
      hold_seconds = std::stod(argv[++i]);
    else
      positional.push_back(argv[i]);
  }
  try {
    bench::server server{static_cast<int>(positional.size()), positional.data(), "bench-queue"};
    reset(server.url());
    auto config = pgkit::config_from_url(server.url(), "bench");
    config.pool_size = 16;
    config.schema = k_schema;
    auto pool = std::make_shared<pgkit::pool>(config);
    pgkit::queue_store store{pool};

    constexpr int singles = 5000;
    auto started = clock_type::now();
    for (int i = 0; i < singles; ++i)
      store.enqueue("noop", "");
    std::printf("enqueue, one job per call:      %8.0f jobs/s\n", singles / seconds_since(started));
    constexpr int batches = 10;
    started = clock_type::now();
    for (int i = 0; i < batches; ++i) {
      std::vector<pgkit::job_request> batch(1000, pgkit::job_request{"noop", "", {}});
      store.enqueue_many(batch);
    }
    std::printf("enqueue_many, 1000 per call:    %8.0f jobs/s\n",
                batches * 1000 / seconds_since(started));
    std::printf("work no-op jobs, 1 thread:      %8.0f jobs/s (%d jobs)\n", work_all(store, 1),
                singles + batches * 1000);
    std::vector<pgkit::job_request> more(20000, pgkit::job_request{"noop", "", {}});
    store.enqueue_many(more);
    std::printf("work no-op jobs, 8 threads:     %8.0f jobs/s\n", work_all(store, 8));
    if (run_seconds > 0)
      sustained(server.url(), store, run_seconds, hold_seconds);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_queue: %s\n", e.what());
    return 1;
  }
}
