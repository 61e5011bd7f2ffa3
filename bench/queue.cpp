// bench/queue: pgkit's job queue beside graphile-worker and pg-boss on one server.
//   bench_queue [URL] [--sustained SECONDS] [--hold-xmin SECONDS] [--every SECONDS]
//               [--sustained-only] [--no-cursor]
// Prints jobs/s for single enqueues, enqueue_many (1000 per call) and enqueue+work of no-op
// jobs at 1 and 8 worker threads, for pgkit and (when node and scripts/bootstrap's npm modules
// are present) for graphile-worker and pg-boss with the same job counts (bench/queue_peers.js),
// with the ratio to the faster peer, and the machine's load average before and after.
// With --sustained, a producer keeps about 10 000 jobs due while 8 threads claim 10 at a time
// and complete them in one statement, for that long; every --every seconds (default 60, or 10
// for runs shorter than 5 minutes) a line gives throughput, claim latency p50/p99 and
// n_dead_tup of queue_job. With --hold-xmin, the same run follows with another session
// holding a transaction open (pinning the xmin horizon) for that long in its middle, and the
// two runs' throughputs are compared over the whole run and over the held window. The
// sustained claimers share a claim_cursor, as a queue_worker's threads do; --no-cursor makes
// them walk from each queue's start every time (how claims ran before the cursor), to compare.
// --sustained-only skips the comparison with the peers.

#include <pqxx/pqxx>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
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
bool g_cursor = true;  // --no-cursor: the sustained claimers walk from the start each time

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

std::string load_average() {
  std::ifstream in{"/proc/loadavg"};
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

// One sustained run's throughput: over all of it, and over the window [from, to) seconds.
struct sustained_result {
  double overall = 0;
  double window = 0;
};

// The window starts `window_from` seconds in and lasts `window_seconds`; with `hold`, another
// session holds a transaction open during it.
sustained_result sustained(const std::string& url, pgkit::queue_store& store, double run_seconds,
                           double every, double window_from, double window_seconds, bool hold) {
  std::atomic<bool> done{false};
  std::mutex mutex;
  std::vector<double> latencies;
  std::vector<double> completions;  // ms per complete() of a claimed batch
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> enqueued{0};
  // Keeps about 10 000 jobs due, so the claimers always find work and the table does not grow
  // a backlog that would slow the claim by itself.
  std::thread producer([&] {
    while (!done) {
      if (enqueued.load() - completed.load() > 10000) {
        std::this_thread::sleep_for(std::chrono::milliseconds{2});
        continue;
      }
      std::vector<pgkit::job_request> batch(1000, pgkit::job_request{"steady", "", {}});
      store.enqueue_many(batch);
      enqueued += batch.size();
    }
  });
  std::vector<std::thread> workers;
  pgkit::claim_cursor cursor;  // shared by the threads, as a queue_worker's are
  for (int i = 0; i < 8; ++i) {
    workers.emplace_back([&, i] {
      auto name = "bench-" + std::to_string(i);
      while (!done) {
        auto started = clock_type::now();
        auto jobs = g_cursor ? store.claim({"steady"}, 10, name, cursor)
                             : store.claim({"steady"}, 10, name);
        auto took = seconds_since(started) * 1000;
        {
          std::lock_guard<std::mutex> guard{mutex};
          latencies.push_back(took);
        }
        started = clock_type::now();
        completed += store.complete(jobs);
        took = seconds_since(started) * 1000;
        {
          std::lock_guard<std::mutex> guard{mutex};
          completions.push_back(took);
        }
        if (jobs.empty())
          std::this_thread::sleep_for(std::chrono::milliseconds{5});
      }
    });
  }
  std::thread holder;
  std::atomic<bool> release{false};
  auto started = clock_type::now();
  std::uint64_t last_completed = 0;
  std::uint64_t window_start = 0;
  std::uint64_t window_end = 0;
  bool window_opened = false;
  bool window_closed = false;
  auto at_time = [&](double at) {
    return started +
           std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(at));
  };
  for (double at = every; at <= run_seconds + 0.001; at += every) {
    // The hold starts and ends on a line's boundary, so the window's figures are its own.
    std::this_thread::sleep_until(at_time(at - every));
    if (!window_opened && at - every >= window_from - 0.001) {
      window_opened = true;
      window_start = completed.load();
      if (hold) {
        holder = std::thread([&] {
          pqxx::connection pin{url};
          pqxx::work tx{pin};
          tx.exec("SELECT txid_current()");
          while (!release)
            std::this_thread::sleep_for(std::chrono::milliseconds{100});
        });
      }
    }
    if (window_opened && !window_closed && at - every >= window_from + window_seconds - 0.001) {
      window_closed = true;
      window_end = completed.load();
      release = true;
    }
    std::this_thread::sleep_until(at_time(at));
    std::vector<double> window, completing;
    {
      std::lock_guard<std::mutex> guard{mutex};
      window.swap(latencies);
      completing.swap(completions);
    }
    std::sort(window.begin(), window.end());
    std::sort(completing.begin(), completing.end());
    auto pick_of = [&](const std::vector<double>& sorted, double q) {
      return sorted.empty()
                 ? 0.0
                 : sorted[static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1))];
    };
    auto pick = [&](double q) { return pick_of(window, q); };
    auto now_completed = completed.load();
    std::printf(
        "t=%4.0fs  %8.0f jobs/s  claim p50 %6.2f ms  p99 %7.2f ms  complete p50 %6.2f ms  "
        "%s%s\n",
        at, static_cast<double>(now_completed - last_completed) / every, pick(0.5), pick(0.99),
        pick_of(completing, 0.5), dead_tuples(url).c_str(),
        holder.joinable() && !release ? "  (xmin held)" : "");
    std::fflush(stdout);
    last_completed = now_completed;
  }
  if (!window_closed)
    window_end = completed.load();
  done = true;
  release = true;
  producer.join();
  for (auto& worker : workers)
    worker.join();
  if (holder.joinable())
    holder.join();
  sustained_result result;
  result.overall = static_cast<double>(last_completed) / run_seconds;
  result.window = static_cast<double>(window_end - window_start) / window_seconds;
  return result;
}

// graphile-worker's and pg-boss's figures from bench/queue_peers.js, by peer then measure; none
// without node or the modules.
std::map<std::string, std::map<std::string, double>> run_peers(const std::string& url, int singles,
                                                               int batches, int more) {
  std::string modules = std::string{PGKIT_BENCH_SOURCE_DIR} + "/build/tools/node_modules";
  std::map<std::string, std::map<std::string, double>> peers;
  if (!std::filesystem::exists(modules + "/graphile-worker") ||
      !std::filesystem::exists(modules + "/pg-boss") ||
      bench::run_script("command -v node").empty()) {
    std::printf(
        "graphile-worker, pg-boss: skipped (needs node and scripts/bootstrap's npm "
        "modules)\n");
    return peers;
  }
  auto output =
      bench::run_script("NODE_PATH='" + modules + "' node '" + PGKIT_BENCH_SOURCE_DIR +
                        "/bench/queue_peers.js' '" + url + "' " + std::to_string(singles) + " " +
                        std::to_string(batches) + " " + std::to_string(more));
  std::istringstream lines{output};
  std::string line;
  while (std::getline(lines, line)) {
    // {"peer":"pg-boss","enqueue":123.4,"enqueue_many":...,"work_1":...,"work_8":...}
    auto at = line.find("\"peer\":\"");
    if (at == std::string::npos)
      continue;
    auto name = line.substr(at + 8, line.find('"', at + 8) - at - 8);
    for (const char* measure : {"enqueue", "enqueue_many", "work_1", "work_8"}) {
      auto key = "\"" + std::string{measure} + "\":";
      auto found = line.find(key);
      if (found != std::string::npos)
        peers[name][measure] = std::atof(line.c_str() + found + key.size());
    }
  }
  if (peers.empty())
    std::printf("graphile-worker, pg-boss: bench/queue_peers.js printed nothing usable\n");
  return peers;
}

// One job per call, 1000 per call, and enqueue+work at 1 and 8 threads, beside the peers.
void compare_with_peers(const std::string& url, pgkit::queue_store& store) {
  constexpr int singles = 5000;
  constexpr int batches = 10;
  constexpr int more = 20000;
  std::map<std::string, double> ours;
  auto started = clock_type::now();
  for (int i = 0; i < singles; ++i)
    store.enqueue("noop", "");
  ours["enqueue"] = singles / seconds_since(started);
  started = clock_type::now();
  for (int i = 0; i < batches; ++i) {
    std::vector<pgkit::job_request> batch(1000, pgkit::job_request{"noop", "", {}});
    store.enqueue_many(batch);
  }
  ours["enqueue_many"] = batches * 1000 / seconds_since(started);
  ours["work_1"] = work_all(store, 1);
  std::vector<pgkit::job_request> extra(more, pgkit::job_request{"noop", "", {}});
  store.enqueue_many(extra);
  ours["work_8"] = work_all(store, 8);
  auto peers = run_peers(url, singles, batches, more);

  std::printf("\n%-36s %10s %16s %10s %8s\n", "jobs/s", "pgkit", "graphile-worker", "pg-boss",
              "ratio");
  const std::pair<const char*, const char*> rows[] = {
      {"enqueue", "enqueue, one job per call"},
      {"enqueue_many", "enqueue many, 1000 per call"},
      {"work_1", "work no-op jobs, 1 worker thread"},
      {"work_8", "work no-op jobs, 8 worker threads"}};
  for (const auto& [key, label] : rows) {
    auto peer = [&](const char* name) {
      auto found = peers.find(name);
      return found == peers.end() || found->second.count(key) == 0 ? 0.0 : found->second.at(key);
    };
    double graphile = peer("graphile-worker");
    double boss = peer("pg-boss");
    double faster = std::max(graphile, boss);
    std::printf("%-36s %10.0f %16.0f %10.0f %7.2fx\n", label, ours[key], graphile, boss,
                faster > 0 ? ours[key] / faster : 0.0);
  }
  std::printf(
      "(ratio: pgkit / the faster peer; %d single enqueues, %d x 1000 in batches, "
      "work at 1 thread drains those %d, at 8 threads %d more)\n",
      singles, batches, singles + batches * 1000, more);
  std::printf("load average after: %s\n", load_average().c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  double run_seconds = 0;
  double hold_seconds = 0;
  double every = 0;
  bool sustained_only = false;
  std::vector<char*> positional{argv[0]};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--sustained" && i + 1 < argc)
      run_seconds = std::stod(argv[++i]);
    else if (arg == "--hold-xmin" && i + 1 < argc)
      hold_seconds = std::stod(argv[++i]);
    else if (arg == "--every" && i + 1 < argc)
      every = std::stod(argv[++i]);
    else if (arg == "--no-cursor")
      g_cursor = false;
    else if (arg == "--sustained-only")
      sustained_only = true;
    else
      positional.push_back(argv[i]);
  }
  if (every <= 0)
    every = run_seconds >= 300 ? 60 : 10;
  try {
    bench::server server{static_cast<int>(positional.size()), positional.data(), "bench-queue"};
    std::printf("load average before: %s\n", load_average().c_str());
    reset(server.url());
    auto config = pgkit::config_from_url(server.url(), "bench");
    config.pool_size = 16;
    config.schema = k_schema;
    auto pool = std::make_shared<pgkit::pool>(config);
    pgkit::queue_store store{pool};

    if (!sustained_only)
      compare_with_peers(server.url(), store);

    if (run_seconds > 0) {
      double hold_from = std::floor((run_seconds - hold_seconds) / 2 / every) * every;
      reset(server.url());
      std::printf("\nsustained, %.0f s, no xmin held%s:\n", run_seconds,
                  g_cursor ? "" : " (no claim cursor)");
      auto free_run = sustained(server.url(), store, run_seconds, every, hold_from,
                                hold_seconds > 0 ? hold_seconds : every, false);
      if (hold_seconds > 0) {
        reset(server.url());
        std::printf("\nsustained, %.0f s, xmin held from t=%.0fs for %.0f s:\n", run_seconds,
                    hold_from, hold_seconds);
        auto held =
            sustained(server.url(), store, run_seconds, every, hold_from, hold_seconds, true);
        std::printf(
            "\nheld / free: %.2fx over the whole run (%.0f / %.0f jobs/s), %.2fx over "
            "the held window (%.0f / %.0f jobs/s)\n",
            held.overall / free_run.overall, held.overall, free_run.overall,
            held.window / free_run.window, held.window, free_run.window);
      }
      std::printf("load average after: %s\n", load_average().c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_queue: %s\n", e.what());
    return 1;
  }
}
