#include <doctest/doctest.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/pqxx_compat.hpp"
#include "harness.hpp"
#include "pgkit/pool.hpp"
#include "pgkit/transaction.hpp"
#include "stores/statements.hpp"

using namespace std::chrono_literals;

namespace {

pgkit::connection_config config_for(const std::string& url, std::size_t pool_size = 4) {
  auto config = pgkit::config_from_url(url, "test");
  config.pool_size = pool_size;
  return config;
}

int backend_pid(pgkit::lease& lease) {
  return lease->backendpid();
}

std::string query(pgkit::lease& lease, const std::string& sql) {
  pqxx::nontransaction tx{*lease};
  auto result = tx.exec(sql);
  return result.empty() || result[0][0].is_null() ? "" : result[0][0].c_str();
}

// Waits up to 20 s for `condition`; returns whether it became true.
// Runs `sql` through the lease and returns the pgkit::error it turns into.
pgkit::error error_of(pgkit::lease& lease, const std::string& sql) {
  try {
    pqxx::nontransaction tx{*lease};
    tx.exec(sql);
  } catch (...) {
    try {
      pgkit::detail::rethrow_as_pgkit("test");
    } catch (const pgkit::error& e) {
      return e;
    }
  }
  FAIL("no error from " << sql);
  return pgkit::error{pgkit::error_kind::internal, "unreachable"};
}

// A server on 127.0.0.1 that accepts connections (the kernel completes the handshake) and never
// says a word, so a client waits for it until its own timeout. Closed on destruction.
class silent_server {
 public:
  silent_server() {
    m_fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(m_fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(m_fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(m_fd, 16) == 0);
    socklen_t length = sizeof address;
    ::getsockname(m_fd, reinterpret_cast<sockaddr*>(&address), &length);
    m_port = ntohs(address.sin_port);
  }
  ~silent_server() { ::close(m_fd); }
  silent_server(const silent_server&) = delete;
  silent_server& operator=(const silent_server&) = delete;

  int fd() const { return m_fd; }
  // No GSSAPI or TLS negotiation: a connect the test abandons (pool destruction) may still be
  // running when the test process exits, and libkrb5 aborts when its state is torn down under
  // a thread that is using it (seen intermittently on the PostgreSQL 15 and 16 suites).
  std::string url() const {
    return "postgresql://app@127.0.0.1:" + std::to_string(m_port) +
           "/app?sslmode=disable&gssencmode=disable";
  }

 private:
  int m_fd = -1;
  int m_port = 0;
};

// A count of threads that all wait for each other once.
class barrier {
 public:
  explicit barrier(int count) : m_left(count) {}
  void arrive_and_wait() {
    std::unique_lock lock{m_mutex};
    if (--m_left == 0) {
      m_all.notify_all();
      return;
    }
    m_all.wait(lock, [this] { return m_left == 0; });
  }

 private:
  std::mutex m_mutex;
  std::condition_variable m_all;
  int m_left;
};

}  // namespace

TEST_CASE("pgkit::pool") {
  pgkit_test::scratch_database db{"pool"};

  SUBCASE("a lease gives a working connection, and a returned one is reused") {
    pgkit::pool pool{config_for(db.url())};
    int first_pid = 0;
    {
      auto lease = pool.acquire();
      CHECK(query(lease, "SELECT current_database()") == db.name());
      first_pid = backend_pid(lease);
      CHECK(pool.stats().in_use == 1);
    }
    CHECK(pool.stats().idle == 1);
    auto again = pool.acquire();
    CHECK(backend_pid(again) == first_pid);
    auto stats = pool.stats();
    CHECK(stats.acquired == 2);
    CHECK(stats.created == 1);
    CHECK(stats.destroyed() == 0);
  }

  SUBCASE("a thread gets back the connection it gave back last, not the newest idle one") {
    pgkit::pool pool{config_for(db.url(), 2)};
    auto first = pool.acquire();
    int mine = backend_pid(first);
    int other = 0;
    std::promise<void> given_back;
    // Another thread holds the second connection and gives it back after this thread gave
    // back the first, so the second is the newest idle connection when this thread asks again.
    std::thread holder{[&] {
      auto second = pool.acquire();
      other = backend_pid(second);
      given_back.get_future().wait();
    }};
    pgkit_test::eventually([&] { return pool.stats().in_use == 2; });
    first.release();
    given_back.set_value();
    holder.join();
    REQUIRE(mine != other);
    REQUIRE(pool.stats().idle == 2);
    auto again = pool.acquire();
    CHECK(backend_pid(again) == mine);
  }

  SUBCASE("connections carry the configured application_name") {
    auto config = config_for(db.url());
    config.application_name = "billing-worker";
    pgkit::pool pool{config};
    auto lease = pool.acquire();
    CHECK(query(lease, "SHOW application_name") == "billing-worker");
    pgkit::pool plain{config_for(db.url())};
    auto other = plain.acquire();
    CHECK(query(other, "SHOW application_name") == "pgkit");
  }

  SUBCASE("a connection given back inside a transaction is closed, not reused") {
    pgkit::pool pool{config_for(db.url())};
    int pid = 0;
    {
      auto lease = pool.acquire();
      pid = backend_pid(lease);
      query(lease, "BEGIN");
    }
    auto stats = pool.stats();
    CHECK(stats.destroyed_in_transaction == 1);
    CHECK(stats.idle == 0);
    auto next = pool.acquire();
    CHECK(backend_pid(next) != pid);
    CHECK(query(next, "SELECT 1") == "1");
  }

  SUBCASE("a backend killed while leased: the caller sees a lost connection, the pool recovers") {
    pgkit::pool pool{config_for(db.url())};
    int pid = 0;
    {
      auto lease = pool.acquire();
      pid = backend_pid(lease);
      pgkit_test::query_value(db.url(), "SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
      auto lost = error_of(lease, "SELECT 1");
      CHECK(lost.kind() == pgkit::error_kind::connection_lost);
    }
    CHECK(pool.stats().destroyed_broken == 1);
    auto next = pool.acquire();
    CHECK(backend_pid(next) != pid);
    CHECK(query(next, "SELECT 2") == "2");
  }

  SUBCASE("acquire times out saying how many connections are busy and how long it waited") {
    pgkit::pool pool{config_for(db.url(), 2)};
    auto first = pool.acquire();
    auto second = pool.acquire();
    try {
      pool.acquire(200ms);
      FAIL("acquire did not time out");
    } catch (const pgkit::error& e) {
      CHECK(e.kind() == pgkit::error_kind::timeout);
      std::string message = e.what();
      CHECK(message.find("2 of 2 connections are busy") != std::string::npos);
      CHECK(message.find("after waiting 2") != std::string::npos);  // 2xx ms
      CHECK(e.hint().find("pool_size") != std::string::npos);
    }
    auto stats = pool.stats();
    CHECK(stats.timed_out == 1);
    CHECK(stats.waited == 1);
    CHECK(stats.waiting == 0);
  }

  SUBCASE("waiters are served first come, first served") {
    pgkit::pool pool{config_for(db.url(), 1)};
    auto held = pool.acquire();
    std::mutex order_mutex;
    std::vector<int> order;
    std::vector<std::thread> threads;
    for (int i = 0; i < 6; ++i) {
      threads.emplace_back([&, i] {
        auto lease = pool.acquire(30s);
        std::lock_guard lock{order_mutex};
        order.push_back(i);
      });
      // The next caller only starts once this one is queued.
      REQUIRE(pgkit_test::eventually(
          [&] { return pool.stats().waiting == static_cast<std::size_t>(i + 1); }));
    }
    held.release();
    for (auto& thread : threads)
      thread.join();
    CHECK(order == std::vector<int>{0, 1, 2, 3, 4, 5});
    CHECK(pool.stats().created == 1);
  }

  SUBCASE("a thread takes back its connection within its hand-off slice, ahead of the queue") {
    auto config = config_for(db.url(), 1);
    // A slice far longer than this test needs even on a stalled machine; a connection given
    // back waits a quarter of it (1 s) for its thread.
    config.handoff_quantum = 4s;
    config.acquire_timeout = 60s;
    pgkit::pool pool{config};
    auto mine = pool.acquire();
    int pid = backend_pid(mine);
    std::atomic<int> queued_got{0};
    std::thread queued{[&] {
      auto lease = pool.acquire();
      queued_got = backend_pid(lease);
    }};
    REQUIRE(pgkit_test::eventually([&] { return pool.stats().waiting == 1; }));
    mine.release();
    mine = pool.acquire();  // no context switch: the queued caller keeps sleeping
    CHECK(backend_pid(mine) == pid);
    auto stats = pool.stats();
    CHECK(stats.overtakes == 1);
    CHECK(stats.waiting == 1);
    CHECK(stats.handoffs == 0);
    // Given back and not taken again: after the return window the queued caller gets it,
    // without anybody else calling the pool.
    mine.release();
    queued.join();
    CHECK(queued_got == pid);
    CHECK(pool.stats().handoffs == 1);
  }

  SUBCASE("with handoff_quantum 0 a returning thread queues behind the waiters") {
    auto config = config_for(db.url(), 1);
    config.handoff_quantum = 0us;
    pgkit::pool pool{config};
    auto mine = pool.acquire();
    std::promise<void> got;
    std::promise<void> may_release;
    std::thread queued{[&] {
      auto lease = pool.acquire(30s);
      got.set_value();
      may_release.get_future().wait();
    }};
    REQUIRE(pgkit_test::eventually([&] { return pool.stats().waiting == 1; }));
    mine.release();
    got.get_future().wait();  // served before this thread could take the connection back
    CHECK_THROWS_AS(pool.acquire(50ms), pgkit::error);
    may_release.set_value();
    queued.join();
    auto stats = pool.stats();
    CHECK(stats.handoffs == 1);
    CHECK(stats.overtakes == 0);
    CHECK(stats.timed_out == 1);
  }

  SUBCASE("a connection changing hands goes to a queued thread that gave it back last") {
    auto config = config_for(db.url(), 2);
    config.acquire_timeout = 60s;
    pgkit::pool pool{config};
    // Threads p and q each use one of the two connections, then queue again when told to.
    struct worker {
      std::promise<int> used;  // the backend it had first
      std::promise<void> queue;
      std::atomic<int> got{0};  // the backend it got when queued
      std::promise<void> finish;
      std::thread thread;
    };
    barrier both_hold{2};
    worker p, q;
    for (auto* w : {&p, &q}) {
      w->thread = std::thread{[&pool, &both_hold, w] {
        {
          auto lease = pool.acquire();
          w->used.set_value(backend_pid(lease));
          both_hold.arrive_and_wait();  // held together: p and q use different connections
        }
        w->queue.get_future().wait();
        auto lease = pool.acquire();
        w->got = backend_pid(lease);
        w->finish.get_future().wait();
      }};
    }
    int p_pid = p.used.get_future().get();
    int q_pid = q.used.get_future().get();
    REQUIRE(p_pid != q_pid);
    REQUIRE(pgkit_test::eventually([&] { return pool.stats().idle == 2; }));
    auto first = pool.acquire();
    auto second = pool.acquire();
    auto& p_connection = backend_pid(first) == p_pid ? first : second;
    auto& q_connection = backend_pid(first) == p_pid ? second : first;
    q.queue.set_value();  // q first in line, p second
    REQUIRE(pgkit_test::eventually([&] { return pool.stats().waiting == 1; }));
    p.queue.set_value();
    REQUIRE(pgkit_test::eventually([&] { return pool.stats().waiting == 2; }));

    p_connection.release();  // p's connection goes to p, past q at the head of the queue
    CHECK(pgkit_test::eventually([&] { return p.got.load() == p_pid; }));
    CHECK(q.got.load() == 0);
    q_connection.release();
    CHECK(pgkit_test::eventually([&] { return q.got.load() == q_pid; }));
    p.finish.set_value();
    q.finish.set_value();
    p.thread.join();
    q.thread.join();
    auto stats = pool.stats();
    CHECK(stats.handoffs == 2);
    CHECK(stats.paired_handoffs == 2);
  }

  SUBCASE("a queued caller is passed at most pool_size times") {
    auto config = config_for(db.url(), 2);
    config.acquire_timeout = 60s;
    pgkit::pool pool{config};
    auto a = pool.acquire();
    auto b = pool.acquire();
    int a_pid = backend_pid(a);
    a.release();
    // Three threads use connection a in turn (the only idle one) and keep running; a fourth,
    // the head of the queue below, has never used the pool.
    std::mutex order_mutex;
    std::vector<std::string> order;
    std::vector<std::promise<void>> queue(4);
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      std::promise<void> used;
      auto used_future = used.get_future();
      threads.emplace_back([&, i, used = std::move(used)]() mutable {
        std::string name = i == 0 ? "head" : "p" + std::to_string(i);
        if (i > 0) {
          auto lease = pool.acquire();
          CHECK(backend_pid(lease) == a_pid);
        }
        used.set_value();
        queue[static_cast<std::size_t>(i)].get_future().wait();
        auto lease = pool.acquire();
        std::lock_guard lock{order_mutex};
        order.push_back(name);
      });
      used_future.wait();
    }
    a = pool.acquire();
    REQUIRE(backend_pid(a) == a_pid);
    for (std::size_t i = 0; i < 4; ++i) {
      queue[i].set_value();  // head first, then p1, p2, p3
      REQUIRE(pgkit_test::eventually([&] { return pool.stats().waiting == i + 1; }));
    }
    a.release();
    for (auto& thread : threads)
      thread.join();
    // p1 and p2 pass the head because they had connection a; then the head has been passed
    // pool_size (2) times and is served before p3.
    CHECK(order == std::vector<std::string>{"p1", "p2", "head", "p3"});
    CHECK(pool.stats().paired_handoffs == 3);
  }

  SUBCASE("a connection that died while idle is replaced before hand-out") {
    auto config = config_for(db.url());
    config.validate_after_idle = 0ms;
    pgkit::pool pool{config};
    int pid = 0;
    {
      auto lease = pool.acquire();
      pid = backend_pid(lease);
    }
    pgkit_test::query_value(db.url(), "SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
    REQUIRE(pgkit_test::eventually([&] {
      return pgkit_test::query_value(
                 db.url(),
                 "SELECT count(*) FROM pg_stat_activity WHERE pid = " + std::to_string(pid)) == "0";
    }));
    auto lease = pool.acquire();
    CHECK(backend_pid(lease) != pid);
    CHECK(query(lease, "SELECT 3") == "3");
    CHECK(pool.stats().destroyed_failed_validation == 1);
  }

  SUBCASE("a connection older than max_lifetime is closed and replaced") {
    auto config = config_for(db.url());
    config.max_lifetime = 1s;
    config.maintenance_interval = 100ms;
    pgkit::pool pool{config};
    int pid = 0;
    {
      auto lease = pool.acquire();
      pid = backend_pid(lease);
    }
    REQUIRE(pgkit_test::eventually([&] { return pool.stats().destroyed_lifetime == 1; }));
    auto lease = pool.acquire();
    CHECK(backend_pid(lease) != pid);
  }

  SUBCASE("idle connections above min_idle close after idle_timeout; min_idle stays warm") {
    auto config = config_for(db.url(), 4);
    config.min_idle = 2;
    config.idle_timeout = 1s;
    config.maintenance_interval = 100ms;
    pgkit::pool pool{config};
    pool.warm_up();
    CHECK(pool.stats().idle == 2);
    {
      std::vector<pgkit::lease> leases;
      for (int i = 0; i < 4; ++i)
        leases.push_back(pool.acquire());
    }
    CHECK(pool.stats().idle == 4);
    REQUIRE(pgkit_test::eventually([&] { return pool.stats().destroyed_idle == 2; }));
    std::this_thread::sleep_for(300ms);
    auto stats = pool.stats();
    CHECK(stats.idle == 2);
    CHECK(stats.destroyed_idle == 2);
    // A closed connection's backend leaves pg_stat_activity a moment after the client hangs up.
    CHECK(pgkit_test::eventually([&] {
      return pgkit_test::query_value(db.url(),
                                     "SELECT count(*) FROM pg_stat_activity WHERE "
                                     "datname = current_database() AND pid <> "
                                     "pg_backend_pid()") == "2";
    }));
  }

  SUBCASE("warm_up and the background refill together open exactly min_idle connections") {
    for (int round = 0; round < 10; ++round) {
      auto config = config_for(db.url(), 4);
      config.min_idle = 2;
      config.maintenance_interval = 1ms;  // the refill races warm_up as hard as it can
      pgkit::pool pool{config};
      pool.warm_up();
      std::this_thread::sleep_for(30ms);
      auto stats = pool.stats();
      CHECK(stats.idle == 2);
      CHECK(stats.created == 2);
    }
  }

  SUBCASE("min_idle is refilled in the background after connections are lost") {
    auto config = config_for(db.url(), 4);
    config.min_idle = 2;
    config.maintenance_interval = 100ms;
    pgkit::pool pool{config};
    REQUIRE(pgkit_test::eventually([&] { return pool.stats().idle == 2; }));
    {
      auto first = pool.acquire();
      auto second = pool.acquire();
      query(first, "BEGIN");
      query(second, "BEGIN");
    }
    CHECK(pool.stats().destroyed_in_transaction == 2);
    REQUIRE(pgkit_test::eventually([&] { return pool.stats().idle == 2; }));
  }

  SUBCASE("close() refuses new callers, wakes queued ones and waits for leases") {
    pgkit::pool pool{config_for(db.url(), 1)};
    auto held = pool.acquire();
    std::atomic<bool> waiter_refused{false};
    std::thread waiter{[&] {
      try {
        pool.acquire(30s);
      } catch (const pgkit::usage_error&) {
        waiter_refused = true;
      }
    }};
    REQUIRE(pgkit_test::eventually([&] { return pool.stats().waiting == 1; }));
    std::thread holder{[lease = std::move(held)]() mutable {
      std::this_thread::sleep_for(200ms);
      lease.release();
    }};
    CHECK(pool.close(30s));
    holder.join();
    waiter.join();
    CHECK(waiter_refused);
    CHECK_THROWS_AS(pool.acquire(), pgkit::usage_error);
    auto stats = pool.stats();
    CHECK(stats.in_use == 0);
    CHECK(stats.idle == 0);
    CHECK(stats.destroyed_closed == 1);
  }

  SUBCASE("a lease outliving its pool stays usable") {
    std::optional<pgkit::lease> kept;
    {
      pgkit::pool pool{config_for(db.url())};
      kept = pool.acquire();
    }
    CHECK(query(*kept, "SELECT 4") == "4");
    kept->release();
    CHECK(!*kept);
  }
}

TEST_CASE("pgkit::pool connection failures") {
  SUBCASE("a refused connection names the address, never the password") {
    auto config = pgkit::config_from_url("postgresql://app:topsecret@127.0.0.1:1/app", "test");
    try {
      pgkit::start(config);
      FAIL("start succeeded on port 1");
    } catch (const pgkit::error& e) {
      std::string message = e.what();
      CHECK(e.kind() == pgkit::error_kind::connection);
      CHECK(message.find("postgresql://app:***@127.0.0.1:1/app") != std::string::npos);
      CHECK(message.find("topsecret") == std::string::npos);
    }
  }
  SUBCASE("connect_timeout_s holds against a server that accepts and never answers") {
    silent_server server;
    auto config = pgkit::config_from_url(server.url(), "test");
    config.connect_timeout = 2s;
    pgkit::pool pool{config};
    auto started = std::chrono::steady_clock::now();
    try {
      pool.acquire(60s);
      FAIL("connected to a silent server");
    } catch (const pgkit::error& e) {
      CHECK(e.kind() == pgkit::error_kind::connection);
      CHECK(std::string{e.what()}.find("timeout") != std::string::npos);
    }
    // Generous: libpq waits connect_timeout per attempt; without it this would hang forever.
    CHECK(std::chrono::steady_clock::now() - started < 30s);
    CHECK(pool.stats().create_failed == 1);
    CHECK(pool.stats().in_use == 0);
  }
}

TEST_CASE("pgkit::pool destruction") {
  SUBCASE("does not wait for a maintenance thread stuck in connect()") {
    silent_server server;  // libpq waits connect_timeout for it
    auto config = pgkit::config_from_url(server.url(), "test");
    config.connect_timeout = 30s;
    config.min_idle = 1;
    config.maintenance_interval = 10ms;
    std::optional<pgkit::pool> pool{std::in_place, config};
    // The maintenance thread's refill is connecting once the server sees a connection.
    pollfd pending{server.fd(), POLLIN, 0};
    REQUIRE(::poll(&pending, 1, 20000) == 1);
    auto started = std::chrono::steady_clock::now();
    pool.reset();
    // Generous against noise, far below the 30 s the old destructor waited.
    CHECK(std::chrono::steady_clock::now() - started < 15s);
    // Closing the server ends the stuck attempt; its thread then ends on its own.
  }
}

TEST_CASE("pgkit::detail::run_statement") {
  pgkit_test::scratch_database db{"statements"};
  const pgkit::detail::statement add{"pgkit_add", "SELECT $1::int + $2::int"};
  auto prepared_here = [](pgkit::lease& lease) {
    return query(lease, "SELECT count(*) FROM pg_prepared_statements WHERE name = 'pgkit_add'");
  };
  auto sum = [&](pgkit::lease& lease, std::int64_t a, std::int64_t b) {
    auto result = pgkit::detail::run_statement(
        lease, add, {pgkit::detail::int_param(a), pgkit::detail::int_param(b)}, "adding", {},
        pgkit::detail::result_format::text);
    return std::stoi(result.bytes(0, 0));
  };

  SUBCASE("a statement is prepared once per connection and reused") {
    pgkit::pool pool{config_for(db.url(), 1)};
    auto lease = pool.acquire();
    for (int i = 0; i < 3; ++i)
      CHECK(sum(lease, i, 10) == i + 10);
    CHECK(prepared_here(lease) == "1");
    CHECK(pgkit::detail::prepared_count(lease) == 1);
  }
  SUBCASE("a replaced connection prepares its statements again") {
    pgkit::pool pool{config_for(db.url(), 1)};
    {
      auto lease = pool.acquire();
      sum(lease, 1, 1);
      query(lease, "BEGIN");  // given back inside a transaction: closed
    }
    auto lease = pool.acquire();
    CHECK(pgkit::detail::prepared_count(lease) == 0);
    CHECK(sum(lease, 2, 2) == 4);
  }
  SUBCASE("the same name with different SQL is refused") {
    pgkit::pool pool{config_for(db.url(), 1)};
    auto lease = pool.acquire();
    sum(lease, 1, 1);
    CHECK_THROWS_AS(pgkit::detail::run_statement(lease, {"pgkit_add", "SELECT 1"}, {}, "a clash"),
                    pgkit::error);
  }
  SUBCASE("pooler = pgbouncer-transaction sends unnamed statements") {
    auto config = config_for(db.url(), 1);
    config.pooler = pgkit::pooler_mode::pgbouncer_transaction;
    pgkit::pool pool{config};
    auto lease = pool.acquire();
    CHECK(sum(lease, 5, 6) == 11);
    CHECK(prepared_here(lease) == "0");
    CHECK(pgkit::detail::prepared_count(lease) == 0);
  }
}

TEST_CASE("pgkit::run_transaction") {
  pgkit_test::scratch_database db{"retry"};
  pgkit_test::query_value(db.url(), "CREATE TABLE shift (doctor text, on_call bool)");
  pgkit_test::query_value(db.url(), "INSERT INTO shift VALUES ('alice', true), ('bob', true)");
  pgkit::pool pool{config_for(db.url(), 4)};

  SUBCASE("commits and returns the body's value") {
    auto count = pgkit::run_transaction(
        pool, [](pqxx::work& tx) { return tx.exec("SELECT count(*) FROM shift")[0][0].as<int>(); });
    CHECK(count == 2);
  }
  SUBCASE("a serialization failure is retried until the transaction commits") {
    // Write skew: both read that two doctors are on call, each takes one off. Under
    // SERIALIZABLE one of them must fail and, retried, sees that only one is left.
    barrier both_read{2};
    std::atomic<int> attempts{0};
    std::atomic<int> went_off{0};
    pgkit::retry_options options;
    options.isolation = pgkit::isolation_level::serializable;
    auto take_off = [&](const std::string& doctor) {
      bool first = true;
      pgkit::run_transaction(
          pool,
          [&](pqxx::work& tx) {
            ++attempts;
            auto on_call = tx.exec("SELECT count(*) FROM shift WHERE on_call")[0][0].as<int>();
            if (first) {
              first = false;
              both_read.arrive_and_wait();
            }
            if (on_call >= 2) {
              tx.exec("UPDATE shift SET on_call = false WHERE doctor = " + tx.quote(doctor));
              ++went_off;
            }
          },
          options);
    };
    std::thread alice{take_off, "alice"};
    std::thread bob{take_off, "bob"};
    alice.join();
    bob.join();
    CHECK(attempts == 3);
    CHECK(pgkit_test::query_value(db.url(), "SELECT count(*) FROM shift WHERE on_call") == "1");
  }
  SUBCASE("other errors are not retried") {
    int calls = 0;
    try {
      pgkit::run_transaction(pool, [&](pqxx::work& tx) {
        ++calls;
        tx.exec("SELECT * FROM no_such_table");
      });
      FAIL("no error");
    } catch (const pgkit::error& e) {
      CHECK(e.kind() == pgkit::error_kind::undefined_object);
    }
    CHECK(calls == 1);
  }
  SUBCASE("an in-doubt commit is never retried") {
    int calls = 0;
    try {
      pgkit::run_transaction(pool, [&](pqxx::work&) {
        ++calls;
        throw pqxx::in_doubt_error{"connection lost during COMMIT"};
      });
      FAIL("no error");
    } catch (const pgkit::error& e) {
      CHECK(e.kind() == pgkit::error_kind::connection_lost);
      CHECK(e.hint().find("check whether the change was applied") != std::string::npos);
    }
    CHECK(calls == 1);
  }
  SUBCASE("the application's own exceptions pass through unchanged") {
    int calls = 0;
    CHECK_THROWS_AS(pgkit::run_transaction(pool,
                                           [&](pqxx::work&) {
                                             ++calls;
                                             throw std::out_of_range{"mine"};
                                           }),
                    std::out_of_range);
    CHECK(calls == 1);
  }
  SUBCASE("retries stop after max_attempts with the last error") {
    int calls = 0;
    pgkit::retry_options options;
    options.max_attempts = 3;
    try {
      pgkit::run_transaction(
          pool,
          [&](pqxx::work& tx) {
            ++calls;
            tx.exec("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40P01'; END $$");
          },
          options);
      FAIL("no error");
    } catch (const pgkit::error& e) {
      CHECK(e.kind() == pgkit::error_kind::deadlock);
      CHECK(std::string{e.what()}.find("gave up after 3 attempts") != std::string::npos);
    }
    CHECK(calls == 3);
  }
}
