// The near tier of pgkit::cache_store with two processes on one database: this test is one, and
// near_cache_child (driven over its stdin and stdout) is the other. What a user must be able to
// rely on: no stale value after an invalidation arrives, nothing invalidated by a rollback,
// plain SQL writes seen, a flush after every listener outage, and the capacity bounds.

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <pqxx/pqxx>

#include "child_process.hpp"
#include "harness.hpp"
#include "pgkit/cache.hpp"
#include "pgkit/error.hpp"
#include "pgkit/listener.hpp"
#include "pgkit/migration.hpp"
#include "pgkit/pool.hpp"
#include "stores/near_cache.hpp"

using namespace std::chrono_literals;
using pgkit_test::eventually;
using pgkit_test::query_value;

namespace {

std::shared_ptr<pgkit::pool> pool_on(const std::string& url) {
  auto config = pgkit::config_from_url(url, "test");
  config.pool_size = 2;
  return std::make_shared<pgkit::pool>(config);
}

pgkit::cache_options near_on(std::size_t max_entries = 10000,
                             std::size_t max_bytes = 64 * 1024 * 1024) {
  pgkit::cache_options options;
  options.near.emplace();
  options.near->max_entries = max_entries;
  options.near->max_bytes = max_bytes;
  return options;
}

void run_sql(const std::string& url, const std::string& sql) {
  pqxx::connection connection{url};
  pqxx::nontransaction tx{connection};
  tx.exec(sql);
}

// The other process: a near_cache_child on `url`.
class other_process {
 public:
  explicit other_process(const std::string& url) : m_child({PGKIT_NEAR_CHILD, url}) {
    auto first = m_child.read_line(30s);
    INFO("stderr: " << m_child.err());
    REQUIRE(first == std::optional<std::string>{"ready"});
  }

  std::string ask(const std::string& command) {
    m_child.write_stdin(command + "\n");
    auto answer = m_child.read_line(30s);
    INFO("stderr: " << m_child.err());
    REQUIRE(answer.has_value());
    return *answer;
  }
  std::string get(const std::string& key) { return ask("get page " + key); }

  std::map<std::string, std::uint64_t> stats() {
    std::istringstream words{ask("stats")};
    std::map<std::string, std::uint64_t> numbers;
    std::string name;
    std::uint64_t number = 0;
    while (words >> name >> number)
      numbers[name] = number;
    return numbers;
  }

  // Waits until the child has received more than `seen` invalidations; returns the new count.
  std::uint64_t await_invalidations(std::uint64_t seen) {
    std::uint64_t now = seen;
    REQUIRE(eventually([&] { return (now = stats()["invalidations"]) > seen; }));
    return now;
  }

  pgkit_test::child_process& process() { return m_child; }

 private:
  pgkit_test::child_process m_child;
};

struct two_processes {
  two_processes() : db{"near"} {
    pqxx::connection connection{db.url()};
    pgkit::apply_modules(connection, {"cache"}, "pgkit");
    store = std::make_unique<pgkit::cache_store>(pool_on(db.url()), near_on());
    other = std::make_unique<other_process>(db.url());
  }

  pgkit_test::scratch_database db;
  std::unique_ptr<pgkit::cache_store> store;
  std::unique_ptr<other_process> other;
};

}  // namespace

TEST_CASE("pgkit::cache_store near tier across two processes") {
  two_processes f;
  auto& store = *f.store;
  auto& other = *f.other;
  store.set("page", "home", "v0", pgkit::never_expires);
  REQUIRE(other.get("home") == "hit v0");
  REQUIRE(other.get("home") == "hit v0");
  REQUIRE(other.stats()["hits"] == 1);  // the second read never left the process

  SUBCASE("a write in one is never served stale by the other once its invalidation arrives") {
    std::uint64_t seen = other.stats()["invalidations"];
    for (int round = 1; round <= 20; ++round) {
      std::string value = "v" + std::to_string(round);
      store.set("page", "home", value, pgkit::never_expires);
      seen = other.await_invalidations(seen);
      CHECK(other.get("home") == "hit " + value);
      CHECK(other.get("home") == "hit " + value);
    }
    CHECK(other.stats()["hits"] >= 21);
  }

  SUBCASE("a rolled-back write invalidates nothing") {
    store.set("page", "marker", "m0", pgkit::never_expires);
    REQUIRE(other.get("marker") == "hit m0");
    auto before = other.stats();
    {
      pqxx::connection connection{f.db.url()};
      pqxx::work tx{connection};
      tx.exec("UPDATE pgkit.cache SET value = 'rolled back'::bytea WHERE key = 'home'");
      tx.exec("DELETE FROM pgkit.cache WHERE key = 'marker'");
      tx.abort();
    }
    // Notifications arrive in commit order: once this one is in, a rollback's would have been.
    store.set("page", "marker", "m1", pgkit::never_expires);
    other.await_invalidations(before["invalidations"]);
    CHECK(other.get("home") == "hit v0");
    auto after = other.stats();
    CHECK(after["invalidations"] == before["invalidations"] + 1);
    CHECK(after["hits"] == before["hits"] + 1);  // still served by the near tier
    CHECK(other.get("marker") == "hit m1");
  }

  SUBCASE("writes by plain SQL are seen by the other process") {
    run_sql(f.db.url(), "UPDATE pgkit.cache SET value = 'by sql'::bytea WHERE key = 'home'");
    CHECK(eventually([&] { return other.get("home") == "hit by sql"; }));
    REQUIRE(other.get("home") == "hit by sql");
    run_sql(f.db.url(), "DELETE FROM pgkit.cache WHERE key = 'home'");
    CHECK(eventually([&] { return other.get("home") == "miss"; }));
    store.set("page", "again", "a", pgkit::never_expires);
    REQUIRE(other.get("again") == "hit a");
    auto flushes = other.stats()["flushes"];
    run_sql(f.db.url(), "TRUNCATE pgkit.cache");
    CHECK(eventually([&] { return other.get("again") == "miss"; }));
    CHECK(other.stats()["flushes"] == flushes + 1);
  }

  SUBCASE("writes under session_replication_role = replica are seen by the other process") {
    // pg_restore, logical replication and ETL tools write as replicas, where ordinary triggers
    // are skipped; the cache's fire always.
    run_sql(f.db.url(),
            "SET session_replication_role = replica; "
            "UPDATE pgkit.cache SET value = 'as replica'::bytea WHERE key = 'home'");
    CHECK(eventually([&] { return other.get("home") == "hit as replica"; }));
  }

  SUBCASE("the writer reads its own write at once") {
    REQUIRE(store.get("page", "home") == std::optional<std::string>{"v0"});
    REQUIRE(store.get("page", "home") == std::optional<std::string>{"v0"});
    store.set("page", "home", "mine", pgkit::never_expires);
    CHECK(store.get("page", "home") == std::optional<std::string>{"mine"});
    store.set_many("page", {{"home", "many"}}, pgkit::never_expires);
    CHECK(store.get("page", "home") == std::optional<std::string>{"many"});
    CHECK(store.expire("page", "home", 0ms));
    CHECK_FALSE(store.get("page", "home").has_value());
    CHECK(store.near_statistics().hits >= 1);
  }

  SUBCASE("a statement over more than 400 live entries flushes their resource type") {
    std::vector<std::pair<std::string, std::string>> entries;
    for (int i = 0; i < 1000; ++i)
      entries.emplace_back("k" + std::to_string(i), "old");
    store.set_many("page", entries, pgkit::never_expires);
    store.set("other", "kept", "kept", pgkit::never_expires);
    REQUIRE(other.get("k5") == "hit old");
    REQUIRE(other.ask("get other kept") == "hit kept");
    auto before = other.stats();
    for (auto& entry : entries)
      entry.second = "new";
    store.set_many("page", entries, pgkit::never_expires);
    other.await_invalidations(before["invalidations"]);
    CHECK(other.get("k5") == "hit new");
    CHECK(other.ask("get other kept") == "hit kept");
    auto after = other.stats();
    CHECK(after["flushes"] == before["flushes"] + 1);
    CHECK(after["hits"] == before["hits"] + 1);  // "other" stayed in the near tier
  }

  SUBCASE("a statement over more than 400 resource types flushes everything") {
    run_sql(f.db.url(),
            "INSERT INTO pgkit.cache (resource_type, key, value) "
            "SELECT 'type' || i, 'k', 'x'::bytea FROM generate_series(1, 500) AS i");
    REQUIRE(other.ask("get type7 k") == "hit x");
    auto before = other.stats();
    run_sql(f.db.url(), "DELETE FROM pgkit.cache WHERE resource_type LIKE 'type%'");
    other.await_invalidations(before["invalidations"]);
    CHECK(other.ask("get type7 k") == "miss");
    CHECK(other.get("home") == "hit v0");  // from the table again: everything was dropped
    auto after = other.stats();
    CHECK(after["flushes"] == before["flushes"] + 1);
    CHECK(after["hits"] == before["hits"]);
  }

  SUBCASE("touch (same value, longer life) leaves the other process's copy alone") {
    store.set("page", "marker", "m0", pgkit::never_expires);
    store.set("page", "short", "s", 1h);
    REQUIRE(other.get("short") == "hit s");
    auto before = other.stats();
    CHECK(store.touch("page", "short", 2h));
    store.set("page", "marker", "m1", pgkit::never_expires);
    other.await_invalidations(before["invalidations"]);
    CHECK(other.get("short") == "hit s");
    CHECK(other.stats()["hits"] == before["hits"] + 1);
  }
}

namespace {

// The payloads a plain LISTEN session (no near tier) gets on pgkit_cache up to and including a
// fence notification sent after `write` committed: notifications arrive in commit order.
std::vector<std::string> announced_by(const std::string& url, const std::string& write) {
  pgkit::listener plain{url};
  plain.listen(pgkit::detail::k_near_channel);
  run_sql(url, write);
  run_sql(url, "NOTIFY pgkit_cache, 'fence'");
  std::vector<std::string> payloads;
  while (auto received = plain.receive(30s)) {
    payloads.push_back(received->payload);
    if (received->payload == "fence")
      break;
  }
  return payloads;
}

}  // namespace

TEST_CASE("pgkit::cache_store near tier: writes pay for announcing only while a tier listens") {
  pgkit_test::scratch_database db{"neari"};
  {
    pqxx::connection connection{db.url()};
    pgkit::apply_modules(connection, {"cache"}, "pgkit");
  }
  run_sql(db.url(),
          "INSERT INTO pgkit.cache (resource_type, key, value) "
          "VALUES ('page', 'home', 'v0'::bytea)");
  const std::string write = "UPDATE pgkit.cache SET value = value || 'x'::bytea WHERE key = 'home'";

  SUBCASE("with no near tier on the database a write announces nothing") {
    CHECK(announced_by(db.url(), write) == std::vector<std::string>{"fence"});
  }

  SUBCASE("with a near tier in any process every write announces itself") {
    pgkit::cache_store store{pool_on(db.url()), near_on()};
    auto payloads = announced_by(db.url(), write);
    REQUIRE(payloads.size() == 2);
    CHECK(payloads[0].rfind("k pgkit ", 0) == 0);
  }

  SUBCASE("a tier that starts while an unannounced write is open serves only after it ends") {
    pqxx::connection writer{db.url()};
    pqxx::work tx{writer};
    tx.exec("UPDATE pgkit.cache SET value = 'v1'::bytea WHERE key = 'home'");
    std::unique_ptr<pgkit::cache_store> store;
    std::thread starting{
        [&] { store = std::make_unique<pgkit::cache_store>(pool_on(db.url()), near_on()); }};
    // The new tier's listener waits for the writer's lock before it LISTENs.
    bool waited = eventually([&] {
      return query_value(db.url(),
                         "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                         "AND application_name = 'pgkit near cache' AND wait_event_type = "
                         "'Lock'") == "1";
    });
    tx.commit();
    starting.join();
    CHECK(waited);
    REQUIRE(store);
    CHECK(store->get("page", "home") == std::optional<std::string>{"v1"});
    CHECK(store->get("page", "home") == std::optional<std::string>{"v1"});
    CHECK(store->near_statistics().hits == 1);
    // From now on the table's writes reach the tier.
    run_sql(db.url(), "UPDATE pgkit.cache SET value = 'v2'::bytea WHERE key = 'home'");
    CHECK(
        eventually([&] { return store->get("page", "home") == std::optional<std::string>{"v2"}; }));
  }
}

TEST_CASE("pgkit::cache_store near tier: a listener outage flushes it before it serves again") {
  SUBCASE("its listener's backend is terminated") {
    two_processes f;
    auto& other = *f.other;
    f.store->set("page", "home", "v1", pgkit::never_expires);
    REQUIRE(other.get("home") == "hit v1");
    REQUIRE(other.get("home") == "hit v1");
    run_sql(f.db.url(),
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'pgkit near cache'");
    run_sql(f.db.url(), "UPDATE pgkit.cache SET value = 'v2'::bytea WHERE key = 'home'");
    REQUIRE(other.process().wait_for_stderr("event flushed", 60s));
    REQUIRE(other.process().wait_for_stderr("event listener_back", 10s));
    CHECK(other.process().err().find("event listener_lost") <
          other.process().err().find("event flushed"));
    CHECK(other.get("home") == "hit v2");
    CHECK(other.stats()["flushes"] >= 1);
    // Serving again after the flush (the update's own notification may still drop one copy).
    CHECK(eventually([&] { return other.get("home") == "hit v2" && other.stats()["hits"] >= 2; }));
  }

  SUBCASE("the server restarts") {
    pgkit_test::own_sandbox server;
    {
      pqxx::connection connection{server.url()};
      pgkit::apply_modules(connection, {"cache"}, "pgkit");
    }
    run_sql(server.url(),
            "INSERT INTO pgkit.cache (resource_type, key, value) "
            "VALUES ('page', 'home', 'v1'::bytea)");
    other_process other{server.url()};
    REQUIRE(other.get("home") == "hit v1");
    REQUIRE(other.get("home") == "hit v1");
    server.restart();
    REQUIRE(eventually(
        [&] {
          try {
            run_sql(server.url(), "UPDATE pgkit.cache SET value = 'v2'::bytea WHERE key = 'home'");
            return true;
          } catch (const std::exception&) {
            return false;
          }
        },
        60s));
    REQUIRE(other.process().wait_for_stderr("event flushed", 60s));
    CHECK(eventually([&] { return other.get("home") != std::string{"hit v1"}; }, 1s));
    CHECK(eventually([&] { return other.get("home") == "hit v2"; }));
    CHECK(other.get("home") == "hit v2");
  }
}

TEST_CASE("pgkit::cache_store near tier bounds, expiry and refusals") {
  pgkit_test::scratch_database db{"nearb"};
  {
    pqxx::connection connection{db.url()};
    pgkit::apply_modules(connection, {"cache"}, "pgkit");
  }
  auto connections = pool_on(db.url());

  SUBCASE("never more than max_entries entries") {
    pgkit::cache_store store{connections, near_on(100)};
    std::vector<std::pair<std::string, std::string>> entries;
    for (int i = 0; i < 1000; ++i)
      entries.emplace_back("k" + std::to_string(i), "value");
    store.set_many("page", entries, pgkit::never_expires);
    for (const auto& entry : entries)
      REQUIRE(store.get("page", entry.first) == std::optional<std::string>{"value"});
    auto stats = store.near_statistics();
    CHECK(stats.entries <= 100);
    CHECK(stats.entries >= 50);
    CHECK(stats.misses == 1000);
  }

  SUBCASE("never more than max_bytes bytes") {
    pgkit::cache_store store{connections, near_on(10000, 64 * 1024)};
    std::vector<std::pair<std::string, std::string>> entries;
    for (int i = 0; i < 100; ++i)
      entries.emplace_back("k" + std::to_string(i), std::string(4000, 'x'));
    store.set_many("page", entries, pgkit::never_expires);
    for (const auto& entry : entries)
      REQUIRE(store.get("page", entry.first)->size() == 4000);
    auto stats = store.near_statistics();
    CHECK(stats.bytes <= 64 * 1024);
    CHECK(stats.entries >= 4);
    CHECK(stats.entries <= 16);
    CHECK(stats.bytes >= stats.entries * 4000);
  }

  SUBCASE("an entry is not served once the table says it expired") {
    pgkit::cache_store store{connections, near_on()};
    store.set("page", "short", "s", 1500ms);
    REQUIRE(store.get("page", "short") == std::optional<std::string>{"s"});
    REQUIRE(store.get("page", "short") == std::optional<std::string>{"s"});
    REQUIRE(store.near_statistics().hits == 1);
    REQUIRE(eventually([&] {
      return query_value(db.url(), "SELECT expires_at <= now() FROM pgkit.cache") == "t";
    }));
    CHECK_FALSE(store.get("page", "short").has_value());
  }

  SUBCASE("get_many answers from the tier and the table together") {
    pgkit::cache_store store{connections, near_on()};
    store.set_many("page", {{"a", "1"}, {"b", "2"}}, pgkit::never_expires);
    REQUIRE(store.get("page", "a") == std::optional<std::string>{"1"});
    auto values = store.get_many("page", {"a", "b", "c", "a"});
    CHECK(values == std::vector<std::optional<std::string>>{"1", "2", std::nullopt, "1"});
    CHECK(store.get_many("page", {"a", "b"}) == std::vector<std::optional<std::string>>{"1", "2"});
    CHECK(store.near_statistics().hits == 4);
  }

  SUBCASE("threads reading while another writes: after the writes every read sees the last") {
    pgkit::cache_store store{pool_on(db.url()), near_on(20)};
    constexpr int keys = 40;
    for (int k = 0; k < keys; ++k)
      store.set("page", "k" + std::to_string(k), "v0", pgkit::never_expires);
    std::atomic<bool> writing{true};
    std::vector<std::thread> readers;
    for (int t = 0; t < 3; ++t) {
      readers.emplace_back([&, t] {
        for (int i = t; writing.load(); ++i)
          store.get("page", "k" + std::to_string(i % keys));
      });
    }
    for (int round = 1; round <= 10; ++round) {
      for (int k = 0; k < keys; ++k)
        store.set("page", "k" + std::to_string(k), "v" + std::to_string(round),
                  pgkit::never_expires);
    }
    writing = false;
    for (auto& reader : readers)
      reader.join();
    for (int k = 0; k < keys; ++k) {
      CHECK(store.get("page", "k" + std::to_string(k)) == std::optional<std::string>{"v10"});
      CHECK(store.get("page", "k" + std::to_string(k)) == std::optional<std::string>{"v10"});
    }
    auto stats = store.near_statistics();
    CHECK(stats.entries <= 20);
    CHECK(stats.hits > 0);
  }

  SUBCASE("once the invalidations counter has moved, the entry is gone") {
    // near_statistics().invalidations counts notifications applied: a reader that sees it move
    // must not be served the value the notification dropped (it was counted on arrival, before
    // the tier's shards were searched, and a reader polling it could read the old value).
    pgkit::cache_store store{connections, near_on()};
    for (int k = 0; k < 500; ++k)  // entries in every shard
      store.set("page", "k" + std::to_string(k), "x", pgkit::never_expires);
    for (int k = 0; k < 500; ++k)
      store.get("page", "k" + std::to_string(k));
    pqxx::connection writer{db.url()};
    int stale = 0;
    for (int round = 1; round <= 150; ++round) {
      const std::string key = "k" + std::to_string(round % 500);
      const std::string value = "v" + std::to_string(round);
      REQUIRE(store.get("page", key).has_value());  // in the tier (filled now if not before)
      auto seen = store.near_statistics().invalidations;
      pqxx::nontransaction tx{writer};
      tx.exec("UPDATE pgkit.cache SET value = " + tx.quote(value) +
              "::bytea WHERE key = " + tx.quote(key));
      REQUIRE(eventually([&] { return store.near_statistics().invalidations > seen; }));
      if (store.get("page", key) != std::optional<std::string>{value})
        ++stale;
    }
    CHECK_MESSAGE(stale == 0, stale << " of 150 reads were stale");
  }

  SUBCASE("the tier is off by default and its counters are zero") {
    pgkit::cache_store store{connections};
    store.set("page", "a", "1", pgkit::never_expires);
    REQUIRE(store.get("page", "a").has_value());
    auto stats = store.near_statistics();
    CHECK(stats.hits + stats.misses + stats.entries + stats.bytes + stats.flushes == 0);
  }

  SUBCASE("a transaction-mode pooler without listen_conninfo is refused") {
    auto config = pgkit::config_from_url(db.url(), "test");
    config.pooler = pgkit::pooler_mode::pgbouncer_transaction;
    auto pooled = std::make_shared<pgkit::pool>(config);
    try {
      pgkit::cache_store store{pooled, near_on()};
      FAIL("no error");
    } catch (const pgkit::config_error& e) {
      CHECK(std::string{e.what()}.find("pgbouncer-transaction") != std::string::npos);
      CHECK(std::string{e.hint()}.find("listen_conninfo") != std::string::npos);
    }
    auto options = near_on();
    options.near->listen_conninfo = db.url();
    pgkit::cache_store store{pooled, options};
    store.set("page", "a", "1", pgkit::never_expires);
    CHECK(store.get("page", "a") == std::optional<std::string>{"1"});
  }

  SUBCASE("connections that do not speak UTF-8 are refused") {
    auto latin1 = pool_on(db.url() + (db.url().find('?') == std::string::npos ? "?" : "&") +
                          "client_encoding=LATIN1");
    try {
      pgkit::cache_store store{latin1, near_on()};
      FAIL("no error");
    } catch (const pgkit::config_error& e) {
      CHECK(std::string{e.what()}.find("client_encoding UTF8") != std::string::npos);
    }
  }

  SUBCASE("a cache module without the invalidation trigger is refused") {
    run_sql(db.url(), "DROP TRIGGER cache_announce_delete ON pgkit.cache");
    try {
      pgkit::cache_store store{connections, near_on()};
      FAIL("no error");
    } catch (const pgkit::error& e) {
      CHECK(e.kind() == pgkit::error_kind::undefined_object);
      CHECK(std::string{e.hint()} == "run pgkit apply cache");
    }
  }

  SUBCASE("a disabled invalidation trigger is refused") {
    run_sql(db.url(), "ALTER TABLE pgkit.cache DISABLE TRIGGER cache_announce_update");
    try {
      pgkit::cache_store store{connections, near_on()};
      FAIL("no error");
    } catch (const pgkit::config_error& e) {
      CHECK(std::string{e.what()}.find("(cache_announce_update)") != std::string::npos);
      CHECK(std::string{e.what()}.find("disabled") != std::string::npos);
      CHECK(std::string{e.hint()}.find("ENABLE ALWAYS TRIGGER") != std::string::npos);
    }
    run_sql(db.url(), "ALTER TABLE pgkit.cache ENABLE ALWAYS TRIGGER cache_announce_update");
    pgkit::cache_store store{connections, near_on()};
    CHECK(store.near_statistics().entries == 0);
  }

  SUBCASE("a cache module whose triggers skip replicas (an older pgkit's) is refused") {
    run_sql(db.url(), "ALTER TABLE pgkit.cache ENABLE TRIGGER cache_announce_delete");
    try {
      pgkit::cache_store store{connections, near_on()};
      FAIL("no error");
    } catch (const pgkit::error& e) {
      CHECK(e.kind() == pgkit::error_kind::undefined_object);
      CHECK(std::string{e.hint()} == "run pgkit apply cache");
    }
  }

  SUBCASE("bad bounds are usage errors") {
    CHECK_THROWS_AS(pgkit::cache_store(connections, near_on(0)), pgkit::usage_error);
    CHECK_THROWS_AS(pgkit::cache_store(connections, near_on(10, 100)), pgkit::usage_error);
  }

  SUBCASE("the digests match the ones the trigger computes") {
    auto sql = query_value(db.url(),
                           "SELECT substr(encode(sha256(convert_to('pägé', 'UTF8') || "
                           "'\\x00'::bytea || convert_to('k \"1\"', 'UTF8')), 'hex'), 1, 16)");
    char hex[17];
    std::snprintf(
        hex, sizeof hex, "%016llx",
        static_cast<unsigned long long>(pgkit::detail::near_entry_digest("pägé", "k \"1\"")));
    CHECK(sql == hex);
    auto parsed = pgkit::detail::parse_near_message(std::string{"k pgkit "} + hex);
    REQUIRE(parsed);
    CHECK(parsed->schema == "pgkit");
    CHECK(parsed->digests ==
          std::vector<std::uint64_t>{pgkit::detail::near_entry_digest("pägé", "k \"1\"")});
    CHECK_FALSE(pgkit::detail::parse_near_message("k pgkit zz"));
    CHECK_FALSE(pgkit::detail::parse_near_message("hello"));
  }
}
