// The stores, migrations and sweeps on a real Citus cluster: a coordinator and two workers
// (scripts/pg-sandbox cluster), the tables distributed by the migration docs/scaling.md shows.
// Every test talks to the coordinator, each in a schema of its own; a cluster that is not
// there fails the suite.

#include <doctest/doctest.h>

#include <pqxx/pqxx>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "pgkit/auth.hpp"
#include "pgkit/cache.hpp"
#include "pgkit/error.hpp"
#include "pgkit/pool.hpp"
#include "pgkit/session.hpp"

using namespace std::chrono_literals;
using pgkit_test::eventually;
using pgkit_test::query_value;
using pgkit_test::run_pgkit;

namespace {

// A value of the cluster's state file (scripts/pg-sandbox cluster --state).
std::string state_value(const std::string& key) {
  const char* file = std::getenv("PGKIT_TEST_SANDBOX");
  if (file == nullptr)
    FAIL("run the citus suite through ctest --preset citus");
  std::ifstream in{file};
  if (!in)
    FAIL("no Citus cluster state in " << file << " (citus.start failed?)");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + "=", 0) == 0) {
      auto value = line.substr(key.size() + 1);
      if (value.size() >= 2 && value.front() == '\'' && value.back() == '\'')
        value = value.substr(1, value.size() - 2);
      return value;
    }
  }
  FAIL("the cluster state file " << file << " has no " << key);
  return {};
}

std::string coordinator() {
  return state_value("PGKIT_SANDBOX_URL");
}

// The workers' URLs by port.
std::map<std::string, std::string> workers() {
  std::map<std::string, std::string> by_port;
  std::istringstream urls{state_value("PGKIT_CITUS_WORKER_URLS")};
  std::string url;
  while (urls >> url) {
    auto colon = url.rfind(':');
    by_port[url.substr(colon + 1, url.find('/', colon) - colon - 1)] = url;
  }
  return by_port;
}

void run_sql(const std::string& url, const std::string& sql) {
  pqxx::connection connection{url};
  pqxx::nontransaction tx{connection};
  tx.exec(sql);
}

long long number(const std::string& sql) {
  return std::stoll(query_value(coordinator(), sql));
}

// The migration that distributes pgkit's tables, as docs/scaling.md shows it: the ```sql block
// after the line that names it.
std::string distribute_migration() {
  std::ifstream in{pgkit_test::source_dir() + "/docs/scaling.md"};
  std::string line, sql;
  bool after_marker = false, inside = false;
  while (std::getline(in, line)) {
    if (inside) {
      if (line == "```")
        break;
      sql += line + "\n";
    } else if (line.find("applied by the citus tests: distribute") != std::string::npos) {
      after_marker = true;
    } else if (after_marker && line == "```sql") {
      inside = true;
    }
  }
  if (sql.empty())
    FAIL("docs/scaling.md shows no distribution migration");
  return sql;
}

// A schema of its own on the cluster: pgkit apply cache session auth on the coordinator, then
// the distribution migration as a user module (pgkit apply -d DIR citus_layout).
class cluster_schema {
 public:
  explicit cluster_schema(const std::string& label) {
    std::random_device random;
    m_name = "c_" + label + "_" + std::to_string(random() % 1000000);
    m_dir = pgkit_test::temp_dir("pgkit-citus");
    std::filesystem::create_directories(m_dir + "/citus_layout");
    std::ofstream{m_dir + "/citus_layout/20270101000000_distribute.sql"} << distribute_migration();
    auto builtin = run_pgkit(
        {"--addr", coordinator(), "--schema", m_name, "apply", "cache", "session", "auth"});
    INFO(builtin.err);
    REQUIRE(builtin.exit_code == 0);
    auto distributed = run_pgkit(
        {"--addr", coordinator(), "--schema", m_name, "apply", "-d", m_dir, "citus_layout"});
    INFO(distributed.err);
    REQUIRE(distributed.exit_code == 0);
  }
  ~cluster_schema() {
    try {
      run_sql(coordinator(), "DROP SCHEMA " + m_name + " CASCADE");
    } catch (...) {
      // The cluster is thrown away at the end of the run anyway.
    }
  }
  cluster_schema(const cluster_schema&) = delete;
  cluster_schema& operator=(const cluster_schema&) = delete;

  const std::string& name() const { return m_name; }
  std::string table(const std::string& table) const { return m_name + "." + table; }

  std::shared_ptr<pgkit::pool> pool() const {
    auto config = pgkit::config_from_url(coordinator(), "citus-test");
    config.pool_size = 4;
    config.schema = m_name;
    return std::make_shared<pgkit::pool>(config);
  }

 private:
  std::string m_name;
  std::string m_dir;
};

// The worker port that holds the shard of `key` in `table`.
std::string port_of(const std::string& table, const std::string& key) {
  return query_value(coordinator(),
                     "SELECT nodeport FROM pg_dist_shard_placement WHERE shardid = "
                     "get_shard_id_for_distribution_column('" +
                         table + "', '" + key + "')");
}

// One key of the cache table on each worker: {port: key}.
std::map<std::string, std::string> key_per_worker(const cluster_schema& schema) {
  std::map<std::string, std::string> keys;
  for (int i = 0; keys.size() < 2 && i < 100; ++i) {
    auto key = "key-" + std::to_string(i);
    keys.emplace(port_of(schema.table("cache"), key), key);
  }
  REQUIRE(keys.size() == 2);
  return keys;
}

}  // namespace

TEST_CASE(
    "citus: the cache table is distributed over both workers, and keys on each read and "
    "write") {
  cluster_schema schema{"dist"};
  CHECK(query_value(coordinator(),
                    "SELECT citus_table_type || ' ' || distribution_column FROM citus_tables "
                    "WHERE table_name = '" +
                        schema.table("cache") + "'::regclass") == "distributed key");
  CHECK(query_value(coordinator(),
                    "SELECT distribution_column FROM citus_tables WHERE table_name = '" +
                        schema.table("session") + "'::regclass") == "key_hash");
  CHECK(number("SELECT count(DISTINCT nodeport) FROM citus_shards WHERE table_name = '" +
               schema.table("cache") + "'::regclass") == 2);
  // The near tier's triggers are gone: Citus refuses triggers on a distributed table.
  CHECK(number("SELECT count(*) FROM pg_trigger WHERE tgrelid = '" + schema.table("cache") +
               "'::regclass AND NOT tgisinternal") == 0);

  pgkit::cache_store cache{schema.pool()};
  auto nodes = workers();
  REQUIRE(nodes.size() == 2);
  for (const auto& [port, key] : key_per_worker(schema)) {
    CAPTURE(port);
    cache.set("page", key, "on " + port);
    CHECK(cache.get("page", key) == std::optional<std::string>{"on " + port});
    // The row is in the shard on that worker, and only there.
    auto shard = query_value(coordinator(), "SELECT get_shard_id_for_distribution_column('" +
                                                schema.table("cache") + "', '" + key + "')");
    CHECK(query_value(nodes.at(port), "SELECT convert_from(value, 'UTF8') FROM " +
                                          schema.table("cache") + "_" + shard + " WHERE key = '" +
                                          key + "'") == "on " + port);
    CHECK(cache.remove("page", key));
    CHECK_FALSE(cache.get("page", key));
  }
}

TEST_CASE("citus: cache_store get, set, get_many, set_many, remove, expire, touch, clear, gc") {
  cluster_schema schema{"cache"};
  pgkit::cache_store cache{schema.pool()};
  std::vector<std::pair<std::string, std::string>> entries;
  std::vector<std::string> keys;
  for (int i = 0; i < 100; ++i) {
    keys.push_back("k" + std::to_string(i));
    entries.emplace_back(keys.back(), "v" + std::to_string(i));
  }
  cache.set_many("item", entries);
  CHECK(number("SELECT count(DISTINCT nodeport) FROM citus_shards s JOIN " + schema.table("cache") +
               " c ON get_shard_id_for_distribution_column('" + schema.table("cache") +
               "', c.key) = s.shardid") == 2);
  auto values = cache.get_many("item", keys);
  REQUIRE(values.size() == 100);
  for (std::size_t i = 0; i < values.size(); ++i)
    CHECK(values[i] == std::optional<std::string>{entries[i].second});
  CHECK(cache.get_many("item", {"k1", "absent", "k2"}) ==
        std::vector<std::optional<std::string>>{"v1", std::nullopt, "v2"});

  cache.set("item", "k1", "changed", 1h);
  CHECK(cache.get("item", "k1") == std::optional<std::string>{"changed"});
  CHECK(cache.remove("item", "k2"));
  CHECK_FALSE(cache.remove("item", "k2"));
  CHECK_FALSE(cache.get("item", "k2"));
  CHECK(cache.touch("item", "k3", 2h));
  CHECK_FALSE(cache.touch("item", "absent", 2h));

  // expire: the entries read as gone at once, and the sweep deletes them shard by shard.
  for (int i = 10; i < 40; ++i)
    CHECK(cache.expire("item", keys[static_cast<std::size_t>(i)], 0ms));
  CHECK_FALSE(cache.get("item", "k10"));  // which deletes it, from its shard
  CHECK(cache.count_expired() == 29);
  pgkit::sweep_options options;
  options.batch_size = 4;  // several batches per shard
  auto swept = cache.sweep(options);
  CHECK(swept.deleted == 29);
  CHECK(swept.complete);
  CHECK(number("SELECT count(*) FROM " + schema.table("cache")) == 69);
  CHECK(cache.count_expired() == 0);

  CHECK(cache.clear("item") == 69);
  CHECK(number("SELECT count(*) FROM " + schema.table("cache")) == 0);
}

TEST_CASE("citus: a write to a key on a worker's shard invalidates a near reader") {
  cluster_schema schema{"near"};
  pgkit::cache_options near;
  near.near.emplace();
  pgkit::cache_store reader{schema.pool(), near};
  pgkit::cache_store writer{schema.pool()};
  for (const auto& [port, key] : key_per_worker(schema)) {
    CAPTURE(port);
    writer.set("page", key, "first");
    // Served by the near tier once filled (the notification of the write above may still
    // arrive and drop the first fill): the table is not read for it.
    CHECK(eventually([&] {
      auto before = reader.near_statistics().hits;
      return reader.get("page", key) == std::optional<std::string>{"first"} &&
             reader.near_statistics().hits == before + 1;
    }));
    // ...and the store's write, on the coordinator, announces itself.
    writer.set("page", key, "second");
    CHECK(eventually(
        [&] { return reader.get("page", key) == std::optional<std::string>{"second"}; }));
    writer.remove("page", key);
    CHECK(eventually([&] { return !reader.get("page", key); }));
  }
}

TEST_CASE("citus: session_store generate, get, set, touch, clear and the sweep") {
  cluster_schema schema{"session"};
  pgkit::session_store sessions{schema.pool()};
  std::vector<std::string> keys;
  for (int i = 0; i < 20; ++i)
    keys.push_back(sessions.generate("user=" + std::to_string(i)));
  std::map<std::string, int> ports;
  for (const auto& key : keys) {
    auto session = sessions.get(key);
    REQUIRE(session);
    CHECK(session->version == 1);
  }
  CHECK(number("SELECT count(DISTINCT nodeport) FROM citus_shards s JOIN " +
               schema.table("session") + " t ON get_shard_id_for_distribution_column('" +
               schema.table("session") + "', t.key_hash) = s.shardid") == 2);
  CHECK(sessions.set(keys[0], "user=0; cart=3") == pgkit::set_result::updated);
  CHECK(sessions.get(keys[0])->data == "user=0; cart=3");
  CHECK(sessions.compare_and_set(keys[0], 1, "stale") == pgkit::set_result::conflict);
  CHECK(sessions.compare_and_set(keys[0], 2, "fresh") == pgkit::set_result::updated);
  sessions.touch(keys[1], 48h);
  CHECK(sessions.clear(keys[2]));
  CHECK_FALSE(sessions.get(keys[2]));

  // 300 expired sessions over every shard; the sweep deletes them and nothing else.
  run_sql(coordinator(), "INSERT INTO " + schema.table("session") +
                             " (key_hash, expires_at) SELECT sha256(('expired ' || i)::bytea), "
                             "now() - interval '1 minute' FROM generate_series(1, 300) i");
  pgkit::sweep_options options;
  options.batch_size = 25;
  options.scope = pgkit::sweep_scope::session;
  auto swept = sessions.sweep(options);
  CHECK(swept.deleted == 300);
  CHECK(swept.complete);
  CHECK(number("SELECT count(*) FROM " + schema.table("session")) == 19);
  CHECK(sessions.get(keys[0])->data == "fresh");
}

TEST_CASE("citus: auth_store sign-up, sign-in, sessions and single-use tokens") {
  cluster_schema schema{"auth"};
  pgkit::auth_store auth{schema.pool()};
  pgkit::new_user signup;
  signup.email = "ada@example.org";
  signup.password = "correct horse";
  auto user = auth.create_user(signup);
  CHECK(pgkit_test::expect_error([&] { auth.create_user(signup); }).kind() ==
        pgkit::error_kind::unique_violation);
  CHECK_FALSE(auth.sign_in("ada@example.org", "wrong"));
  auto signed_in = auth.sign_in("ada@example.org", "correct horse");
  REQUIRE(signed_in);
  CHECK(signed_in->who.id == user.id);
  auto session = auth.get_session(signed_in->token);
  REQUIRE(session);
  CHECK(session->user_id == user.id);
  CHECK(auth.delete_session(signed_in->token));
  CHECK_FALSE(auth.get_session(signed_in->token));

  // A one-time token used by eight threads at once works exactly once.
  auto token = auth.create_one_time_token(user.id, pgkit::token_type::magic_link);
  std::atomic<int> used{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      if (auth.use_one_time_token(token, pgkit::token_type::magic_link) ==
          std::optional<std::string>{user.id})
        ++used;
    });
  }
  for (auto& thread : threads)
    thread.join();
  CHECK(used == 1);
}

TEST_CASE("citus: pgkit cache-gc and session-purge sweep shard by shard, skipping locked rows") {
  cluster_schema schema{"cli"};
  run_sql(coordinator(), "INSERT INTO " + schema.table("cache") +
                             " (resource_type, key, expires_at) SELECT 'page', 'old' || i, "
                             "now() - interval '1 minute' FROM generate_series(1, 200) i");
  run_sql(coordinator(), "INSERT INTO " + schema.table("cache") +
                             " (resource_type, key) SELECT 'page', 'live' || i "
                             "FROM generate_series(1, 50) i");
  run_sql(coordinator(), "INSERT INTO " + schema.table("session") +
                             " (key_hash, expires_at) SELECT sha256(('expired ' || i)::bytea), "
                             "now() - interval '1 minute' FROM generate_series(1, 120) i");

  // A writer holds one expired row in its shard: the sweep leaves it and does not wait.
  pqxx::connection holder{coordinator()};
  pqxx::work held{holder};
  held.exec("SELECT 1 FROM " + schema.table("cache") +
            " WHERE resource_type = 'page' AND key = 'old1' FOR UPDATE");

  auto gc = run_pgkit({"--addr", coordinator(), "--schema", schema.name(), "cache-gc",
                       "--batch-size", "16", "--lock-timeout", "5"});
  INFO(gc.err);
  CHECK(gc.exit_code == 0);
  CHECK(number("SELECT count(*) FROM " + schema.table("cache") + " WHERE expires_at <= now()") ==
        1);
  CHECK(number("SELECT count(*) FROM " + schema.table("cache")) == 51);
  held.abort();

  auto purge = run_pgkit(
      {"--addr", coordinator(), "--schema", schema.name(), "session-purge", "--batch-size", "16"});
  INFO(purge.err);
  CHECK(purge.exit_code == 0);
  CHECK(number("SELECT count(*) FROM " + schema.table("session")) == 0);
}
