// bench/pool: what the pool costs. Prints, side by side with a baseline measured in the same
// run, (1) acquire + release uncontended against a mutex lock/unlock, (2) `SELECT 1` through
// the pool against the same statement on one connection without a pool and against a raw libpq
// loop, (3) contended throughput: 4, 8, 16 and 64 threads over a pool of 4 against 4 threads
// that each own a connection, with the acquire waits (p50, p99, max). The cases of (3) run
// interleaved window by window, and each figure is the median of its windows, so that a noisy
// neighbour hits all of them alike.
//   bench_pool [URL]   (default: $PGKIT_BENCH_URL, $DATABASE_URL, else a throwaway server of its
//   own)
// Environment: PGKIT_BENCH_WINDOWS (5), PGKIT_BENCH_WINDOW_MS (2000), PGKIT_BENCH_QUANTUM_US
// (the pool's handoff_quantum, default the library's), PGKIT_BENCH_PEER=1 to run HikariCP's
// peer program (bench/PoolPeer.java, `scripts/bench pool-peer`) interleaved with these windows,
// PGKIT_BENCH_STRICT=1 to add 8, 16 and 64 threads over a pool with handoff_quantum 0,
// PGKIT_BENCH_COMPARE_US=N to add them over a pool with handoff_quantum N,
// PGKIT_BENCH_THREADS=N to run only N threads over the pool beside the own connections.

#include <libpq-fe.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
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

long env_number(const char* name, long fallback) {
  auto text = bench::env(name);
  return text.empty() ? fallback : std::atol(text.c_str());
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0.0 : values[values.size() / 2];
}

// "850 us", "12.3 ms": waits span four orders of magnitude.
std::string duration_text(std::int64_t ns) {
  char text[32];
  if (ns < 1'000'000)
    std::snprintf(text, sizeof text, "%.0f us", static_cast<double>(ns) / 1e3);
  else
    std::snprintf(text, sizeof text, "%.1f ms", static_cast<double>(ns) / 1e6);
  return text;
}

// One contended case: `threads` threads, through the pool or on their own connections.
struct contended_case {
  contended_case(std::string label, int thread_count, pgkit::pool* through)
      : name(std::move(label)), threads(thread_count), pool(through) {}

  std::string name;
  int threads = 0;
  pgkit::pool* pool = nullptr;      // none: each thread on its own connection
  std::vector<double> rates;        // statements per second, one per window
  std::vector<std::int64_t> waits;  // every acquire's wait, ns, all windows
  std::uint64_t overtakes = 0;
  std::uint64_t handoffs = 0;
  std::uint64_t paired = 0;            // hand-offs to a thread that had the connection last
  std::uint64_t statements = 0;        // all windows
  std::uint64_t context_switches = 0;  // this process's, voluntary and not, all windows
  double cpu_seconds = 0;              // this process's user + system time, all windows
  double idle_share = 0;               // the machine's idle share of each window, summed
};

// The machine's idle and total CPU time so far (/proc/stat, clock ticks).
std::pair<std::uint64_t, std::uint64_t> machine_ticks() {
  std::ifstream stat{"/proc/stat"};
  std::string cpu;
  std::uint64_t value = 0, total = 0, idle = 0;
  stat >> cpu;
  for (int field = 0; field < 8 && stat >> value; ++field) {
    total += value;
    if (field == 3 || field == 4)  // idle, iowait
      idle += value;
  }
  return {idle, total};
}

// This process's context switches (voluntary and not) and CPU time in seconds (user + system)
// so far, all threads.
struct process_usage {
  std::uint64_t context_switches = 0;
  double cpu_seconds = 0;
};

process_usage usage_so_far() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& time) {
    return static_cast<double>(time.tv_sec) + static_cast<double>(time.tv_usec) / 1e6;
  };
  return {static_cast<std::uint64_t>(usage.ru_nvcsw) + static_cast<std::uint64_t>(usage.ru_nivcsw),
          seconds(usage.ru_utime) + seconds(usage.ru_stime)};
}

// Runs one window of `which` and appends its rate and waits.
void run_window(contended_case& which, std::vector<std::unique_ptr<pqxx::connection>>& own,
                std::chrono::milliseconds window) {
  std::atomic<bool> go{false};
  std::atomic<bool> stop{false};
  std::vector<long> done(static_cast<std::size_t>(which.threads), 0);
  std::vector<std::vector<std::int64_t>> waits(static_cast<std::size_t>(which.threads));
  std::vector<std::thread> workers;
  auto before = which.pool != nullptr ? which.pool->stats() : pgkit::pool_stats{};
  auto usage_before = usage_so_far();
  auto ticks_before = machine_ticks();
  for (int t = 0; t < which.threads; ++t) {
    workers.emplace_back([&, t] {
      auto index = static_cast<std::size_t>(t);
      auto& mine = waits[index];
      mine.reserve(200'000);
      while (!go)
        std::this_thread::yield();
      long count = 0;
      if (which.pool != nullptr) {
        while (!stop) {
          auto asked = clock_type::now();
          auto lease = which.pool->acquire();
          mine.push_back(
              std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - asked)
                  .count());
          pqxx::nontransaction tx{*lease};
          tx.exec("SELECT 1");
          ++count;
        }
      } else {
        auto& connection = *own[index];
        while (!stop) {
          pqxx::nontransaction tx{connection};
          tx.exec("SELECT 1");
          ++count;
        }
      }
      done[index] = count;
    });
  }
  auto started = clock_type::now();
  go = true;
  std::this_thread::sleep_for(window);
  stop = true;
  auto elapsed = std::chrono::duration<double>(clock_type::now() - started).count();
  for (auto& worker : workers)
    worker.join();
  long total = 0;
  for (auto count : done)
    total += count;
  which.rates.push_back(static_cast<double>(total) / elapsed);
  which.statements += static_cast<std::uint64_t>(total);
  auto usage_after = usage_so_far();
  which.context_switches += usage_after.context_switches - usage_before.context_switches;
  which.cpu_seconds += usage_after.cpu_seconds - usage_before.cpu_seconds;
  auto ticks_after = machine_ticks();
  auto total_ticks = ticks_after.second - ticks_before.second;
  if (total_ticks > 0) {
    which.idle_share += static_cast<double>(ticks_after.first - ticks_before.first) /
                        static_cast<double>(total_ticks);
  }
  for (auto& mine : waits)
    which.waits.insert(which.waits.end(), mine.begin(), mine.end());
  if (which.pool != nullptr) {
    auto after = which.pool->stats();
    which.overtakes += after.overtakes - before.overtakes;
    which.handoffs += after.handoffs - before.handoffs;
    which.paired += after.paired_handoffs - before.paired_handoffs;
  }
}

// The HikariCP peer: bench/PoolPeer.java, driven round by round through its stdin so that its
// windows interleave with ours. Empty when PGKIT_BENCH_PEER is not set or java cannot start.
class peer_process {
 public:
  peer_process(const std::string& url, long window_ms) {
    auto classpath = bench::env("PGKIT_BENCH_PEER_CLASSPATH");
    if (bench::env("PGKIT_BENCH_PEER") != "1" || classpath.empty())
      return;
    int to_child[2];
    int from_child[2];
    if (::pipe(to_child) != 0 || ::pipe(from_child) != 0)
      return;
    std::string source = std::string{PGKIT_BENCH_SOURCE_DIR} + "/bench/PoolPeer.java";
    std::string window = std::to_string(window_ms);
    m_pid = ::fork();
    if (m_pid == 0) {
      ::dup2(to_child[0], 0);
      ::dup2(from_child[1], 1);
      ::close(to_child[1]);
      ::close(from_child[0]);
      ::execlp("java", "java", "-cp", classpath.c_str(), source.c_str(), url.c_str(),
               window.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    m_in = ::fdopen(to_child[1], "w");
    m_out = ::fdopen(from_child[0], "r");
    m_ready = read_line() == "ready";
  }
  ~peer_process() {
    if (m_in != nullptr)
      std::fclose(m_in);
    if (m_out != nullptr)
      std::fclose(m_out);
    if (m_pid > 0)
      ::waitpid(m_pid, nullptr, 0);
  }
  peer_process(const peer_process&) = delete;
  peer_process& operator=(const peer_process&) = delete;

  explicit operator bool() const { return m_ready; }

  // Runs the peer's window of case `index`; returns once it is over.
  void window(std::size_t index) { command("window " + std::to_string(index)); }
  // Returns the peer's table.
  std::string table() {
    command("table");
    std::string text;
    for (std::string line = read_line(); !line.empty() && line != "end"; line = read_line())
      text += line + "\n";
    return text;
  }

 private:
  void command(const std::string& line) {
    if (!m_ready)
      return;
    std::fprintf(m_in, "%s\n", line.c_str());
    std::fflush(m_in);
    if (line != "table")
      m_ready = read_line() == "ok";
  }
  std::string read_line() {
    char buffer[512];
    if (m_out == nullptr || std::fgets(buffer, sizeof buffer, m_out) == nullptr)
      return "";
    std::string line = buffer;
    while (!line.empty() && line.back() == '\n')
      line.pop_back();
    return line;
  }

  pid_t m_pid = -1;
  std::FILE* m_in = nullptr;
  std::FILE* m_out = nullptr;
  bool m_ready = false;
};

}  // namespace

int main(int argc, char** argv) {
  bench::server server{argc, argv, "pgkit-bench-pool"};
  const std::string& url = server.url();
  int status = 0;
  try {
    auto config = pgkit::config_from_url(url, "bench");
    config.pool_size = 4;
    config.acquire_timeout = std::chrono::seconds{60};
    if (auto quantum = env_number("PGKIT_BENCH_QUANTUM_US", -1); quantum >= 0)
      config.handoff_quantum = std::chrono::microseconds{quantum};
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
    single.reset();

    std::printf("pgkit pool benchmark against %s (pool_size 4)\n", config.describe().c_str());
    row("acquire + release, uncontended", acquire_ns, "2x mutex lock/unlock", mutex_ns, "ns");
    row("SELECT 1 through the pool", pooled_ns, "SELECT 1, one connection", single_ns, "ns");
    row("SELECT 1 through the pool", pooled_ns, "SELECT 1, raw libpq", raw_ns, "ns");
    std::printf(
        "pool overhead on a SELECT 1 round trip: %+.1f %% against the same libpqxx calls "
        "on one connection (target: under 5 %%)\n",
        (pooled_ns / single_ns - 1.0) * 100.0);
    std::printf(
        "the pool's own work (acquire + release) is %.2f %% of a raw libpq round trip; "
        "the rest of the gap to raw libpq is libpqxx's transaction and result objects\n",
        acquire_ns / raw_ns * 100.0);
    std::fflush(stdout);

    // 3. Contended throughput, interleaved window by window (the order rotates each round).
    auto windows = env_number("PGKIT_BENCH_WINDOWS", 5);
    auto window = std::chrono::milliseconds{env_number("PGKIT_BENCH_WINDOW_MS", 2000)};
    std::vector<contended_case> cases{{"4 own connections", 4, nullptr},
                                      {"4 over a pool of 4", 4, &pool},
                                      {"8 over a pool of 4", 8, &pool},
                                      {"16 over a pool of 4", 16, &pool},
                                      {"64 over a pool of 4", 64, &pool}};
    // PGKIT_BENCH_THREADS=N: only N threads over the pool (beside the own connections), for a
    // profiler to look at one case.
    if (auto only = env_number("PGKIT_BENCH_THREADS", 0); only > 0) {
      cases.erase(
          std::remove_if(cases.begin() + 1, cases.end(),
                         [&](const contended_case& which) { return which.threads != only; }),
          cases.end());
    }
    // PGKIT_BENCH_STRICT=1: the same over a pool with handoff_quantum 0 (strict hand-over, every
    // connection given back goes to the head of the queue), as the pool was before the slice.
    // PGKIT_BENCH_COMPARE_US=N: the same over a pool with handoff_quantum N, to compare two
    // slices in one run.
    std::optional<pgkit::pool> other;
    auto compare_us =
        bench::env("PGKIT_BENCH_STRICT") == "1" ? 0L : env_number("PGKIT_BENCH_COMPARE_US", -1);
    if (compare_us >= 0) {
      auto other_config = config;
      other_config.handoff_quantum = std::chrono::microseconds{compare_us};
      other.emplace(other_config);
      other->warm_up();
      auto suffix = compare_us == 0 ? std::string{"strict"} : std::to_string(compare_us) + " us";
      for (int threads : {8, 16, 64})
        cases.emplace_back(std::to_string(threads) + " over 4, " + suffix, threads, &*other);
    }
    std::vector<std::unique_ptr<pqxx::connection>> own;
    for (int i = 0; i < 4; ++i)
      own.push_back(pgkit::connect(config));
    peer_process peer{url, window.count()};
    constexpr std::size_t k_peer_cases = 5;  // the peer runs the first five cases
    for (long round = 0; round < windows; ++round) {
      for (std::size_t i = 0; i < cases.size(); ++i) {
        auto index = (i + static_cast<std::size_t>(round)) % cases.size();
        run_window(cases[index], own, window);
        if (peer && index < k_peer_cases)
          peer.window(index);
      }
    }
    own.clear();

    double owned_rate = median(cases[0].rates);
    auto quantum_us = config.handoff_quantum.count();
    std::printf(
        "\ncontended: SELECT 1, pool of 4 (handoff_quantum %lld us), median of %ld windows of "
        "%.1f s, interleaved; ratio against 4 threads on their own connections\n",
        static_cast<long long>(quantum_us), windows, std::chrono::duration<double>(window).count());
    std::printf("%-22s %10s %7s %10s %10s %10s %10s %10s %10s %7s %8s %9s %6s\n", "pgkit", "stmt/s",
                "ratio", "per round", "wait p50", "wait p99", "wait max", "overtakes", "hand-offs",
                "paired", "cs/stmt", "cpu/stmt", "idle");
    for (auto& which : cases) {
      double rate = median(which.rates);
      // The spread of the ratio round by round (this case's window against the own-connection
      // window of the same round): the noise that the median smooths over.
      double lowest = 0, highest = 0;
      for (std::size_t round = 0; round < which.rates.size(); ++round) {
        double ratio = which.rates[round] / cases[0].rates[round];
        lowest = round == 0 ? ratio : std::min(lowest, ratio);
        highest = round == 0 ? ratio : std::max(highest, ratio);
      }
      char spread[32];
      std::snprintf(spread, sizeof spread, "%.2f-%.2f", lowest, highest);
      std::string p50 = "-", p99 = "-", most = "-";
      if (!which.waits.empty()) {
        std::sort(which.waits.begin(), which.waits.end());
        auto at = [&](double fraction) {
          return which.waits[static_cast<std::size_t>(fraction *
                                                      static_cast<double>(which.waits.size() - 1))];
        };
        p50 = duration_text(at(0.50));
        p99 = duration_text(at(0.99));
        most = duration_text(which.waits.back());
      }
      std::printf(
          "%-22s %10.0f %7.2f %10s %10s %10s %10s %10llu %10llu %6.0f%% %8.2f %6.1f us %5.0f%%\n",
          which.name.c_str(), rate, rate / owned_rate, spread, p50.c_str(), p99.c_str(),
          most.c_str(), static_cast<unsigned long long>(which.overtakes),
          static_cast<unsigned long long>(which.handoffs),
          100.0 * static_cast<double>(which.paired) /
              static_cast<double>(std::max<std::uint64_t>(which.handoffs, 1)),
          static_cast<double>(which.context_switches) /
              static_cast<double>(std::max<std::uint64_t>(which.statements, 1)),
          which.cpu_seconds * 1e6 /
              static_cast<double>(std::max<std::uint64_t>(which.statements, 1)),
          100.0 * which.idle_share /
              static_cast<double>(std::max<std::size_t>(which.rates.size(), 1)));
    }
    if (peer)
      std::printf("\n%s", peer.table().c_str());
    else if (bench::env("PGKIT_BENCH_PEER") == "1")
      std::printf("\nHikariCP peer: skipped (java or its jars did not start)\n");
    auto stats = pool.stats();
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
