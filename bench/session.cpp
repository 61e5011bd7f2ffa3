// bench/session: the session store's generate, get and set per second, on one connection and
// with 4 threads over a pool of 4, side by side with (1) a raw libpq baseline that runs the same
// statements (prepared once per connection, bytea parameters in binary, the same key and digest
// work) on one connection per thread, and (2) connect-pg-simple with pg on the same server at
// the same concurrency, when Node.js and the modules from scripts/bootstrap are present.
// Each figure is the best of several windows, the variants interleaved.
//   bench_session [URL]   (default: $PGKIT_BENCH_URL, $DATABASE_URL, else a throwaway server of its
//   own)

#include <libpq-fe.h>
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <pgkit/pgkit.hpp>
#include <pqxx/pqxx>

#include "support.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
constexpr auto k_window = std::chrono::milliseconds{1000};
constexpr int k_rounds = 4;
const std::vector<int> k_levels = {1, 4};
const char* const k_schema = "bench_session";
const std::vector<std::string> k_operations = {"generate", "get", "set"};

// About the size of what express-session stores for a signed-in user.
std::string session_data(long i) {
  return R"({"cookie":{"originalMaxAge":604800000,"httpOnly":true,"path":"/"},"user":42,)"
         R"("counter":)" +
         std::to_string(i) + R"(,"note":")" + std::string(48, 'x') + "\"}";
}

// Runs `work(thread, i)` from `threads` threads until the window closes; returns operations/s.
template <typename Setup, typename Work>
double rate(int threads, Setup&& setup, Work&& work) {
  std::atomic<long> done{0};
  std::atomic<bool> stop{false};
  std::atomic<int> ready{0};
  std::vector<std::thread> workers;
  clock_type::time_point started;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      auto state = setup(t);
      ++ready;
      while (ready.load() < threads)
        std::this_thread::yield();
      long local = 0;
      for (long i = t; !stop.load(std::memory_order_relaxed); i += threads, ++local)
        work(state, i);
      done += local;
    });
  }
  while (ready.load() < threads)
    std::this_thread::yield();
  started = clock_type::now();
  std::this_thread::sleep_for(k_window);
  stop = true;
  for (auto& worker : workers)
    worker.join();
  auto seconds = std::chrono::duration<double>(clock_type::now() - started).count();
  return static_cast<double>(done.load()) / seconds;
}

// The store's statements, written out for the raw libpq baseline.
struct raw_sql {
  std::string generate, get, set;
};

raw_sql statements_for(const std::string& schema) {
  std::string table = "\"" + schema + "\".session";
  std::string expiry = "now() + $3::bigint * interval '1 millisecond'";
  std::string slack = "$4::bigint * interval '1 millisecond'";
  return {"INSERT INTO " + table +
              " (key_hash, data, expires_at) VALUES ($1, $2, now() + $3::bigint * interval "
              "'1 millisecond')",
          "SELECT CASE WHEN expires_at > now() THEN data END, expires_at > now(), "
          "((extract(epoch FROM expires_at) - extract(epoch FROM now())) * 1000)::bigint, "
          "version FROM " +
              table + " WHERE key_hash = $1",
          "UPDATE " + table + " SET data = $2, expires_at = CASE WHEN " + expiry +
              " > expires_at - " + slack + " AND " + expiry + " < expires_at + " + slack +
              " THEN expires_at ELSE " + expiry +
              " END, version = version + 1, updated_at = now() WHERE key_hash = $1 AND "
              "expires_at > now() RETURNING version"};
}

std::string raw_key() {
  unsigned char random[32];
  randombytes_buf(random, sizeof random);
  char encoded[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
  sodium_bin2base64(encoded, sizeof encoded, random, sizeof random,
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return std::string{encoded, 43};
}

std::string raw_digest(const std::string& key) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  return std::string{reinterpret_cast<const char*>(digest), sizeof digest};
}

void check(PGresult* result, ExecStatusType expected, PGconn* connection) {
  if (PQresultStatus(result) != expected) {
    std::string message = PQerrorMessage(connection);
    PQclear(result);
    throw std::runtime_error("raw libpq: " + message);
  }
}

struct raw_connection {
  PGconn* connection = nullptr;
  ~raw_connection() { PQfinish(connection); }
};

// One raw operation: the key work, one prepared statement, the result read as pgkit reads it.
void raw_operation(PGconn* connection, const std::string& operation, const std::string& key,
                   const std::string& data) {
  static const std::string ttl = "604800000";
  static const std::string touch_interval = "60000";
  auto digest = raw_digest(key);
  if (operation == "generate" || operation == "set") {
    const char* values[] = {digest.data(), data.data(), ttl.c_str(), touch_interval.c_str()};
    int lengths[] = {static_cast<int>(digest.size()), static_cast<int>(data.size()), 0, 0};
    int formats[] = {1, 1, 0, 0};
    int count = operation == "set" ? 4 : 3;
    auto* result =
        PQexecPrepared(connection, operation.c_str(), count, values, lengths, formats, 0);
    check(result, operation == "set" ? PGRES_TUPLES_OK : PGRES_COMMAND_OK, connection);
    if (operation == "set" && PQntuples(result) != 1)
      throw std::runtime_error("raw libpq: a session went missing");
    PQclear(result);
    return;
  }
  const char* values[] = {digest.data()};
  int lengths[] = {static_cast<int>(digest.size())};
  int formats[] = {1};
  auto* result = PQexecPrepared(connection, "get", 1, values, lengths, formats, 0);
  check(result, PGRES_TUPLES_OK, connection);
  if (PQntuples(result) != 1 || PQgetvalue(result, 0, 1)[0] != 't')
    throw std::runtime_error("raw libpq: a session went missing");
  std::size_t length = 0;
  auto* bytes =
      PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(result, 0, 0)), &length);
  std::string read{reinterpret_cast<const char*>(bytes), length};
  PQfreemem(bytes);
  volatile long remaining = std::atol(PQgetvalue(result, 0, 2));
  volatile long version = std::atol(PQgetvalue(result, 0, 3));
  (void)remaining;
  (void)version;
  PQclear(result);
}

struct measured {
  std::map<std::pair<std::string, int>, double> pgkit, raw, peer;
};

// connect-pg-simple's figures from bench/session_connect_pg_simple.js, or none without Node.js.
void run_peer(const std::string& url, measured& out) {
  std::string modules = std::string{PGKIT_BENCH_SOURCE_DIR} + "/build/tools/node_modules";
  if (!std::filesystem::exists(modules + "/connect-pg-simple") ||
      bench::run_script("command -v node").empty()) {
    static bool said = false;
    if (!said)
      std::printf("connect-pg-simple: skipped (needs node and scripts/bootstrap's npm modules)\n");
    said = true;
    return;
  }
  std::string levels;
  for (int level : k_levels)
    levels += (levels.empty() ? "" : ",") + std::to_string(level);
  auto seconds = std::chrono::duration<double>(k_window).count();
  auto output = bench::run_script("NODE_PATH='" + modules + "' node '" + PGKIT_BENCH_SOURCE_DIR +
                                  "/bench/session_connect_pg_simple.js' '" + url + "' " + levels +
                                  " " + std::to_string(seconds) + " 1");
  std::istringstream lines{output};
  std::string line;
  while (std::getline(lines, line)) {
    // {"concurrency":1,"generate":123.4,"get":...,"set":...}
    auto number = [&line](const std::string& name) {
      auto at = line.find("\"" + name + "\":");
      return at == std::string::npos ? -1.0 : std::atof(line.c_str() + at + name.size() + 3);
    };
    int level = static_cast<int>(number("concurrency"));
    for (const auto& operation : k_operations) {
      auto& best = out.peer[{operation, level}];
      best = std::max(best, number(operation));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  bench::server server{argc, argv, "pgkit-bench-session"};
  const std::string& url = server.url();
  int status = 0;
  try {
    if (sodium_init() < 0)
      throw std::runtime_error("libsodium could not be initialised");
    auto config = pgkit::config_from_url(url, "bench");
    {
      pqxx::connection admin{config.conninfo()};
      pqxx::nontransaction{admin}.exec(std::string{"DROP SCHEMA IF EXISTS "} + k_schema +
                                       " CASCADE");
      pgkit::apply_modules(admin, {"session"}, k_schema);
    }
    const auto sql = statements_for(k_schema);
    measured results;
    config.schema = k_schema;
    std::map<int, std::shared_ptr<pgkit::pool>> pools;
    std::map<int, std::unique_ptr<pgkit::session_store>> stores;
    for (int level : k_levels) {
      config.pool_size = static_cast<std::size_t>(level);
      pools[level] = std::make_shared<pgkit::pool>(config);
      pools[level]->warm_up();
      stores[level] = std::make_unique<pgkit::session_store>(pools[level]);
    }
    std::vector<std::string> keys;
    for (int i = 0; i < 2000; ++i)
      keys.push_back(stores[1]->generate(session_data(i)));

    auto pgkit_run = [&](int level, const std::string& operation) {
      auto& store = *stores[level];
      return rate(
          level, [](int) { return 0; },
          [&](int, long i) {
            const auto& key = keys[static_cast<std::size_t>(i) % keys.size()];
            if (operation == "generate") {
              store.generate(session_data(i));
            } else if (operation == "get") {
              if (!store.get(key))
                throw std::runtime_error("pgkit: a session went missing");
            } else if (store.set(key, session_data(i)) != pgkit::set_result::updated) {
              throw std::runtime_error("pgkit: a session went missing");
            }
          });
    };
    auto raw_run = [&](int level, const std::string& operation) {
      return rate(
          level,
          [&](int) {
            auto own = std::make_unique<raw_connection>();
            own->connection = PQconnectdb(config.conninfo().c_str());
            if (PQstatus(own->connection) != CONNECTION_OK)
              throw std::runtime_error(PQerrorMessage(own->connection));
            for (auto [name, text] : {std::pair{"generate", &sql.generate},
                                      std::pair{"get", &sql.get}, std::pair{"set", &sql.set}}) {
              check(PQprepare(own->connection, name, text->c_str(), 0, nullptr), PGRES_COMMAND_OK,
                    own->connection);
            }
            return own;
          },
          [&](std::unique_ptr<raw_connection>& own, long i) {
            std::string key = operation == "generate"
                                  ? raw_key()
                                  : keys[static_cast<std::size_t>(i) % keys.size()];
            raw_operation(own->connection, operation, key, session_data(i));
          });
    };
    for (int level : k_levels) {  // warm-up
      for (const auto& operation : k_operations) {
        pgkit_run(level, operation);
        raw_run(level, operation);
      }
    }
    // Rounds interleave the three variants, so that a busy neighbour does not favour one.
    for (int round = 0; round < k_rounds; ++round) {
      for (int level : k_levels) {
        for (const auto& operation : k_operations) {
          auto& p = results.pgkit[{operation, level}];
          p = std::max(p, pgkit_run(level, operation));
          auto& r = results.raw[{operation, level}];
          r = std::max(r, raw_run(level, operation));
        }
      }
      run_peer(url, results);
    }
    for (auto& entry : pools)
      entry.second->close(std::chrono::seconds{5});

    std::printf(
        "pgkit session store against %s: operations per second, best of %d windows of "
        "%.1f s\n",
        config.describe().c_str(), k_rounds, std::chrono::duration<double>(k_window).count());
    std::printf("%-9s %7s | %10s %10s %6s | %17s %6s\n", "operation", "threads", "pgkit",
                "raw libpq", "ratio", "connect-pg-simple", "ratio");
    for (int level : k_levels) {
      for (const auto& operation : k_operations) {
        double p = results.pgkit[{operation, level}];
        double r = results.raw[{operation, level}];
        std::printf("%-9s %7d | %10.0f %10.0f %6.2f |", operation.c_str(), level, p, r, p / r);
        auto peer = results.peer.find({operation, level});
        if (peer != results.peer.end() && peer->second > 0)
          std::printf(" %17.0f %6.2f\n", peer->second, p / peer->second);
        else
          std::printf(" %17s %6s\n", "-", "-");
      }
    }
    std::printf(
        "ratio: pgkit / baseline (above 1: pgkit is faster). Targets: pgkit >= 2x "
        "connect-pg-simple; close to raw libpq.\n");
    pqxx::connection admin{config.conninfo()};
    pqxx::nontransaction{admin}.exec(std::string{"DROP SCHEMA "} + k_schema + " CASCADE");
  } catch (const std::exception& e) {
    std::cerr << "bench_session: " << e.what() << '\n';
    status = 1;
  }
  return status;
}
