// Concurrent writers, readers and gc runs on one cache: nobody fails, nobody deadlocks, live
// entries keep their last value, and once everyone is done gc leaves nothing expired. Also run
// under ThreadSanitizer (`ctest -L tsan`).

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <pqxx/pqxx>

#include "harness.hpp"
#include "pgkit/cache.hpp"
#include "pgkit/migration.hpp"
#include "pgkit/pool.hpp"

using namespace std::chrono_literals;

namespace {

// A pool of `size` connections on `db`, with the cache module applied there.
std::shared_ptr<pgkit::pool> cache_pool(const pgkit_test::scratch_database& db, std::size_t size) {
  {
    pqxx::connection connection{db.url()};
    pgkit::apply_modules(connection, {"cache"});
  }
  auto config = pgkit::config_from_url(db.url(), "test");
  config.pool_size = size;
  return std::make_shared<pgkit::pool>(config);
}

}  // namespace

TEST_CASE("pgkit::cache_store under concurrent writers, readers and gc") {
  pgkit_test::scratch_database db{"cache_concurrency"};
  pgkit::cache_store store{cache_pool(db, 8)};

  constexpr int k_writers = 4;
  constexpr int k_rounds = 150;
  constexpr int k_keys = 40;
  std::atomic<bool> writing{true};
  std::atomic<int> failures{0};
  std::atomic<std::size_t> gc_deleted{0};
  std::vector<std::thread> threads;

  // Each writer owns keys "w<n>-<k>": it rewrites them with a long ttl, and writes short-lived
  // entries ("tmp") that expire at once and some that expire while the test runs, over shared
  // keys, so that gc, readers' purges and upserts meet on the same rows.
  for (int w = 0; w < k_writers; ++w) {
    threads.emplace_back([&, w] {
      try {
        for (int round = 0; round < k_rounds; ++round) {
          std::vector<std::pair<std::string, std::string>> batch;
          for (int k = 0; k < k_keys; k += 4)
            batch.emplace_back("w" + std::to_string(w) + "-" + std::to_string(k),
                               std::to_string(round));
          store.set_many("live", batch, 1h);
          store.set("live", "w" + std::to_string(w) + "-1", std::to_string(round), 1h);
          store.set("tmp", "shared-" + std::to_string(round % 10), "x", 0ms);
          store.set_many("tmp", {{"s1", "a"}, {"s2", "b"}, {"s3", "c"}}, 5ms);
          store.get_many("tmp", {"s1", "s2", "s3", "shared-1"});
          store.get("tmp", "shared-" + std::to_string((round + 5) % 10));
        }
      } catch (const std::exception& e) {
        MESSAGE("writer failed: " << e.what());
        ++failures;
      }
    });
  }
  pgkit::sweep_options small_batches;
  small_batches.batch_size = 7;
  for (int g = 0; g < 2; ++g) {
    threads.emplace_back([&] {
      try {
        while (writing) {
          gc_deleted += store.sweep(small_batches).deleted;
          std::this_thread::sleep_for(1ms);
        }
      } catch (const std::exception& e) {
        MESSAGE("gc failed: " << e.what());
        ++failures;
      }
    });
  }
  for (int w = 0; w < k_writers; ++w)
    threads[static_cast<std::size_t>(w)].join();
  writing = false;
  for (std::size_t t = k_writers; t < threads.size(); ++t)
    threads[t].join();

  CHECK(failures == 0);
  CHECK(gc_deleted > 0);
  for (int w = 0; w < k_writers; ++w) {
    for (int k = 0; k < k_keys; k += 4) {
      auto value = store.get("live", "w" + std::to_string(w) + "-" + std::to_string(k));
      CHECK(value == std::optional<std::string>{std::to_string(k_rounds - 1)});
    }
  }
  std::this_thread::sleep_for(20ms);
  store.sweep();
  CHECK(store.count_expired() == 0);
  CHECK(pgkit_test::query_value(db.url(),
                                "SELECT count(*) FROM pgkit.cache WHERE resource_type "
                                "= 'live'") == std::to_string(k_writers * 11));
}

// The near tier's readers mostly read without the shard's lock (a slot per thread); fills,
// evictions (a tier far smaller than the keys read), invalidations from the writer and from
// the listener's thread all change the shards meanwhile. Under ThreadSanitizer this is the test
// of that protocol; everywhere, every read after the writes must see the last value.
TEST_CASE("pgkit::cache_store near tier under readers, writers, fills and evictions") {
  pgkit_test::scratch_database db{"near_concurrency"};
  pgkit::cache_options options;
  options.near.emplace();
  options.near->max_entries = 64;  // four shards of 16 entries
  pgkit::cache_store store{cache_pool(db, 6), options};

  constexpr int k_keys = 80;
  constexpr int k_rounds = 12;
  auto key_of = [](int k) { return "k" + std::to_string(k); };
  for (int k = 0; k < k_keys; ++k)
    store.set("page", key_of(k), "0", pgkit::never_expires);
  std::atomic<bool> writing{true};
  std::atomic<int> failures{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      try {
        for (int i = t; writing.load(); ++i) {
          if (i % 16 == 0) {
            store.get_many("page", {key_of(i % k_keys), key_of((i + 1) % k_keys)});
          } else if (!store.get("page", key_of(i % k_keys))) {
            MESSAGE("a live key was missing");
            ++failures;
          }
        }
      } catch (const std::exception& e) {
        MESSAGE("reader failed: " << e.what());
        ++failures;
      }
    });
  }
  for (int round = 1; round <= k_rounds; ++round) {
    for (int k = 0; k < k_keys; ++k)
      store.set("page", key_of(k), std::to_string(round), pgkit::never_expires);
  }
  writing = false;
  for (auto& reader : readers)
    reader.join();

  CHECK(failures == 0);
  for (int k = 0; k < k_keys; ++k) {
    CHECK(store.get("page", key_of(k)) == std::optional<std::string>{std::to_string(k_rounds)});
    CHECK(store.get("page", key_of(k)) == std::optional<std::string>{std::to_string(k_rounds)});
  }
  auto stats = store.near_statistics();
  CHECK(stats.hits > 0);
  CHECK(stats.entries <= 64);
}
