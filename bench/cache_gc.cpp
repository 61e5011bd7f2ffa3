// bench/cache-gc: removing 1 000 000 expired rows with the store's gc (batches of
// FOR UPDATE SKIP LOCKED, each its own transaction) against one bare
// `DELETE ... WHERE expires_at < now()`; and the latency of concurrent gets while gc runs
// against the same gets on an idle table. Prints times, p50/p99 and the ratios.
//   bench_cache_gc [URL]   (default: $PGKIT_BENCH_URL, $DATABASE_URL, else a sandbox of its own)
// PGKIT_BENCH_ROWS changes the number of expired rows (default 1000000).

#include <atomic>
#include <cstdint>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "cache_common.hpp"

namespace {

using bench::clock_type;

constexpr int k_live = 10000;

struct latencies {
  std::vector<clock_type::duration> samples;
  double p50 = 0, p99 = 0, max = 0;
  void summarise() {
    p50 = bench::quantile_us(samples, 0.50);
    p99 = bench::quantile_us(samples, 0.99);
    max = bench::quantile_us(samples, 1.0);
  }
};

// Gets random live keys one after another until `stop`, timing each.
latencies read_until(pgkit::cache_store& store, const std::atomic<bool>& stop) {
  latencies result;
  std::uint64_t state = 88172645463325252ULL;
  while (!stop.load()) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    auto started = clock_type::now();
    auto value = store.get("live", "k" + std::to_string(state % k_live + 1));
    result.samples.push_back(clock_type::now() - started);
    if (!value)
      throw std::runtime_error("a live key was a miss");
  }
  result.summarise();
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    bench::server server{argc, argv, "pgkit-bench-cache-gc"};
    long rows = bench::env("PGKIT_BENCH_ROWS").empty() ? 1000000
                                                       : std::stol(bench::env("PGKIT_BENCH_ROWS"));
    bench::cache_schema schema{server.url(), "pgkit_bench_cache_gc"};
    const std::string table = schema.table();
    pqxx::connection admin{server.url()};
    auto sql = [&admin](const std::string& statement) {
      pqxx::nontransaction tx{admin};
      return tx.exec(statement);
    };
    sql("INSERT INTO " + table +
        " (resource_type, key, value, expires_at) SELECT 'live', "
        "'k' || i, decode(repeat('ab', 100), 'hex'), now() + interval '1 day' "
        "FROM generate_series(1, " +
        std::to_string(k_live) + ") AS i");
    // Expired rows with 100-byte values, then VACUUM so that every measurement starts from the
    // same clean table (no dead rows, hint bits set).
    auto fill = [&] {
      sql("INSERT INTO " + table +
          " (resource_type, key, value, expires_at) SELECT 'old', "
          "'k' || i, decode(repeat('ab', 100), 'hex'), now() - interval '1 minute' "
          "FROM generate_series(1, " +
          std::to_string(rows) + ") AS i");
      sql("VACUUM ANALYZE " + table);
    };

    auto config = pgkit::config_from_url(server.url(), "bench");
    config.pool_size = 1;
    pgkit::cache_options options;
    options.schema = schema.name();
    pgkit::cache_store gc_store{std::make_shared<pgkit::pool>(config), options};
    pgkit::cache_store reader{std::make_shared<pgkit::pool>(config), options};

    auto bare_delete = [&] {
      auto started = clock_type::now();
      auto deleted = sql("DELETE FROM " + table + " WHERE expires_at < now()").affected_rows();
      double elapsed = bench::seconds(clock_type::now() - started);
      if (static_cast<long>(deleted) != rows)
        throw std::runtime_error("the bare DELETE deleted " + std::to_string(deleted));
      return elapsed;
    };
    // The cache store's default batch size, named so that the report can print it.
    pgkit::sweep_options settings;
    settings.batch_size = 10000;
    auto run_gc = [&] {
      auto result = gc_store.sweep(settings);
      if (static_cast<long>(result.deleted) != rows)
        throw std::runtime_error("gc deleted " + std::to_string(result.deleted));
      return result;
    };

    std::printf("bench/cache-gc: %ld expired rows (100-byte values) beside %d live ones\n", rows,
                k_live);
    // Two rounds each, alternating; the faster of each is reported. Each round also runs both
    // with the near tier's invalidation trigger disabled, to show what it costs.
    double best_bare = 1e300, best_gc = 1e300, best_bare_untriggered = 1e300,
           best_gc_untriggered = 1e300;
    std::size_t batches = 0;
    for (int round = 0; round < 2; ++round) {
      fill();
      double bare = bare_delete();
      fill();
      auto result = run_gc();
      double gc = bench::seconds(result.elapsed);
      batches = result.batches;
      sql("ALTER TABLE " + table + " DISABLE TRIGGER USER");
      fill();
      double bare_untriggered = bare_delete();
      fill();
      double gc_untriggered = bench::seconds(run_gc().elapsed);
      for (const char* name :
           {"cache_announce_update", "cache_announce_delete", "cache_announce_truncate"})
        sql("ALTER TABLE " + table + " ENABLE ALWAYS TRIGGER " + name);  // as the module has them
      std::printf(
          "  round %d: bare DELETE %.2f s, gc %.2f s (%zu batches of %zu); without the trigger "
          "%.2f s and %.2f s\n",
          round + 1, bare, gc, result.batches, *settings.batch_size, bare_untriggered,
          gc_untriggered);
      best_bare = std::min(best_bare, bare);
      best_gc = std::min(best_gc, gc);
      best_bare_untriggered = std::min(best_bare_untriggered, bare_untriggered);
      best_gc_untriggered = std::min(best_gc_untriggered, gc_untriggered);
    }
    std::printf("%-44s %10.2f (gc), %.2f (bare DELETE)\n", "trigger cost (with / without)",
                best_gc / best_gc_untriggered, best_bare / best_bare_untriggered);
    std::printf("%-44s %10.2f s | %-22s %8.2f s | ratio %.2f\n", "gc (batches of 10 000)", best_gc,
                "one bare DELETE", best_bare, best_gc / best_bare);
    std::printf("%-44s %10.0f rows/s (%zu batches)\n", "gc rate",
                static_cast<double>(rows) / best_gc, batches);

    // Latency of gets: idle, during gc, during the bare DELETE.
    std::atomic<bool> stop{false};
    auto idle_started = clock_type::now();
    std::thread timer{[&stop] {
      std::this_thread::sleep_for(std::chrono::seconds{3});
      stop = true;
    }};
    auto idle = read_until(reader, stop);
    timer.join();
    double idle_seconds = bench::seconds(clock_type::now() - idle_started);

    auto during = [&](auto&& work) {
      fill();
      std::atomic<bool> done{false};
      latencies measured;
      std::thread reading{[&] { measured = read_until(reader, done); }};
      std::this_thread::sleep_for(std::chrono::milliseconds{100});
      work();
      done = true;
      reading.join();
      return measured;
    };
    auto with_gc = during(run_gc);
    auto with_delete = during(bare_delete);

    auto print = [](const char* what, const latencies& l) {
      std::printf("%-30s p50 %8.1f us  p99 %8.1f us  max %9.1f us  (%zu gets)\n", what, l.p50,
                  l.p99, l.max, l.samples.size());
    };
    print("get, idle table", idle);
    print("get, during gc", with_gc);
    print("get, during the bare DELETE", with_delete);
    std::printf("%-44s %10.2f (p99 during gc / p99 idle)\n", "get p99 ratio",
                with_gc.p99 / idle.p99);
    std::printf("%-44s %10.2f (p99 during bare DELETE / p99 idle)\n", "",
                with_delete.p99 / idle.p99);
    std::printf("%-44s %10.0f gets/s idle\n", "",
                static_cast<double>(idle.samples.size()) / idle_seconds);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_cache_gc: " << e.what() << '\n';
    return 1;
  }
}
