// The cache store against a real PostgreSQL: every operation, expiry on the database clock,
// readers and gc that never wait on a row lock, and the errors a caller can make.

#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <pqxx/pqxx>

#include "harness.hpp"
#include "pgkit/cache.hpp"
#include "pgkit/migration.hpp"
#include "pgkit/named_cache.hpp"
#include "pgkit/pool.hpp"
#include "wire/wire.hpp"

using namespace std::chrono_literals;
using pgkit_test::query_value;

namespace {

// A scratch database with the cache module applied, a pool on it and a store.
struct cache_fixture {
  explicit cache_fixture(pgkit::cache_options options = {}, const std::string& schema = "pgkit")
      : db{"cache"} {
    pqxx::connection connection{db.url()};
    pgkit::apply_modules(connection, {"cache"}, schema);
    auto config = pgkit::config_from_url(db.url(), "test");
    config.pool_size = 4;
    connections = std::make_shared<pgkit::pool>(config);
    options.schema = schema;
    store = std::make_unique<pgkit::cache_store>(connections, options);
  }

  std::string value(const std::string& sql) const { return query_value(db.url(), sql); }
  std::string rows() const { return value("SELECT count(*) FROM pgkit.cache"); }

  pgkit_test::scratch_database db;
  std::shared_ptr<pgkit::pool> connections;
  std::unique_ptr<pgkit::cache_store> store;
};

// Every byte value, NUL included, twice.
std::string all_bytes() {
  std::string bytes;
  for (int round = 0; round < 2; ++round) {
    for (int b = 0; b < 256; ++b)
      bytes.push_back(static_cast<char>(b));
  }
  return bytes;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Holds row locks from another session until released: what a writer or a gc batch does.
class lock_holder {
 public:
  lock_holder(const std::string& url, const std::string& sql)
      : m_connection{url}, m_tx{std::make_unique<pqxx::work>(m_connection)} {
    m_tx->exec(sql);
  }
  void release() {
    if (m_tx) {
      m_tx->commit();
      m_tx.reset();
    }
  }
  ~lock_holder() {
    if (m_tx)
      m_tx->abort();
  }

 private:
  pqxx::connection m_connection;
  std::unique_ptr<pqxx::work> m_tx;
};

// Runs `read` on another thread and returns whether it finished within 15 s (a reader that
// waits on a row lock would wait until the holder lets go, which the caller does only later).
template <typename Read>
bool returns_promptly(std::future<Read>& pending) {
  return pending.wait_for(15s) == std::future_status::ready;
}

}  // namespace

TEST_CASE("pgkit::cache_store get, set and remove") {
  cache_fixture f;
  auto& store = *f.store;

  SUBCASE("a value comes back byte for byte; an unknown key is a miss") {
    CHECK_FALSE(store.get("page", "home").has_value());
    store.set("page", "home", all_bytes(), pgkit::never_expires);
    auto hit = store.get("page", "home");
    REQUIRE(hit.has_value());
    CHECK(*hit == all_bytes());
    CHECK(f.value("SELECT length(value) FROM pgkit.cache WHERE key = 'home'") == "512");
    CHECK(f.value("SELECT expires_at IS NULL FROM pgkit.cache WHERE key = 'home'") == "t");
  }
  SUBCASE("text values, empty values and keys with quotes, commas and braces") {
    store.set("user", "42", "Ada Lovelace", pgkit::never_expires);
    store.set("user", "empty", "", pgkit::never_expires);
    std::string odd = "a \"quoted\", {braced} \\ key with ünïcode";
    store.set("user", odd, "odd", pgkit::never_expires);
    CHECK(store.get("user", "42") == std::optional<std::string>{"Ada Lovelace"});
    CHECK(store.get("user", "empty") == std::optional<std::string>{""});
    CHECK(store.get("user", odd) == std::optional<std::string>{"odd"});
    CHECK(store.get_many("user", {odd, "42"}) ==
          std::vector<std::optional<std::string>>{"odd", "Ada Lovelace"});
  }
  SUBCASE("set replaces the value and the expiry (upsert)") {
    store.set("page", "home", "v1", 1h);
    store.set("page", "home", "v2", pgkit::never_expires);
    CHECK(store.get("page", "home") == std::optional<std::string>{"v2"});
    CHECK(f.rows() == "1");
    CHECK(f.value("SELECT expires_at IS NULL FROM pgkit.cache") == "t");
  }
  SUBCASE("resource types are separate: the same key in two of them") {
    store.set("user", "1", "a user", pgkit::never_expires);
    store.set("post", "1", "a post", pgkit::never_expires);
    CHECK(store.get("user", "1") == std::optional<std::string>{"a user"});
    CHECK(store.get("post", "1") == std::optional<std::string>{"a post"});
    CHECK(store.remove("user", "1"));
    CHECK_FALSE(store.get("user", "1").has_value());
    CHECK(store.get("post", "1") == std::optional<std::string>{"a post"});
  }
  SUBCASE("remove says whether there was an entry, expired ones included") {
    CHECK_FALSE(store.remove("page", "nothing"));
    store.set("page", "old", "x", 0ms);
    CHECK(store.remove("page", "old"));
    CHECK(f.rows() == "0");
  }
  SUBCASE("the default ttl applies when set names none") {
    cache_fixture g{[] {
      pgkit::cache_options options;
      options.default_ttl = 1h;
      return options;
    }()};
    g.store->set("page", "home", "x");
    CHECK(g.value("SELECT expires_at > now() + interval '59 minutes' AND expires_at <= now() + "
                  "interval '1 hour' FROM pgkit.cache") == "t");
    store.set("page", "home", "x");
    CHECK(f.value("SELECT expires_at IS NULL FROM pgkit.cache") == "t");
  }
  SUBCASE("a value of exactly max_value_size is stored") {
    std::string big(1024 * 1024, 'v');
    store.set("blob", "big", big, pgkit::never_expires);
    CHECK(store.get("blob", "big") == std::optional<std::string>{big});
  }
  SUBCASE("stores on two schemas share one pool") {
    pqxx::connection connection{f.db.url()};
    pgkit::apply_modules(connection, {"cache"}, "other");
    pgkit::cache_options options;
    options.schema = "other";
    pgkit::cache_store other{f.connections, options};
    store.set("page", "home", "in pgkit", pgkit::never_expires);
    other.set("page", "home", "in other", pgkit::never_expires);
    for (int i = 0; i < 3; ++i) {
      CHECK(store.get("page", "home") == std::optional<std::string>{"in pgkit"});
      CHECK(other.get("page", "home") == std::optional<std::string>{"in other"});
    }
  }
}

TEST_CASE("pgkit::cache_store expiry on the database clock") {
  cache_fixture f;
  auto& store = *f.store;

  SUBCASE("expires_at is the server's now() plus the ttl") {
    auto before = f.value("SELECT clock_timestamp()");
    store.set("page", "home", "x", 90s);
    auto after = f.value("SELECT clock_timestamp()");
    CHECK(f.value("SELECT expires_at >= '" + before +
                  "'::timestamptz + interval '90 seconds' "
                  "AND expires_at <= '" +
                  after +
                  "'::timestamptz + interval '90 seconds' "
                  "FROM pgkit.cache") == "t");
  }
  SUBCASE("an entry whose time has passed on the server is a miss and is deleted") {
    store.set("page", "home", "x", 300ms);
    store.set("page", "other", "y", 1h);
    while (f.value("SELECT now() > expires_at FROM pgkit.cache WHERE key = 'home'") != "t")
      std::this_thread::sleep_for(50ms);
    CHECK_FALSE(store.get("page", "home").has_value());
    CHECK(f.value("SELECT count(*) FROM pgkit.cache WHERE key = 'home'") == "0");
    CHECK(store.get("page", "other") == std::optional<std::string>{"y"});
  }
  SUBCASE("a zero ttl stores an entry that is already expired") {
    store.set("page", "home", "x", 0ms);
    CHECK_FALSE(store.get("page", "home").has_value());
    CHECK(f.rows() == "0");
  }
  SUBCASE("a row expired by hand reads as a miss (expires_at in the past)") {
    store.set("page", "home", "x", pgkit::never_expires);
    f.value("UPDATE pgkit.cache SET expires_at = now() - interval '1 second'");
    CHECK_FALSE(store.get("page", "home").has_value());
    CHECK(f.rows() == "0");
  }
  SUBCASE("expire shortens, lengthens, removes the expiry or expires now") {
    CHECK_FALSE(store.expire("page", "home", 1h));
    store.set("page", "home", "x", 1h);
    CHECK(store.expire("page", "home", 10s));
    CHECK(f.value("SELECT expires_at <= now() + interval '10 seconds' FROM pgkit.cache") == "t");
    CHECK(store.expire("page", "home", 2h));
    CHECK(f.value("SELECT expires_at > now() + interval '1 hour' FROM pgkit.cache") == "t");
    CHECK(store.expire("page", "home", pgkit::never_expires));
    CHECK(f.value("SELECT expires_at IS NULL FROM pgkit.cache") == "t");
    CHECK(store.expire("page", "home", 0ms));
    CHECK_FALSE(store.get("page", "home").has_value());
    CHECK_FALSE(store.expire("page", "home", 1h));
  }
  SUBCASE("touch lengthens, never shortens, and leaves a permanent entry alone") {
    CHECK_FALSE(store.touch("page", "home", 1h));
    store.set("page", "home", "x", 10s);
    CHECK(store.touch("page", "home", 1h));
    CHECK(f.value("SELECT expires_at > now() + interval '59 minutes' FROM pgkit.cache") == "t");
    CHECK(store.touch("page", "home", 1s));
    CHECK(f.value("SELECT expires_at > now() + interval '59 minutes' FROM pgkit.cache") == "t");
    store.set("page", "forever", "y", pgkit::never_expires);
    CHECK(store.touch("page", "forever", 1s));
    CHECK(f.value("SELECT expires_at IS NULL FROM pgkit.cache WHERE key = 'forever'") == "t");
    store.set("page", "gone", "z", 0ms);
    CHECK_FALSE(store.touch("page", "gone", 1h));
    CHECK_FALSE(store.get("page", "gone").has_value());
  }
}

TEST_CASE("pgkit::cache_store get_many and set_many") {
  cache_fixture f;
  auto& store = *f.store;

  SUBCASE("values come back in the order asked, misses and duplicates included") {
    store.set_many("user", {{"1", "one"}, {"2", "two"}, {"3", std::string("t\0ree", 5)}}, 1h);
    auto values = store.get_many("user", {"3", "missing", "1", "3"});
    REQUIRE(values.size() == 4);
    CHECK(values[0] == std::optional<std::string>{std::string("t\0ree", 5)});
    CHECK_FALSE(values[1].has_value());
    CHECK(values[2] == std::optional<std::string>{"one"});
    CHECK(values[3] == values[0]);
    CHECK(store.get_many("user", {}).empty());
  }
  SUBCASE("a hundred keys, some expired: those are misses and are deleted") {
    std::vector<std::pair<std::string, std::string>> entries;
    std::vector<std::string> keys;
    for (int i = 0; i < 100; ++i) {
      entries.emplace_back("k" + std::to_string(i), "v" + std::to_string(i));
      keys.push_back("k" + std::to_string(i));
    }
    store.set_many("row", entries, pgkit::never_expires);
    f.value(
        "UPDATE pgkit.cache SET expires_at = now() - interval '1 minute' "
        "WHERE key IN ('k3', 'k50', 'k99')");
    auto values = store.get_many("row", keys);
    REQUIRE(values.size() == 100);
    for (int i = 0; i < 100; ++i) {
      bool expired = i == 3 || i == 50 || i == 99;
      CHECK(values[static_cast<std::size_t>(i)].has_value() == !expired);
      if (!expired)
        CHECK(*values[static_cast<std::size_t>(i)] == "v" + std::to_string(i));
    }
    CHECK(f.rows() == "97");
  }
  SUBCASE("set_many replaces existing entries; a key given twice keeps its last value") {
    store.set("user", "1", "old", pgkit::never_expires);
    store.set_many("user", {{"1", "new"}, {"2", "first"}, {"2", "second"}}, 1h);
    CHECK(store.get("user", "1") == std::optional<std::string>{"new"});
    CHECK(store.get("user", "2") == std::optional<std::string>{"second"});
    CHECK(f.value("SELECT count(*) FROM pgkit.cache WHERE expires_at > now()") == "2");
    store.set_many("user", {});
    CHECK(f.rows() == "2");
  }
  SUBCASE("set_many carries binary values of different sizes intact") {
    std::vector<std::pair<std::string, std::string>> entries{
        {"a", all_bytes()}, {"b", ""}, {"c", std::string(70000, '\0')}, {"d", "\xff"}};
    store.set_many("blob", entries, pgkit::never_expires);
    auto values = store.get_many("blob", {"a", "b", "c", "d"});
    for (std::size_t i = 0; i < entries.size(); ++i)
      CHECK(values[i] == std::optional<std::string>{entries[i].second});
  }
}

TEST_CASE("pgkit::cache_store clear and get_or_set") {
  cache_fixture f;
  auto& store = *f.store;

  SUBCASE("clear deletes one resource type, in batches, and counts") {
    f.value(
        "INSERT INTO pgkit.cache (resource_type, key) "
        "SELECT 'bulk', 'k' || i FROM generate_series(1, 25000) AS i");
    store.set("keep", "1", "x", pgkit::never_expires);
    CHECK(store.clear("bulk") == 25000);
    CHECK(store.clear("bulk") == 0);
    CHECK(f.rows() == "1");
    CHECK(store.get("keep", "1") == std::optional<std::string>{"x"});
  }
  SUBCASE("get_or_set computes on a miss only") {
    int calls = 0;
    auto compute = [&calls] {
      ++calls;
      return std::string{"computed"};
    };
    CHECK(store.get_or_set("page", "home", 1h, compute) == "computed");
    CHECK(store.get_or_set("page", "home", 1h, compute) == "computed");
    CHECK(calls == 1);
    CHECK(f.value("SELECT expires_at > now() FROM pgkit.cache") == "t");
    f.value("UPDATE pgkit.cache SET expires_at = now() - interval '1 second'");
    CHECK(store.get_or_set("page", "home", 1h, compute) == "computed");
    CHECK(calls == 2);
  }
  SUBCASE("get_or_set stores nothing when compute throws") {
    CHECK_THROWS_AS(store.get_or_set("page", "home", 1h,
                                     []() -> std::string { throw std::runtime_error{"boom"}; }),
                    std::runtime_error);
    CHECK(f.rows() == "0");
  }
}

TEST_CASE("pgkit::cache_store errors a caller can make") {
  cache_fixture f{[] {
    pgkit::cache_options options;
    options.max_value_size = 16;
    options.max_key_size = 32;
    return options;
  }()};
  auto& store = *f.store;
  auto usage = [](const pgkit::error& e) { return e.kind() == pgkit::error_kind::usage; };

  SUBCASE("an oversized value is refused before anything is sent") {
    auto e = pgkit_test::expect_error([&] { store.set("page", "home", std::string(17, 'x'), 1h); });
    CHECK(usage(e));
    CHECK(contains(e.what(),
                   "the cache value for key 'home' is 17 bytes, more than the "
                   "maximum of 16; nothing was stored"));
    CHECK(contains(e.hint(), "max_value_size"));
    auto many = pgkit_test::expect_error([&] {
      store.set_many("page", {{"a", "small"}, {"b", std::string(100, 'x')}}, 1h);
    });
    CHECK(usage(many));
    auto computed = pgkit_test::expect_error(
        [&] { store.get_or_set("page", "c", 1h, [] { return std::string(20, 'x'); }); });
    CHECK(usage(computed));
    CHECK(f.rows() == "0");
    store.set("page", "fits", std::string(16, 'x'), 1h);
    CHECK(f.rows() == "1");
  }
  SUBCASE("the default maximum is 1 MiB") {
    cache_fixture g;
    auto e = pgkit_test::expect_error(
        [&] { g.store->set("page", "big", std::string(1024 * 1024 + 1, 'x'), 1h); });
    CHECK(usage(e));
    CHECK(contains(e.what(), "1048577 bytes, more than the maximum of 1048576"));
  }
  SUBCASE("an empty key or resource type") {
    for (auto e : {pgkit_test::expect_error([&] { store.get("page", ""); }),
                   pgkit_test::expect_error([&] { store.set("page", "", "x", 1h); }),
                   pgkit_test::expect_error([&] {
                     store.get_many("page", {"a", ""});
                   }),
                   pgkit_test::expect_error([&] { store.remove("page", ""); })}) {
      CHECK(usage(e));
      CHECK(std::string{e.what()} == "the cache key is empty");
    }
    auto type = pgkit_test::expect_error([&] { store.get("", "k"); });
    CHECK(usage(type));
    CHECK(std::string{type.what()} == "the cache resource type is empty");
    CHECK(usage(pgkit_test::expect_error([&] { store.clear(""); })));
  }
  SUBCASE("a NUL byte in a key") {
    std::string key("ab\0cd", 5);
    for (auto e : {pgkit_test::expect_error([&] { store.get("page", key); }),
                   pgkit_test::expect_error([&] { store.set("page", key, "x", 1h); }),
                   pgkit_test::expect_error([&] {
                     store.set_many("page", {{key, "x"}}, 1h);
                   }),
                   pgkit_test::expect_error([&] { store.touch("page", key, 1h); })}) {
      CHECK(usage(e));
      CHECK(std::string{e.what()} == "the cache key (5 bytes) contains a NUL byte at offset 2");
      CHECK(contains(e.hint(), "hex or base64"));
    }
  }
  SUBCASE("a key longer than max_key_size") {
    auto e = pgkit_test::expect_error([&] { store.get("page", std::string(33, 'k')); });
    CHECK(usage(e));
    CHECK(contains(e.what(), "33 bytes long, more than the maximum of 32"));
  }
  SUBCASE("a ttl longer than 100 years is refused before anything is sent") {
    auto forever = std::chrono::milliseconds::max();
    for (auto e : {pgkit_test::expect_error([&] { store.set("page", "home", "x", forever); }),
                   pgkit_test::expect_error([&] {
                     store.set_many("page", {{"a", "x"}}, forever);
                   }),
                   pgkit_test::expect_error([&] { store.expire("page", "home", forever); }),
                   pgkit_test::expect_error([&] { store.touch("page", "home", forever); })}) {
      CHECK(usage(e));
      CHECK(contains(e.what(), "the cache ttl is 9223372036854775807 ms; the longest accepted"));
      CHECK(contains(e.hint(), "never_expires"));
    }
    CHECK(f.rows() == "0");
    store.set("page", "home", "x", 36525 * 24h);
    CHECK(f.rows() == "1");
  }
  SUBCASE("a negative ttl") {
    auto e = pgkit_test::expect_error([&] { store.set("page", "home", "x", -1s); });
    CHECK(usage(e));
    CHECK(std::string{e.what()} == "the cache ttl is negative (-1000 ms)");
    CHECK(usage(pgkit_test::expect_error([&] { store.expire("page", "home", -1ms); })));
  }
  SUBCASE("sweep with a batch size of 0") {
    pgkit::sweep_options options;
    options.batch_size = 0;
    auto e = pgkit_test::expect_error([&] { store.sweep(options); });
    CHECK(usage(e));
    // Refused before it waits for a connection: with all of them leased it is still a usage
    // error, not a timeout after acquire_timeout.
    std::vector<pgkit::lease> held;
    for (int i = 0; i < 4; ++i)
      held.push_back(f.connections->acquire());
    CHECK(usage(pgkit_test::expect_error([&] { store.sweep(options); })));
    options.batch_size = 10;
    options.max_duration = 0ms;
    CHECK(usage(pgkit_test::expect_error([&] { store.sweep(options); })));
  }
  SUBCASE("a schema name that is not an identifier") {
    pgkit::cache_options options;
    options.schema = "bad; name";
    auto e = pgkit_test::expect_error([&] { pgkit::cache_store{f.connections, options}; });
    CHECK(usage(e));
  }
}

TEST_CASE("pgkit::cache_store without the cache module") {
  pgkit_test::scratch_database db{"nocache"};
  auto connections = std::make_shared<pgkit::pool>(pgkit::config_from_url(db.url(), "test"));

  SUBCASE("every operation says to apply the module") {
    pgkit::cache_store store{connections};
    for (auto e : {pgkit_test::expect_error([&] { store.check(); }),
                   pgkit_test::expect_error([&] { store.get("a", "b"); }),
                   pgkit_test::expect_error([&] { store.set("a", "b", "c", 1h); }),
                   pgkit_test::expect_error([&] { store.sweep(); })}) {
      CHECK(e.kind() == pgkit::error_kind::undefined_object);
      CHECK(std::string{e.what()} ==
            "the cache module is not applied in schema pgkit (there is no table pgkit.cache)");
      CHECK(e.hint() == "run pgkit apply cache");
    }
  }
  SUBCASE("another schema is named in the hint") {
    pgkit::cache_options options;
    options.schema = "app_cache";
    pgkit::cache_store store{connections, options};
    auto e = pgkit_test::expect_error([&] { store.get("a", "b"); });
    CHECK(e.hint() == "run pgkit apply cache --schema app_cache");
  }
  SUBCASE("read failures can degrade to misses, reported to a callback") {
    std::vector<std::string> reported;
    pgkit::cache_options options;
    options.on_read_failure = pgkit::cache_read_failure::as_miss;
    options.on_failure = [&reported](const pgkit::error& e) { reported.push_back(e.what()); };
    pgkit::cache_store store{connections, options};
    CHECK_FALSE(store.get("a", "b").has_value());
    CHECK(store.get_many("a", {"b", "c"}) == std::vector<std::optional<std::string>>(2));
    CHECK(store.get_or_set("a", "b", 1h, [] { return std::string{"fresh"}; }) == "fresh");
    REQUIRE(reported.size() == 4);  // get, get_many, and get_or_set's read and write
    CHECK(contains(reported[0], "the cache module is not applied"));
    // Writes and usage errors still throw.
    CHECK(pgkit_test::expect_error([&] { store.set("a", "b", "c", 1h); }).kind() ==
          pgkit::error_kind::undefined_object);
    CHECK(pgkit_test::expect_error([&] { store.get("a", ""); }).kind() == pgkit::error_kind::usage);
  }
  SUBCASE("an unreachable server degrades to a miss as well") {
    auto config = pgkit::config_from_url("postgresql://postgres@127.0.0.1:1/none", "test");
    config.connect_timeout = std::chrono::seconds{2};
    int reported = 0;
    pgkit::cache_options options;
    options.on_read_failure = pgkit::cache_read_failure::as_miss;
    options.on_failure = [&reported](const pgkit::error& e) {
      reported += e.kind() == pgkit::error_kind::connection ? 1 : 0;
    };
    pgkit::cache_store store{std::make_shared<pgkit::pool>(config), options};
    CHECK_FALSE(store.get("a", "b").has_value());
    CHECK(reported == 1);
  }
}

TEST_CASE("pgkit::cache_store readers never wait on a row lock") {
  cache_fixture f;
  auto& store = *f.store;
  store.set("page", "home", "old", pgkit::never_expires);
  store.set("page", "next", "x", pgkit::never_expires);
  f.value("UPDATE pgkit.cache SET expires_at = now() - interval '1 minute'");

  SUBCASE("an expired row locked by another session (a gc batch): a miss at once, kept") {
    lock_holder holder{f.db.url(), "SELECT 1 FROM pgkit.cache FOR UPDATE"};
    auto pending = std::async(std::launch::async, [&] { return store.get("page", "home"); });
    REQUIRE(returns_promptly(pending));
    CHECK_FALSE(pending.get().has_value());
    auto many = std::async(std::launch::async, [&] {
      return store.get_many("page", {"home", "next"});
    });
    REQUIRE(returns_promptly(many));
    CHECK(many.get() == std::vector<std::optional<std::string>>(2));
    CHECK(f.rows() == "2");
    holder.release();
    CHECK_FALSE(store.get("page", "home").has_value());
    CHECK(f.rows() == "1");
  }
  SUBCASE("a writer replacing the expired row, not yet committed: the reader sees a miss") {
    lock_holder writer{f.db.url(),
                       "UPDATE pgkit.cache SET value = 'new', expires_at = now() + interval "
                       "'1 hour' WHERE key = 'home'"};
    auto pending = std::async(std::launch::async, [&] { return store.get("page", "home"); });
    REQUIRE(returns_promptly(pending));
    CHECK_FALSE(pending.get().has_value());
    writer.release();
    CHECK(store.get("page", "home") == std::optional<std::string>{"new"});
  }
  SUBCASE("a live row locked by a writer reads its committed value at once") {
    store.set("page", "live", "v1", pgkit::never_expires);
    lock_holder writer{f.db.url(), "UPDATE pgkit.cache SET value = 'v2' WHERE key = 'live'"};
    auto pending = std::async(std::launch::async, [&] { return store.get("page", "live"); });
    REQUIRE(returns_promptly(pending));
    CHECK(pending.get() == std::optional<std::string>{"v1"});
  }
}

TEST_CASE("pgkit::cache_store sweep") {
  cache_fixture f;
  auto& store = *f.store;
  auto expired_rows = [&f](int count, const std::string& type = "old") {
    f.value("INSERT INTO pgkit.cache (resource_type, key, expires_at) SELECT '" + type +
            "', 'k' || i, now() - interval '1 minute' FROM generate_series(1, " +
            std::to_string(count) + ") AS i");
  };
  f.value(
      "INSERT INTO pgkit.cache (resource_type, key, expires_at) "
      "SELECT 'live', 'k' || i, now() + interval '1 hour' FROM generate_series(1, 500) AS i");
  f.value(
      "INSERT INTO pgkit.cache (resource_type, key) "
      "SELECT 'forever', 'k' || i FROM generate_series(1, 500) AS i");
  auto live = [&f] {
    return f.value("SELECT count(*) FROM pgkit.cache WHERE resource_type IN ('live', 'forever')");
  };

  SUBCASE("deletes every expired row in batches and nothing else") {
    expired_rows(2500);
    CHECK(store.count_expired() == 2500);
    std::vector<std::size_t> batches;
    pgkit::sweep_options options;
    options.batch_size = 1000;
    options.progress = [&batches](std::size_t batch, std::size_t) { batches.push_back(batch); };
    auto result = store.sweep(options);
    CHECK(result.deleted == 2500);
    CHECK(result.batches == 3);
    CHECK(batches == std::vector<std::size_t>{1000, 1000, 500});
    CHECK(result.complete);
    CHECK(result.elapsed.count() > 0);
    CHECK(store.count_expired() == 0);
    CHECK(live() == "1000");
    CHECK(store.sweep().deleted == 0);
  }
  SUBCASE("a resource type of its own") {
    expired_rows(300, "a");
    expired_rows(200, "b");
    pgkit::sweep_options options;
    options.resource_type = "b";
    CHECK(store.count_expired(std::string{"b"}) == 200);
    CHECK(store.sweep(options).deleted == 200);
    CHECK(store.count_expired() == 300);
  }
  SUBCASE("max_duration: no batch starts after it") {
    expired_rows(1000);
    pgkit::sweep_options options;
    options.batch_size = 100;
    options.max_duration = 20ms;
    options.progress = [](std::size_t, std::size_t) { std::this_thread::sleep_for(50ms); };
    auto result = store.sweep(options);
    CHECK(result.batches == 1);
    CHECK(result.deleted == 100);
    CHECK_FALSE(result.complete);
    CHECK(store.count_expired() == 900);
  }
  SUBCASE("rows another session holds are skipped, not waited for") {
    expired_rows(1000);
    lock_holder holder{f.db.url(),
                       "SELECT 1 FROM pgkit.cache WHERE resource_type = 'old' AND key IN "
                       "('k1', 'k2', 'k3') FOR UPDATE"};
    auto pending = std::async(std::launch::async, [&] { return store.sweep(); });
    REQUIRE(returns_promptly(pending));
    CHECK(pending.get().deleted == 997);
    holder.release();
    CHECK(store.sweep().deleted == 3);
  }
  SUBCASE("two runs at once share the rows: counts add up, no row deleted twice") {
    expired_rows(20000);
    auto other = std::make_unique<pgkit::cache_store>(f.connections);
    pgkit::sweep_options options;
    options.batch_size = 500;
    auto first = std::async(std::launch::async, [&] { return store.sweep(options); });
    auto second = std::async(std::launch::async, [&] { return other->sweep(options); });
    REQUIRE(returns_promptly(first));
    REQUIRE(returns_promptly(second));
    CHECK(first.get().deleted + second.get().deleted == 20000);
    CHECK(store.count_expired() == 0);
    CHECK(live() == "1000");
  }
  SUBCASE("a table lock held elsewhere ends gc with a lock timeout, not a wait") {
    expired_rows(100);
    pgkit::cache_options options;
    options.gc_lock_timeout = 200ms;
    pgkit::cache_store impatient{f.connections, options};
    lock_holder holder{f.db.url(), "LOCK TABLE pgkit.cache IN ACCESS EXCLUSIVE MODE"};
    auto pending = std::async(std::launch::async,
                              [&] { return pgkit_test::expect_error([&] { impatient.sweep(); }); });
    REQUIRE(returns_promptly(pending));
    auto e = pending.get();
    CHECK(e.kind() == pgkit::error_kind::lock_timeout);
    CHECK(contains(e.what(), "after deleting 0 expired entries in 0 batches"));
    CHECK(contains(e.hint(), "run the sweep again later"));
  }
}

TEST_CASE("pgkit::cache_store statements: prepared once per connection, or unnamed for PgBouncer") {
  pgkit_test::scratch_database db{"cache_statements"};
  {
    pqxx::connection connection{db.url()};
    pgkit::apply_modules(connection, {"cache"});
  }
  auto prepared_names = [](pgkit::pool& connections) {
    auto lease = connections.acquire();
    pqxx::nontransaction tx{*lease};
    auto rows = tx.exec(
        "SELECT coalesce(string_agg(name, ' ' ORDER BY name), '') FROM "
        "pg_prepared_statements");
    return rows[0][0].as<std::string>();
  };
  auto exercise = [](pgkit::cache_store& store) {
    for (int i = 0; i < 3; ++i) {
      store.set("page", "home", "x", 1h);
      CHECK(store.get("page", "home") == std::optional<std::string>{"x"});
      CHECK(store.get_many("page", {"home", "none"}) ==
            std::vector<std::optional<std::string>>{std::string{"x"}, std::nullopt});
    }
    store.set_many("page", {{"a", "1"}, {"b", "2"}}, 0ms);
    CHECK(store.get_many("page", {"a", "b"}) == std::vector<std::optional<std::string>>(2));
    CHECK(store.touch("page", "home", 2h));
    CHECK(store.expire("page", "home", 0ms));
    CHECK_FALSE(store.get("page", "home").has_value());
    CHECK(store.count_expired() == 0);
    CHECK(store.sweep().deleted == 0);
    CHECK(store.clear("page") == 0);
    CHECK_FALSE(store.remove("page", "home"));
  };
  auto config = pgkit::config_from_url(db.url(), "test");
  config.pool_size = 1;

  SUBCASE("direct: each statement is prepared once on the connection") {
    auto connections = std::make_shared<pgkit::pool>(config);
    pgkit::cache_store store{connections};
    exercise(store);
    // Names carry a hash of the schema (never the schema itself, which could push them past
    // PostgreSQL's 63 bytes); the sweep's statements are shared by gc and purge. A gc that runs
    // alone takes the advisory lock and deletes without the locking pass.
    std::string expected;
    for (const char* name : {"clear", "count_expired", "expire", "gc_alone", "get", "get_many",
                             "purge", "remove", "set", "set_many", "touch"})
      expected += pgkit::detail::statement_name("cache", name, "pgkit") + " ";
    expected += pgkit::detail::statement_name("sweep", "lock_alone", "");
    CHECK(prepared_names(*connections) == expected);
  }
  SUBCASE("two long schema names that share their first 50 bytes share one connection") {
    // Statement names used to hold the schema itself: PostgreSQL cut them at 63 bytes, so both
    // stores prepared the same name and the second failed with 42P05.
    const std::string prefix(50, 's');
    {
      pqxx::connection connection{db.url()};
      pgkit::apply_modules(connection, {"cache"}, prefix + "_first");
      pgkit::apply_modules(connection, {"cache"}, prefix + "_second");
    }
    auto connections = std::make_shared<pgkit::pool>(config);
    pgkit::cache_options first_options, second_options;
    first_options.schema = prefix + "_first";
    second_options.schema = prefix + "_second";
    pgkit::cache_store first{connections, first_options};
    pgkit::cache_store second{connections, second_options};
    first.set("page", "home", "first", 1h);
    second.set("page", "home", "second", 1h);
    CHECK(first.get("page", "home") == std::optional<std::string>{"first"});
    CHECK(second.get("page", "home") == std::optional<std::string>{"second"});
    CHECK(first.sweep().deleted == 0);
    CHECK(second.sweep().deleted == 0);
  }
  SUBCASE("pgbouncer-transaction: nothing is prepared, everything works the same") {
    config.pooler = pgkit::pooler_mode::pgbouncer_transaction;
    auto connections = std::make_shared<pgkit::pool>(config);
    pgkit::cache_store store{connections};
    exercise(store);
    CHECK(prepared_names(*connections).empty());
  }
}

TEST_CASE("glimr seeds") {
  SUBCASE("glimr: named caches never share a key; clear, sweep and count are per name") {
    cache_fixture f;
    pgkit::named_cache users{f.connections, "users"};
    auto shared = std::make_shared<pgkit::cache_store>(f.connections);
    pgkit::named_cache pages{shared, "pages"};
    pgkit::named_cache pages_again{shared, "pages"};
    users.set("42", "Ada", 1h);
    pages.set("42", "<h1>home</h1>", 1h);
    CHECK(users.get("42") == "Ada");
    CHECK(pages_again.get("42") == "<h1>home</h1>");
    // Expired entries of both names.
    users.set("old", "u", 0ms);
    pages.set("old", "p", 0ms);
    pages.set("older", "p", 0ms);
    CHECK(users.count_expired() == 1);
    CHECK(pages.count_expired() == 2);
    CHECK(pages.sweep().deleted == 2);
    CHECK(f.value("SELECT count(*) FROM pgkit.cache WHERE key = 'old'") == "1");
    CHECK(pages.clear() == 1);
    CHECK_FALSE(pages.get("42"));
    CHECK(users.get("42") == "Ada");
    CHECK(users.remove("42"));
    pgkit::sweep_options other;
    other.resource_type = "pages";
    CHECK_THROWS_AS(users.sweep(other), pgkit::usage_error);
    CHECK_THROWS_AS(pgkit::named_cache(f.connections, ""), pgkit::usage_error);
    CHECK_THROWS_AS(pgkit::named_cache(f.connections, std::string(1, '\0')), pgkit::usage_error);
  }
}
