// bench/cache: the cache store against a raw libpq prepared statement running the same SQL, and
// against Redis (GET / SET / MGET) when redis-server is installed, on 1, 2 and 4 threads: get
// hit, near get hit (the near tier), get miss, set, get_many(100). Prints operations per second
// and the ratios. Then the near tier on its own: invalidation latency from a writer's commit to
// another process (a copy of this program) no longer serving the old value, its hits on 1, 2
// and 4 threads against an unordered_map under a shared_mutex, a Zipf workload against Redis,
// RSS over 1 million distinct keys, and what its trigger costs writes.
//   bench_cache [URL]   (default: $PGKIT_BENCH_URL, $DATABASE_URL, else a sandbox of its own)
// PGKIT_BENCH_SECONDS sets the time per run (default 1), PGKIT_BENCH_ROUNDS the runs of each
// measurement, interleaved, of which the best counts (default 3), PGKIT_BENCH_WRITES the
// writes of the latency measurement (default 10000), PGKIT_BENCH_NEAR_KEYS the keys of the RSS
// measurement (default 1000000), PGKIT_BENCH_SECTIONS a comma-separated subset of the
// sections table, latency, scaling, zipf, memory, trigger and citus (default all). With
// PGKIT_BENCH_CITUS_URL (a Citus coordinator), the citus section runs get hit, set and
// get_many(100) on a distributed cache table beside this server.

#include <arpa/inet.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cache_common.hpp"

namespace {

using bench::clock_type;

constexpr int k_keys = 10000;
constexpr std::size_t k_value_size = 100;
constexpr int k_many = 100;
constexpr const char* k_type = "bench";

std::string key_of(std::uint64_t i) {
  return "key:" + std::to_string(i);
}
std::string missing_key_of(std::uint64_t i) {
  return "nokey:" + std::to_string(i);
}
std::string value_of(std::uint64_t i) {
  std::string value(k_value_size, 'v');
  for (std::size_t b = 0; b < value.size(); ++b)
    value[b] = static_cast<char>((i * 31 + b * 7) & 0xff);
  return value;
}

// A small fast random number generator per thread (xorshift64).
struct random_keys {
  std::uint64_t state;
  explicit random_keys(std::uint64_t seed) : state(seed * 0x9E3779B97F4A7C15ULL + 1) {}
  std::uint64_t next() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state % k_keys;
  }
};

// Runs `threads` workers; each gets its operation from make(thread_index) (set-up such as
// connecting happens there, untimed), warms up for a fifth of a second, then runs for
// `duration`. Returns operations per second over all threads.
double throughput(int threads, double duration,
                  const std::function<std::function<void()>(int)>& make) {
  std::atomic<int> phase{0};  // 0 warm-up, 1 measured, 2 stop
  std::atomic<int> ready{0};
  std::atomic<long> done{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::function<void()> op;
      try {
        op = make(t);
      } catch (const std::exception& e) {
        std::cerr << "bench: set-up failed: " << e.what() << '\n';
        failed = true;
      }
      ++ready;
      long count = 0;
      try {
        while (op && phase.load(std::memory_order_relaxed) < 2) {
          op();
          if (phase.load(std::memory_order_relaxed) == 1)
            ++count;
        }
      } catch (const std::exception& e) {
        std::cerr << "bench: operation failed: " << e.what() << '\n';
        failed = true;
      }
      done += count;
    });
  }
  while (ready < threads)
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  std::this_thread::sleep_for(std::chrono::milliseconds{200});
  phase = 1;
  auto started = clock_type::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(duration));
  phase = 2;
  auto elapsed = clock_type::now() - started;
  for (auto& worker : workers)
    worker.join();
  if (failed)
    throw std::runtime_error("a benchmark worker failed");
  return static_cast<double>(done.load()) / bench::seconds(elapsed);
}

// ---- raw libpq: the same statements the store prepares, on a connection of each thread's own.

struct libpq_connection {
  PGconn* handle = nullptr;
  explicit libpq_connection(const std::string& url) {
    handle = PQconnectdb(url.c_str());
    if (PQstatus(handle) != CONNECTION_OK)
      throw std::runtime_error(PQerrorMessage(handle));
  }
  ~libpq_connection() { PQfinish(handle); }
  libpq_connection(const libpq_connection&) = delete;
  libpq_connection& operator=(const libpq_connection&) = delete;

  void prepare(const char* name, const std::string& sql) {
    PGresult* result = PQprepare(handle, name, sql.c_str(), 0, nullptr);
    bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
    PQclear(result);
    if (!ok)
      throw std::runtime_error(PQerrorMessage(handle));
  }
  // Runs a prepared statement with results in binary format, as the store does; returns the
  // result (the caller clears it).
  PGresult* run(const char* name, int count, const char* const* values, const int* lengths,
                const int* formats) {
    PGresult* result = PQexecPrepared(handle, name, count, values, lengths, formats, 1);
    auto status = PQresultStatus(result);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      std::string message = PQresultErrorMessage(result);
      PQclear(result);
      throw std::runtime_error(message);
    }
    return result;
  }
};

// Copies a binary-format field, as the store does.
std::string field(PGresult* result, int row, int column) {
  return {PQgetvalue(result, row, column),
          static_cast<std::size_t>(PQgetlength(result, row, column))};
}

// Decodes a binary-format bigint field.
std::uint64_t int8_field(PGresult* result, int row, int column) {
  const auto* data = reinterpret_cast<const unsigned char*>(PQgetvalue(result, row, column));
  std::uint64_t value = 0;
  for (int i = 0; i < 8; ++i)
    value = (value << 8) | data[i];
  return value;
}

std::string text_array(const std::vector<std::string>& keys) {
  std::string out = "{";
  for (std::size_t i = 0; i < keys.size(); ++i) {
    out += i == 0 ? "\"" : ",\"";
    out += keys[i];
    out += '"';
  }
  return out + "}";
}

// ---- Redis over its own protocol (RESP), on a server the benchmark starts.

class redis_server {
 public:
  redis_server() {
    int probe = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    ::bind(probe, reinterpret_cast<sockaddr*>(&address), size);
    ::getsockname(probe, reinterpret_cast<sockaddr*>(&address), &size);
    m_port = ntohs(address.sin_port);
    ::close(probe);
    std::string port = std::to_string(m_port);
    m_pid = ::fork();
    if (m_pid == 0) {
      int quiet = ::open("/dev/null", O_WRONLY);
      ::dup2(quiet, STDOUT_FILENO);
      ::execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
               "--dir", "/tmp", static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~redis_server() {
    if (m_pid > 0) {
      ::kill(m_pid, SIGTERM);
      ::waitpid(m_pid, nullptr, 0);
    }
  }
  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;
  int port() const { return m_port; }

 private:
  pid_t m_pid = -1;
  int m_port = 0;
};

class redis_client {
 public:
  explicit redis_client(int port) {
    auto deadline = clock_type::now() + std::chrono::seconds{10};
    for (;;) {
      m_fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_port = htons(static_cast<std::uint16_t>(port));
      address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::connect(m_fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0)
        break;
      ::close(m_fd);
      if (clock_type::now() > deadline)
        throw std::runtime_error("redis-server did not start");
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
    int on = 1;
    ::setsockopt(m_fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  }
  ~redis_client() { ::close(m_fd); }
  redis_client(const redis_client&) = delete;
  redis_client& operator=(const redis_client&) = delete;

  /// Sends one command and reads its reply; returns how many non-null bulk strings it held.
  std::size_t command(const std::vector<std::string>& words) {
    std::string out = "*" + std::to_string(words.size()) + "\r\n";
    for (const auto& word : words) {
      out += "$" + std::to_string(word.size()) + "\r\n";
      out += word;
      out += "\r\n";
    }
    for (std::size_t sent = 0; sent < out.size();) {
      auto n = ::send(m_fd, out.data() + sent, out.size() - sent, 0);
      if (n <= 0)
        throw std::runtime_error("redis: send failed");
      sent += static_cast<std::size_t>(n);
    }
    return read_reply();
  }

 private:
  std::string line() {
    for (;;) {
      auto end = m_buffer.find("\r\n", m_pos);
      if (end != std::string::npos) {
        std::string text = m_buffer.substr(m_pos, end - m_pos);
        m_pos = end + 2;
        return text;
      }
      fill();
    }
  }
  void need(std::size_t bytes) {
    while (m_buffer.size() - m_pos < bytes)
      fill();
  }
  void fill() {
    if (m_pos > 0) {
      m_buffer.erase(0, m_pos);
      m_pos = 0;
    }
    char chunk[65536];
    auto n = ::recv(m_fd, chunk, sizeof chunk, 0);
    if (n <= 0)
      throw std::runtime_error("redis: connection closed");
    m_buffer.append(chunk, static_cast<std::size_t>(n));
  }
  std::size_t read_reply() {
    std::string head = line();
    switch (head.at(0)) {
      case '+':
      case ':':
        return 0;
      case '-':
        throw std::runtime_error("redis: " + head.substr(1));
      case '$': {
        long length = std::stol(head.substr(1));
        if (length < 0)
          return 0;
        need(static_cast<std::size_t>(length) + 2);
        m_pos += static_cast<std::size_t>(length) + 2;
        return 1;
      }
      case '*': {
        long count = std::stol(head.substr(1));
        std::size_t values = 0;
        for (long i = 0; i < count; ++i)
          values += read_reply();
        return values;
      }
      default:
        throw std::runtime_error("redis: unexpected reply " + head);
    }
  }

  int m_fd = -1;
  std::string m_buffer;
  std::size_t m_pos = 0;
};

bool redis_installed() {
  return std::system("command -v redis-server >/dev/null 2>&1") == 0;
}

struct row_result {
  double pgkit = 0, libpq = 0, redis = 0;
};

void print_row(int threads, const char* operation, const char* unit, const row_result& r) {
  std::printf("%7d  %-14s %-6s %11.0f %11.0f %7.2f", threads, operation, unit, r.pgkit, r.libpq,
              r.pgkit / r.libpq);
  if (r.redis > 0)
    std::printf(" %11.0f %7.2f", r.redis, r.pgkit / r.redis);
  std::printf("\n");
  std::fflush(stdout);
}

// ---- The near tier.

pgkit::cache_options near_options_for(const std::string& schema, std::size_t max_entries) {
  pgkit::cache_options options;
  options.schema = schema;
  options.near.emplace();
  options.near->max_entries = max_entries;
  return options;
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch())
      .count();
}

// Shared between the writer and the reader process (CLOCK_MONOTONIC is system-wide, so their
// steady clocks agree).
constexpr std::size_t k_max_writes = 100000;
struct latency_board {
  std::atomic<int> ready;
  std::atomic<bool> stop;
  std::atomic<std::uint64_t> seen;  // the newest version the reader has served
  std::atomic<std::int64_t> seen_at[k_max_writes + 1];
};

latency_board* map_board(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR);
  if (fd < 0 || ::ftruncate(fd, sizeof(latency_board)) != 0)
    throw std::runtime_error("cannot open " + path);
  void* memory = ::mmap(nullptr, sizeof(latency_board), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (memory == MAP_FAILED)
    throw std::runtime_error("cannot map " + path);
  return static_cast<latency_board*>(memory);
}

// The other process: serves key "k" from its near tier, polling every ~20 us, and notes when it
// first serves each new version.
int near_reader(const std::string& url, const std::string& schema, const std::string& path) {
  auto* board = map_board(path);
  auto config = pgkit::config_from_url(url, "bench");
  config.pool_size = 1;
  pgkit::cache_store store{std::make_shared<pgkit::pool>(config), near_options_for(schema, 100)};
  std::uint64_t served = 0;
  while (!board->stop.load()) {
    auto value = store.get("latency", "k");
    std::uint64_t version = value ? std::stoull(*value) : 0;
    if (version > served && version <= k_max_writes) {
      board->seen_at[version].store(now_ns());
      board->seen.store(version);
      served = version;
    }
    if (board->ready.load() == 0 && store.near_statistics().hits > 0)
      board->ready.store(1);
    std::this_thread::sleep_for(std::chrono::microseconds{20});
  }
  return 0;
}

void invalidation_latency(const std::string& url, const std::string& schema,
                          pgkit::cache_store& writer, std::size_t writes) {
  writes = std::min(writes, k_max_writes);
  char path[] = "/tmp/pgkit-bench-near-XXXXXX";
  int fd = ::mkstemp(path);
  if (fd < 0)
    throw std::runtime_error("mkstemp failed");
  ::close(fd);
  auto* board = map_board(path);
  writer.set("latency", "k", "0", pgkit::never_expires);
  std::string self = "/proc/self/exe", mode = "--near-reader", url_copy = url, schema_copy = schema,
              path_copy = path;
  char* child_argv[] = {self.data(),        mode.data(),      url_copy.data(),
                        schema_copy.data(), path_copy.data(), nullptr};
  pid_t child = 0;
  if (::posix_spawn(&child, self.c_str(), nullptr, nullptr, child_argv, environ) != 0)
    throw std::runtime_error("cannot start the reader process");
  auto finish = [&] {
    board->stop.store(true);
    ::waitpid(child, nullptr, 0);
    ::munmap(board, sizeof(latency_board));
    ::unlink(path);
  };
  try {
    auto deadline = clock_type::now() + std::chrono::seconds{30};
    while (board->ready.load() == 0) {
      if (clock_type::now() > deadline)
        throw std::runtime_error("the reader process did not start");
      std::this_thread::sleep_for(std::chrono::milliseconds{1});
    }
    std::vector<std::int64_t> latencies;
    for (std::uint64_t version = 1; version <= writes; ++version) {
      writer.set("latency", "k", std::to_string(version), pgkit::never_expires);
      auto committed = now_ns();
      auto wait_until = clock_type::now() + std::chrono::seconds{5};
      while (board->seen.load() < version) {
        if (clock_type::now() > wait_until)
          throw std::runtime_error("the reader still served the old value after 5 s");
        std::this_thread::sleep_for(std::chrono::microseconds{10});
      }
      latencies.push_back(board->seen_at[version].load() - committed);
    }
    finish();
    std::sort(latencies.begin(), latencies.end());
    auto at = [&](double q) {
      return static_cast<double>(latencies[static_cast<std::size_t>(
                 q * static_cast<double>(latencies.size() - 1))]) /
             1000.0;
    };
    std::printf(
        "near invalidation: %zu writes, from set() returning to the other process no longer "
        "serving the old value: p50 %.0f us, p99 %.0f us, max %.0f us\n",
        latencies.size(), at(0.5), at(0.99), at(1.0));
  } catch (...) {
    finish();
    throw;
  }
}

// Keys drawn from a Zipf distribution (rank r has weight 1 / r) over `count` keys.
struct zipf_keys {
  std::shared_ptr<const std::vector<double>> cdf;
  std::uint64_t state;
  zipf_keys(std::shared_ptr<const std::vector<double>> cdf_, std::uint64_t seed)
      : cdf(std::move(cdf_)), state(seed * 0x9E3779B97F4A7C15ULL + 1) {}
  std::size_t next() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    double u = static_cast<double>(state >> 11) * 0x1p-53;
    auto rank = std::lower_bound(cdf->begin(), cdf->end(), u) - cdf->begin();
    return std::min(static_cast<std::size_t>(rank), cdf->size() - 1);
  }
};

std::shared_ptr<const std::vector<double>> zipf_cdf(std::size_t count) {
  std::vector<double> cdf(count);
  double total = 0;
  for (std::size_t rank = 0; rank < count; ++rank)
    total += 1.0 / static_cast<double>(rank + 1);
  double sum = 0;
  for (std::size_t rank = 0; rank < count; ++rank) {
    sum += 1.0 / static_cast<double>(rank + 1);
    cdf[rank] = sum / total;
  }
  return std::make_shared<const std::vector<double>>(std::move(cdf));
}

std::size_t resident_bytes() {
  std::ifstream statm{"/proc/self/statm"};
  std::size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace

// ---- Citus: the store on a distributed cache table beside one server.

// get hit, set and get_many(100) through pgkit::cache_store on one thread, on the single server
// (`single`, schema `single_schema`, already filled) and on the Citus cluster whose coordinator
// is `citus_url` (a schema of its own, distributed by key as docs/scaling.md shows, filled
// here); prints each row with the cluster-to-server ratio.
void citus_rows(const std::string& single, const std::string& single_schema,
                const std::string& citus_url, double duration, int rounds) {
  bench::cache_schema distributed{citus_url, "pgkit_bench_citus"};
  {
    pqxx::connection connection{citus_url};
    pqxx::nontransaction tx{connection};
    for (const char* trigger : {"update", "delete", "truncate"}) {
      tx.exec(std::string{"DROP TRIGGER cache_announce_"} + trigger + " ON " + distributed.table());
    }
    tx.exec("SELECT create_distributed_table('" + distributed.table() + "', 'key')");
  }
  auto store_on = [](const std::string& url, const std::string& schema) {
    auto config = pgkit::config_from_url(url, "bench");
    config.pool_size = 1;
    pgkit::cache_options options;
    options.schema = schema;
    return std::make_shared<pgkit::cache_store>(std::make_shared<pgkit::pool>(config), options);
  };
  auto single_store = store_on(single, single_schema);
  auto citus_store = store_on(citus_url, distributed.name());
  {
    std::vector<std::pair<std::string, std::string>> entries;
    for (int i = 0; i < k_keys; ++i)
      entries.emplace_back(key_of(static_cast<std::uint64_t>(i)),
                           value_of(static_cast<std::uint64_t>(i)));
    citus_store->set_many(k_type, entries, std::chrono::hours{24});
  }
  struct row {
    const char* name;
    const char* unit;
    std::function<void(pgkit::cache_store&, random_keys&)> body;
  };
  const row rows[] = {
      {"get hit", "ops/s",
       [](pgkit::cache_store& store, random_keys& keys) {
         if (!store.get(k_type, key_of(keys.next())))
           throw std::runtime_error("a get missed");
       }},
      {"set", "ops/s",
       [](pgkit::cache_store& store, random_keys& keys) {
         auto i = keys.next();
         store.set(k_type, key_of(i), value_of(i), std::chrono::hours{24});
       }},
      {"get_many(100)", "calls/s",
       [](pgkit::cache_store& store, random_keys& keys) {
         std::vector<std::string> many;
         for (int j = 0; j < k_many; ++j)
           many.push_back(key_of(keys.next()));
         if (store.get_many(k_type, many).size() != static_cast<std::size_t>(k_many))
           throw std::runtime_error("get_many returned a wrong count");
       }},
  };
  std::printf(
      "\nbench/cache on Citus: a coordinator and two workers on this machine (the table "
      "distributed by key, 8 shards) beside one server; 1 thread, best of %d\n",
      rounds);
  std::printf("%-14s %-8s %11s %11s %7s\n", "operation", "unit", "server", "citus", "ratio");
  for (const auto& r : rows) {
    double best_single = 0, best_citus = 0;
    for (int round = 0; round < rounds; ++round) {
      for (auto* target : {&single_store, &citus_store}) {
        auto rate = throughput(1, duration, [&](int t) -> std::function<void()> {
          auto keys = std::make_shared<random_keys>(static_cast<std::uint64_t>(t + 7));
          auto store = *target;
          return [store, keys, &r] { r.body(*store, *keys); };
        });
        auto& best = target == &single_store ? best_single : best_citus;
        best = std::max(best, rate);
      }
    }
    std::printf("%-14s %-8s %11.0f %11.0f %7.2f\n", r.name, r.unit, best_single, best_citus,
                best_citus / best_single);
  }
}

int main(int argc, char** argv) {
  if (argc == 5 && std::string{argv[1]} == "--near-reader") {
    try {
      return near_reader(argv[2], argv[3], argv[4]);
    } catch (const std::exception& e) {
      std::cerr << "bench_cache reader: " << e.what() << '\n';
      return 1;
    }
  }
  try {
    bench::server server{argc, argv, "pgkit-bench-cache"};
    double duration = bench::env("PGKIT_BENCH_SECONDS").empty()
                          ? 1.0
                          : std::stod(bench::env("PGKIT_BENCH_SECONDS"));
    int rounds =
        bench::env("PGKIT_BENCH_ROUNDS").empty() ? 3 : std::stoi(bench::env("PGKIT_BENCH_ROUNDS"));
    bench::cache_schema schema{server.url(), "pgkit_bench_cache"};
    const std::string table = schema.table();
    // PGKIT_BENCH_SECTIONS: a comma-separated subset of
    // table,latency,scaling,zipf,memory,trigger,citus.
    const std::string sections = bench::env("PGKIT_BENCH_SECTIONS");
    auto section = [&sections](const std::string& name) {
      return sections.empty() || ("," + sections + ",").find("," + name + ",") != std::string::npos;
    };

    // The SQL the store prepares, for the raw libpq side.
    const std::string get_sql =
        "SELECT CASE WHEN expires_at <= now() THEN NULL ELSE value END "
        "FROM " +
        table + " WHERE resource_type = $1 AND key = $2";
    const std::string get_many_sql =
        "SELECT k.position, CASE WHEN c.expires_at <= now() THEN NULL ELSE c.value END "
        "FROM unnest($2::text[]) WITH ORDINALITY AS k(key, position) "
        "CROSS JOIN LATERAL (SELECT expires_at, value FROM " +
        table + " WHERE resource_type = $1 AND key = k.key OFFSET 0) AS c";
    const std::string set_sql =
        "INSERT INTO " + table +
        " AS c (resource_type, key, value, expires_at) "
        "VALUES ($1, $2, $3, now() + $4::bigint * interval '1 millisecond') "
        "ON CONFLICT (resource_type, key) DO UPDATE "
        "SET value = excluded.value, expires_at = excluded.expires_at";

    // The data: 10 000 keys with 100-byte values, in the cache and in Redis.
    auto config = pgkit::config_from_url(server.url(), "bench");
    config.pool_size = 4;
    auto filler_pool = std::make_shared<pgkit::pool>(config);
    pgkit::cache_options options;
    options.schema = schema.name();
    {
      pgkit::cache_store filler{filler_pool, options};
      std::vector<std::pair<std::string, std::string>> entries;
      for (int i = 0; i < k_keys; ++i)
        entries.emplace_back(key_of(static_cast<std::uint64_t>(i)),
                             value_of(static_cast<std::uint64_t>(i)));
      filler.set_many(k_type, entries, std::chrono::hours{24});
    }
    {
      pqxx::connection connection{server.url()};
      pqxx::nontransaction tx{connection};
      tx.exec("VACUUM ANALYZE " + table);
    }

    std::unique_ptr<redis_server> redis;
    if (redis_installed()) {
      redis = std::make_unique<redis_server>();
      redis_client filler{redis->port()};
      for (int i = 0; i < k_keys; i += k_many) {
        std::vector<std::string> words{"MSET"};
        for (int j = i; j < i + k_many; ++j) {
          words.push_back(key_of(static_cast<std::uint64_t>(j)));
          words.push_back(value_of(static_cast<std::uint64_t>(j)));
        }
        filler.command(words);
      }
    }

    std::printf(
        "bench/cache: %d keys, %zu-byte values, best of %d interleaved runs of %.1f s, "
        "against %s\n",
        k_keys, k_value_size, rounds, duration,
        redis ? "raw libpq and Redis" : "raw libpq (no redis-server installed)");
    // PGKIT_BENCH_CITUS_URL: a Citus coordinator (scripts/bench cache-citus starts a cluster).
    if (!bench::env("PGKIT_BENCH_CITUS_URL").empty() && section("citus")) {
      citus_rows(server.url(), schema.name(), bench::env("PGKIT_BENCH_CITUS_URL"), duration,
                 rounds);
    }

    if (section("table")) {
      std::printf("%7s  %-14s %-6s %11s %11s %7s", "threads", "operation", "unit", "pgkit", "libpq",
                  "ratio");
      if (redis)
        std::printf(" %11s %7s", "redis", "ratio");
      std::printf("\n");
    }

    for (int threads : {1, 2, 4}) {
      if (!section("table"))
        break;
      auto pool_config = config;
      pool_config.pool_size = static_cast<std::size_t>(threads);
      auto connections = std::make_shared<pgkit::pool>(pool_config);
      pgkit::cache_store store{connections, options};

      auto libpq_worker = [&](int t, const char* name, const std::string& sql,
                              std::function<void(libpq_connection&, random_keys&)> body) {
        auto connection = std::make_shared<libpq_connection>(server.url());
        connection->prepare(name, sql);
        auto keys = std::make_shared<random_keys>(static_cast<std::uint64_t>(t + 1));
        return std::function<void()>{[connection, keys, body] { body(*connection, *keys); }};
      };
      auto redis_worker = [&](int t, std::function<void(redis_client&, random_keys&)> body) {
        auto client = std::make_shared<redis_client>(redis->port());
        auto keys = std::make_shared<random_keys>(static_cast<std::uint64_t>(t + 1));
        return std::function<void()>{[client, keys, body] { body(*client, *keys); }};
      };
      auto pgkit_worker = [&](int t, std::function<void(random_keys&)> body) {
        auto keys = std::make_shared<random_keys>(static_cast<std::uint64_t>(t + 1));
        return std::function<void()>{[keys, body] { body(*keys); }};
      };

      using maker = std::function<std::function<void()>(int)>;
      // Runs the three sides `rounds` times, interleaved, and keeps the best of each: the
      // machine is shared, and the best run is the one least disturbed by others.
      auto compare = [&](const maker& pgkit_side, const maker& libpq_side, const maker& redis_side,
                         double scale) {
        row_result best;
        for (int round = 0; round < rounds; ++round) {
          best.pgkit = std::max(best.pgkit, scale * throughput(threads, duration, pgkit_side));
          best.libpq = std::max(best.libpq, scale * throughput(threads, duration, libpq_side));
          if (redis)
            best.redis = std::max(best.redis, scale * throughput(threads, duration, redis_side));
        }
        return best;
      };

      auto hit = compare(
          [&](int t) {
            return pgkit_worker(t, [&store](random_keys& keys) {
              if (!store.get(k_type, key_of(keys.next())))
                throw std::runtime_error("pgkit: unexpected miss");
            });
          },
          [&](int t) {
            return libpq_worker(t, "get", get_sql, [](libpq_connection& c, random_keys& keys) {
              std::string key = key_of(keys.next());
              const char* values[] = {k_type, key.c_str()};
              PGresult* result = c.run("get", 2, values, nullptr, nullptr);
              if (PQntuples(result) != 1 || PQgetisnull(result, 0, 0))
                throw std::runtime_error("libpq: unexpected miss");
              std::string value = field(result, 0, 0);
              PQclear(result);
            });
          },
          [&](int t) {
            return redis_worker(t, [](redis_client& c, random_keys& keys) {
              if (c.command({"GET", key_of(keys.next())}) != 1)
                throw std::runtime_error("redis: unexpected miss");
            });
          },
          1);
      print_row(threads, "get hit", "ops/s", hit);

      // The same reads answered by the near tier, filled by one read of every key first; its
      // baselines are the get hit row's, measured just before in this run.
      {
        pgkit::cache_store near_store{connections, near_options_for(schema.name(), 2 * k_keys)};
        for (int i = 0; i < k_keys; ++i)
          near_store.get(k_type, key_of(static_cast<std::uint64_t>(i)));
        row_result near = hit;
        near.pgkit = 0;
        for (int round = 0; round < rounds; ++round) {
          near.pgkit = std::max(near.pgkit, throughput(threads, duration, [&](int t) {
                                  return pgkit_worker(t, [&near_store](random_keys& keys) {
                                    if (!near_store.get(k_type, key_of(keys.next())))
                                      throw std::runtime_error("pgkit: unexpected near miss");
                                  });
                                }));
        }
        print_row(threads, "near get hit", "ops/s", near);
      }

      auto miss = compare(
          [&](int t) {
            return pgkit_worker(t, [&store](random_keys& keys) {
              if (store.get(k_type, missing_key_of(keys.next())))
                throw std::runtime_error("pgkit: unexpected hit");
            });
          },
          [&](int t) {
            return libpq_worker(t, "get", get_sql, [](libpq_connection& c, random_keys& keys) {
              std::string key = missing_key_of(keys.next());
              const char* values[] = {k_type, key.c_str()};
              PGresult* result = c.run("get", 2, values, nullptr, nullptr);
              if (PQntuples(result) != 0)
                throw std::runtime_error("libpq: unexpected hit");
              PQclear(result);
            });
          },
          [&](int t) {
            return redis_worker(t, [](redis_client& c, random_keys& keys) {
              if (c.command({"GET", missing_key_of(keys.next())}) != 0)
                throw std::runtime_error("redis: unexpected hit");
            });
          },
          1);
      print_row(threads, "get miss", "ops/s", miss);

      // set: an upsert with a one-hour ttl on every side.
      auto set = compare(
          [&](int t) {
            return pgkit_worker(t, [&store](random_keys& keys) {
              auto i = keys.next();
              store.set(k_type, key_of(i), value_of(i), std::chrono::hours{1});
            });
          },
          [&](int t) {
            return libpq_worker(t, "set", set_sql, [](libpq_connection& c, random_keys& keys) {
              auto i = keys.next();
              std::string key = key_of(i), value = value_of(i), ttl = "3600000";
              const char* values[] = {k_type, key.c_str(), value.data(), ttl.c_str()};
              int lengths[] = {0, 0, static_cast<int>(value.size()), 0};
              int formats[] = {0, 0, 1, 0};
              PQclear(c.run("set", 4, values, lengths, formats));
            });
          },
          [&](int t) {
            return redis_worker(t, [](redis_client& c, random_keys& keys) {
              auto i = keys.next();
              c.command({"SET", key_of(i), value_of(i), "EX", "3600"});
            });
          },
          1);
      print_row(threads, "set", "ops/s", set);

      // get_many(100), in keys per second.
      auto many = compare(
          [&](int t) {
            return pgkit_worker(t, [&store](random_keys& keys) {
              std::vector<std::string> names;
              for (int k = 0; k < k_many; ++k)
                names.push_back(key_of(keys.next()));
              auto values = store.get_many(k_type, names);
              if (!values.front())
                throw std::runtime_error("pgkit: unexpected miss");
            });
          },
          [&](int t) {
            return libpq_worker(t, "get_many", get_many_sql,
                                [](libpq_connection& c, random_keys& keys) {
                                  std::vector<std::string> names;
                                  for (int k = 0; k < k_many; ++k)
                                    names.push_back(key_of(keys.next()));
                                  std::string array = text_array(names);
                                  const char* values[] = {k_type, array.c_str()};
                                  PGresult* result = c.run("get_many", 2, values, nullptr, nullptr);
                                  std::vector<std::string> rows(names.size());
                                  for (int r = 0; r < PQntuples(result); ++r)
                                    rows.at(int8_field(result, r, 0) - 1) = field(result, r, 1);
                                  PQclear(result);
                                  if (rows.front().empty())
                                    throw std::runtime_error("libpq: unexpected miss");
                                });
          },
          [&](int t) {
            return redis_worker(t, [](redis_client& c, random_keys& keys) {
              std::vector<std::string> words{"MGET"};
              for (int k = 0; k < k_many; ++k)
                words.push_back(key_of(keys.next()));
              if (c.command(words) == 0)
                throw std::runtime_error("redis: unexpected miss");
            });
          },
          k_many);
      print_row(threads, "get_many(100)", "keys/s", many);
      std::printf("%7d  get_many(100) keys/s / get hit keys/s: pgkit %.1f, libpq %.1f\n", threads,
                  many.pgkit / hit.pgkit, many.libpq / hit.libpq);
    }

    // ---- The near tier on its own.
    auto admin_sql = [&server](const std::string& statement) {
      pqxx::connection connection{server.url()};
      pqxx::nontransaction tx{connection};
      tx.exec(statement);
    };
    std::printf("\n");
    if (section("latency")) {
      auto writes = bench::env("PGKIT_BENCH_WRITES").empty()
                        ? std::size_t{10000}
                        : std::stoul(bench::env("PGKIT_BENCH_WRITES"));
      pgkit::cache_store writer{std::make_shared<pgkit::pool>(config), options};
      invalidation_latency(server.url(), schema.name(), writer, writes);
    }

    // The near tier across threads: its hits at 1, 2 and 4 threads against its own 1-thread
    // figure, and against the practical ceiling for an in-process read, a std::unordered_map
    // lookup under a std::shared_mutex (the value copied out, as the tier copies it).
    if (section("scaling")) {
      pgkit::cache_store near_store{std::make_shared<pgkit::pool>(config),
                                    near_options_for(schema.name(), 2 * k_keys)};
      std::unordered_map<std::string, std::string> plain;
      std::shared_mutex plain_mutex;
      for (int i = 0; i < k_keys; ++i) {
        auto key = key_of(static_cast<std::uint64_t>(i));
        near_store.get(k_type, key);
        plain.emplace(key, value_of(static_cast<std::uint64_t>(i)));
      }
      auto near_side = [&](int t) {
        auto keys = std::make_shared<random_keys>(static_cast<std::uint64_t>(t + 1));
        return std::function<void()>{[&near_store, keys] {
          if (!near_store.get(k_type, key_of(keys->next())))
            throw std::runtime_error("pgkit: unexpected near miss");
        }};
      };
      auto plain_side = [&](int t) {
        auto keys = std::make_shared<random_keys>(static_cast<std::uint64_t>(t + 1));
        return std::function<void()>{[&plain, &plain_mutex, keys] {
          std::string key = key_of(keys->next());
          std::optional<std::string> value;
          {
            std::shared_lock<std::shared_mutex> lock{plain_mutex};
            auto found = plain.find(key);
            if (found != plain.end())
              value = found->second;
          }
          if (!value)
            throw std::runtime_error("map: unexpected miss");
        }};
      };
      // What the machine itself gives a second thread: the same lookup and copy in a map of
      // the thread's own (no lock, nothing shared). Its 2-thread figure over its 1-thread one is
      // the ceiling for any in-process cache here (two vCPUs may share a physical core).
      auto private_side = [&](int t) {
        auto keys = std::make_shared<random_keys>(static_cast<std::uint64_t>(t + 1));
        auto own = std::make_shared<std::unordered_map<std::string, std::string>>(plain);
        return std::function<void()>{[own, keys] {
          std::string key = key_of(keys->next());
          std::optional<std::string> value;
          auto found = own->find(key);
          if (found != own->end())
            value = found->second;
          if (!value)
            throw std::runtime_error("private map: unexpected miss");
        }};
      };
      std::printf("near scaling: hits of 10 000 entries, best of %d runs of %.1f s\n", rounds,
                  duration);
      std::printf("%7s  %12s %12s %12s %9s %14s %17s\n", "threads", "near ops/s", "map ops/s",
                  "own map ops/s", "near/map", "near/1 thread", "own map/1 thread");
      // Every round measures every thread count, so that a slower spell of the machine falls
      // on the 1-thread and the 2-thread figures alike instead of on one of them.
      const std::array<int, 3> thread_counts{1, 2, 4};
      std::array<double, 3> near{}, map{}, own{};
      for (int round = 0; round < rounds; ++round) {
        for (std::size_t i = 0; i < thread_counts.size(); ++i) {
          near[i] = std::max(near[i], throughput(thread_counts[i], duration, near_side));
          map[i] = std::max(map[i], throughput(thread_counts[i], duration, plain_side));
          own[i] = std::max(own[i], throughput(thread_counts[i], duration, private_side));
        }
      }
      for (std::size_t i = 0; i < thread_counts.size(); ++i) {
        std::printf("%7d  %12.0f %12.0f %12.0f %9.2f %14.2f %17.2f\n", thread_counts[i], near[i],
                    map[i], own[i], near[i] / map[i], near[i] / near[0], own[i] / own[0]);
      }
      std::printf("\n");
    }

    // A skewed workload: Zipf keys over 100 000 entries, a near tier of 48 000 entries (about
    // 90 % of reads hit it), the rest read from the table.
    if (section("zipf")) {
      constexpr std::size_t k_zipf_keys = 100000;
      constexpr std::size_t k_zipf_near = 48000;
      auto zipf_key = [](std::size_t rank) { return "zipf:" + std::to_string(rank); };
      admin_sql("INSERT INTO " + table +
                " (resource_type, key, value) SELECT 'zipf', 'zipf:' || i, "
                "decode(repeat('ab', 100), 'hex') FROM generate_series(0, " +
                std::to_string(k_zipf_keys - 1) + ") AS i");
      admin_sql("VACUUM ANALYZE " + table);
      if (redis) {
        redis_client filler{redis->port()};
        for (std::size_t i = 0; i < k_zipf_keys; i += k_many) {
          std::vector<std::string> words{"MSET"};
          for (std::size_t j = i; j < i + k_many; ++j) {
            words.push_back(zipf_key(j));
            words.push_back(value_of(j));
          }
          filler.command(words);
        }
      }
      auto cdf = zipf_cdf(k_zipf_keys);
      std::printf(
          "zipf workload: %zu keys, rank r drawn with weight 1/r, near tier of %zu entries\n",
          k_zipf_keys, k_zipf_near);
      for (int threads : {1, 4}) {
        auto pool_config = config;
        pool_config.pool_size = static_cast<std::size_t>(threads);
        pgkit::cache_store near_store{std::make_shared<pgkit::pool>(pool_config),
                                      near_options_for(schema.name(), k_zipf_near)};
        auto near_side = [&](int t) {
          auto keys = std::make_shared<zipf_keys>(cdf, static_cast<std::uint64_t>(t + 1));
          return std::function<void()>{[&near_store, keys, zipf_key] {
            if (!near_store.get("zipf", zipf_key(keys->next())))
              throw std::runtime_error("pgkit: unexpected miss");
          }};
        };
        auto libpq_side = [&](int t) {
          auto connection = std::make_shared<libpq_connection>(server.url());
          connection->prepare("get", get_sql);
          auto keys = std::make_shared<zipf_keys>(cdf, static_cast<std::uint64_t>(t + 1));
          return std::function<void()>{[connection, keys, zipf_key] {
            std::string key = zipf_key(keys->next());
            const char* values[] = {"zipf", key.c_str()};
            PGresult* result = connection->run("get", 2, values, nullptr, nullptr);
            if (PQntuples(result) != 1)
              throw std::runtime_error("libpq: unexpected miss");
            PQclear(result);
          }};
        };
        auto redis_side = [&](int t) {
          auto client = std::make_shared<redis_client>(redis->port());
          auto keys = std::make_shared<zipf_keys>(cdf, static_cast<std::uint64_t>(t + 1));
          return std::function<void()>{[client, keys, zipf_key] {
            if (client->command({"GET", zipf_key(keys->next())}) != 1)
              throw std::runtime_error("redis: unexpected miss");
          }};
        };
        throughput(threads, duration, near_side);  // fills the tier
        auto before = near_store.near_statistics();
        row_result zipf;
        for (int round = 0; round < rounds; ++round) {
          zipf.pgkit = std::max(zipf.pgkit, throughput(threads, duration, near_side));
          zipf.libpq = std::max(zipf.libpq, throughput(threads, duration, libpq_side));
          if (redis)
            zipf.redis = std::max(zipf.redis, throughput(threads, duration, redis_side));
        }
        auto after = near_store.near_statistics();
        auto hits = static_cast<double>(after.hits - before.hits);
        auto misses = static_cast<double>(after.misses - before.misses);
        print_row(threads, "zipf near get", "ops/s", zipf);
        std::printf("%7d  zipf near get: %.1f %% of reads hit the near tier\n", threads,
                    100.0 * hits / (hits + misses));
      }
    }

    // Memory: a near tier with the default bounds (64 MiB) reading a million distinct keys.
    if (section("memory")) {
      auto keys = bench::env("PGKIT_BENCH_NEAR_KEYS").empty()
                      ? std::size_t{1000000}
                      : std::stoul(bench::env("PGKIT_BENCH_NEAR_KEYS"));
      admin_sql("INSERT INTO " + table +
                " (resource_type, key, value) SELECT 'rss', 'rss:' || i, "
                "decode(repeat('ab', 100), 'hex') FROM generate_series(0, " +
                std::to_string(keys - 1) + ") AS i");
      constexpr std::size_t k_batch = 1000;
      auto batch_of = [](std::size_t first) {
        std::vector<std::string> names;
        for (std::size_t i = first; i < first + k_batch; ++i)
          names.push_back("rss:" + std::to_string(i));
        return names;
      };
      auto rss_pool = std::make_shared<pgkit::pool>(config);
      pgkit::cache_store plain{rss_pool, options};
      plain.get_many("rss", batch_of(0));  // the connection's buffers, before the baseline
      auto near_settings = near_options_for(schema.name(), keys);
      near_settings.near->max_bytes = pgkit::near_options{}.max_bytes;
      auto baseline = resident_bytes();
      pgkit::cache_store near_store{rss_pool, near_settings};
      for (std::size_t first = 0; first + k_batch <= keys; first += k_batch)
        near_store.get_many("rss", batch_of(first));
      auto stats = near_store.near_statistics();
      constexpr double mib = 1024.0 * 1024.0;
      std::printf(
          "near memory: %zu distinct keys read (100-byte values): %zu entries held, %.1f MiB "
          "counted (bound %.0f MiB), RSS growth %.1f MiB\n",
          keys, stats.entries, static_cast<double>(stats.bytes) / mib,
          static_cast<double>(near_settings.near->max_bytes) / mib,
          static_cast<double>(resident_bytes() - baseline) / mib);
    }

    // What the invalidation trigger costs writes when nobody listens: the same upserts of live
    // entries with the triggers on and disabled, interleaved.
    if (section("trigger")) {
      auto pool_config = config;
      pool_config.pool_size = 1;
      pgkit::cache_store writer{std::make_shared<pgkit::pool>(pool_config), options};
      auto set_side = [&](int t) {
        auto keys = std::make_shared<random_keys>(static_cast<std::uint64_t>(t + 1));
        return std::function<void()>{[&writer, keys] {
          auto i = keys->next();
          writer.set(k_type, key_of(i), value_of(i), std::chrono::hours{1});
        }};
      };
      auto set_many_side = [&](int t) {
        auto keys = std::make_shared<random_keys>(static_cast<std::uint64_t>(t + 1));
        return std::function<void()>{[&writer, keys] {
          std::vector<std::pair<std::string, std::string>> entries;
          for (int k = 0; k < k_many; ++k) {
            auto i = keys->next();
            entries.emplace_back(key_of(i), value_of(i + 1));
          }
          writer.set_many(k_type, entries, std::chrono::hours{1});
        }};
      };
      // Three states, interleaved: the triggers on with a near tier attached somewhere (this
      // process's, whose listener holds the interest lock), on with none (their WHEN condition
      // skips the work), and disabled.
      auto set_triggers = [&](const char* state) {
        for (const char* name :
             {"cache_announce_update", "cache_announce_delete", "cache_announce_truncate"})
          admin_sql("ALTER TABLE " + table + " " + state + " TRIGGER " + name);
      };
      auto measure = [&](const char* what, const std::function<std::function<void()>(int)>& side) {
        double listened = 0, unlistened = 0, off = 0;
        for (int round = 0; round < rounds; ++round) {
          {
            pgkit::cache_store tier{std::make_shared<pgkit::pool>(pool_config),
                                    near_options_for(schema.name(), 100)};
            listened = std::max(listened, throughput(1, duration, side));
          }
          unlistened = std::max(unlistened, throughput(1, duration, side));
          set_triggers("DISABLE");
          off = std::max(off, throughput(1, duration, side));
          set_triggers("ENABLE ALWAYS");
        }
        std::printf(
            "trigger cost: %-14s %9.0f ops/s with a near tier attached (ratio %.2f), %9.0f with "
            "none (ratio %.2f), %9.0f with the triggers disabled\n",
            what, listened, listened / off, unlistened, unlistened / off, off);
      };
      measure("set", set_side);
      measure("set_many(100)", set_many_side);
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_cache: " << e.what() << '\n';
    return 1;
  }
}
