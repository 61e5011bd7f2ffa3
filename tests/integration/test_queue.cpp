// The job queue against a real PostgreSQL: enqueue in a transaction, exactly-once runs over
// several worker processes, rescue after a kill -9, unique keys under concurrency, retries with
// backoff and the error history, periodic jobs over several processes, wake-up by NOTIFY and
// by polling behind the real PgBouncer, and a graceful stop.

#include <doctest/doctest.h>
#include <signal.h>

#include <pqxx/pqxx>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "child_process.hpp"
#include "harness.hpp"
#include "pgbouncer.hpp"
#include "pgkit/migration.hpp"
#include "pgkit/queue.hpp"

using namespace std::chrono_literals;
using pgkit_test::eventually;
using pgkit_test::query_value;

namespace {

// A scratch database with the queue module applied and a table `ran` for what handlers did,
// one per test case and emptied for each subcase (creating a database takes longer than most
// subcases), and a store on a pool of the subcase's own.
struct queue_fixture {
  explicit queue_fixture(const std::string& label, std::size_t pool_size = 8)
      : db{database(label)} {
    query_value(db.url(), "TRUNCATE pgkit.queue_job, ran");
    auto config = pgkit::config_from_url(db.url(), "test");
    config.pool_size = pool_size;
    pool = std::make_shared<pgkit::pool>(config);
    store = std::make_unique<pgkit::queue_store>(pool);
  }

  static pgkit_test::scratch_database& database(const std::string& label) {
    // Never destroyed: dropping the databases from a static destructor runs libpqxx 6.4 after
    // its own statics are gone (AddressSanitizer: heap-use-after-free at exit). The sandbox
    // goes away with everything in it.
    static auto& made = *new std::map<std::string, std::unique_ptr<pgkit_test::scratch_database>>;
    auto& slot = made[label];
    if (!slot) {
      slot = std::make_unique<pgkit_test::scratch_database>(label);
      pqxx::connection connection{slot->url()};
      pgkit::apply_modules(connection, {"queue"});
      pqxx::work tx{connection};
      tx.exec("CREATE TABLE ran (id bigint NOT NULL)");
      tx.commit();
    }
    return *slot;
  }

  std::string sql(const std::string& statement) const { return query_value(db.url(), statement); }
  long long number(const std::string& statement) const { return std::stoll(sql(statement)); }

  pgkit_test::scratch_database& db;
  std::shared_ptr<pgkit::pool> pool;
  std::unique_ptr<pgkit::queue_store> store;
};

// Records the ids its handler ran, in order.
struct recorder {
  std::mutex mutex;
  std::vector<std::int64_t> ids;
  pgkit::job_handler handler() {
    return [this](const pgkit::job& claimed) {
      std::lock_guard<std::mutex> guard{mutex};
      ids.push_back(claimed.id);
    };
  }
  std::size_t size() {
    std::lock_guard<std::mutex> guard{mutex};
    return ids.size();
  }
};

pgkit::queue_worker_options fast_worker(std::size_t threads = 1) {
  pgkit::queue_worker_options options;
  options.threads = threads;
  options.poll_interval = 20ms;
  return options;
}

}  // namespace

TEST_CASE("pgkit::queue_store") {
  queue_fixture fx{"queue"};
  auto& store = *fx.store;

  SUBCASE("a job enqueued in a rolled-back transaction never runs") {
    std::int64_t rolled_back = 0;
    {
      auto lease = fx.pool->acquire();
      pqxx::work tx{lease.connection()};
      rolled_back = store.enqueue(tx, "mail", "never");
      CHECK(rolled_back > 0);
      tx.abort();
    }
    std::int64_t committed = 0;
    {
      auto lease = fx.pool->acquire();
      pqxx::work tx{lease.connection()};
      committed = store.enqueue(tx, "mail", "sent");
      tx.commit();
    }
    recorder seen;
    pgkit::queue_worker worker{store, fast_worker()};
    worker.handle("mail", seen.handler());
    CHECK(worker.run_until_empty() == 1);
    CHECK(seen.ids == std::vector<std::int64_t>{committed});
    CHECK_FALSE(store.find(rolled_back).has_value());
    CHECK(store.find(committed)->state == pgkit::job_state::completed);
  }

  SUBCASE("jobs run by priority, then due time; payload bytes arrive intact") {
    std::string bytes{"a\0b\xff", 4};
    auto late = store.enqueue("q", "late", {});
    pgkit::enqueue_options urgent;
    urgent.priority = -5;
    auto first = store.enqueue("q", bytes, urgent);
    pgkit::enqueue_options later;
    later.delay = 1h;
    auto future = store.enqueue("q", "future", later);
    std::vector<std::string> payloads;
    pgkit::queue_worker worker{store, fast_worker()};
    worker.handle("q", [&](const pgkit::job& claimed) { payloads.push_back(claimed.payload); });
    CHECK(worker.run_until_empty() == 2);
    CHECK(payloads == std::vector<std::string>{bytes, "late"});
    CHECK(store.find(first)->state == pgkit::job_state::completed);
    CHECK(store.find(late)->state == pgkit::job_state::completed);
    CHECK(store.find(future)->state == pgkit::job_state::available);
  }

  SUBCASE("enqueue_many adds every job in one statement, ids in order") {
    std::vector<pgkit::job_request> jobs;
    for (int i = 0; i < 5; ++i)
      jobs.push_back({"bulk", "job " + std::to_string(i), {}});
    auto ids = store.enqueue_many(jobs);
    REQUIRE(ids.size() == 5);
    for (std::size_t i = 0; i < ids.size(); ++i)
      CHECK(store.find(ids[i])->payload == "job " + std::to_string(i));
    jobs.front().options.unique_key = "k";
    CHECK(pgkit_test::expect_error([&] { store.enqueue_many(jobs); }).kind() ==
          pgkit::error_kind::usage);
  }

  SUBCASE("unique keys hold under 50 concurrent enqueues") {
    pgkit::enqueue_options options;
    options.unique_key = "report-2026-12-06";
    std::vector<std::int64_t> ids(50);
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (std::size_t i = 0; i < ids.size(); ++i) {
      threads.emplace_back([&, i] {
        try {
          ids[i] = store.enqueue("reports", "payload", options);
        } catch (const std::exception& e) {
          MESSAGE(e.what());
          ++failures;
        }
      });
    }
    for (auto& thread : threads)
      thread.join();
    CHECK(failures == 0);
    CHECK(std::set<std::int64_t>(ids.begin(), ids.end()).size() == 1);
    CHECK(fx.number("SELECT count(*) FROM pgkit.queue_job") == 1);
    // Once the job ends, the key (window `active`) is free again.
    pgkit::queue_worker worker{store, fast_worker()};
    recorder seen;
    worker.handle("reports", seen.handler());
    worker.run_until_empty();
    CHECK(store.enqueue("reports", "again", options) != ids.front());
    // A `queued` key is free once the job is claimed.
    options.unique_key = "q";
    options.window = pgkit::unique_window::queued;
    auto queued = store.enqueue("other", "1", options);
    CHECK(store.enqueue("other", "2", options) == queued);
    CHECK(store.claim({"other"}, 10, "test").size() == 1);
    CHECK(store.enqueue("other", "3", options) != queued);
  }

  SUBCASE("failures back off, growing, and max attempts discards with the error history") {
    pgkit::enqueue_options options;
    options.max_attempts = 4;
    auto id = store.enqueue("flaky", "x", options);
    auto settings = fast_worker();
    settings.poll_interval = 10ms;
    settings.backoff.first_retry_delay = 40ms;
    settings.backoff.jitter = 0;
    pgkit::queue_worker worker{store, settings};
    std::atomic<int> calls{0};
    worker.handle("flaky", [&](const pgkit::job& claimed) {
      ++calls;
      throw std::runtime_error("boom on attempt " + std::to_string(claimed.attempt));
    });
    worker.start();
    REQUIRE(eventually([&] { return store.find(id)->state == pgkit::job_state::discarded; }));
    CHECK(worker.stop(5s));
    auto info = *store.find(id);
    CHECK(calls == 4);
    CHECK(info.attempt == 4);
    REQUIRE(info.errors.size() == 4);
    for (std::size_t i = 0; i < info.errors.size(); ++i) {
      CHECK(info.errors[i].attempt == static_cast<int>(i) + 1);
      CHECK(info.errors[i].error == "boom on attempt " + std::to_string(i + 1));
    }
    // Each retry waited at least its delay, and the delays double: 40, 80, 160 ms.
    for (std::size_t i = 1; i < info.errors.size(); ++i) {
      auto gap = info.errors[i].at - info.errors[i - 1].at;
      CHECK(gap >= 40ms * (1 << (i - 1)));
    }
    // A discarded job can be retried; its history stays.
    CHECK(store.retry(id));
    CHECK(store.find(id)->state == pgkit::job_state::available);
    CHECK(store.find(id)->errors.size() == 4);
    CHECK_FALSE(store.retry(id));
  }

  SUBCASE("cancel, retry of a queue's discarded jobs, stats and prune") {
    auto a = store.enqueue("s", "a");
    auto b = store.enqueue("s", "b");
    CHECK(store.cancel(a));
    CHECK_FALSE(store.cancel(a));
    auto claimed = store.claim({"s"}, 1, "test");
    REQUIRE(claimed.size() == 1);
    CHECK(claimed.front().id == b);
    pgkit::job failing = claimed.front();
    fx.sql("UPDATE pgkit.queue_job SET max_attempts = 1 WHERE id = " + std::to_string(b));
    CHECK(store.fail(failing, "broken", 0ms));
    CHECK_FALSE(store.complete(failing));  // the claim is over
    auto counts = store.stats();
    REQUIRE(counts.size() == 2);
    CHECK(counts[0].state == pgkit::job_state::cancelled);
    CHECK(counts[1].state == pgkit::job_state::discarded);
    CHECK(store.retry_discarded("s") == 1);
    CHECK(store.find(b)->state == pgkit::job_state::available);
    auto swept = store.prune(0ms);
    CHECK(swept.deleted == 1);  // the cancelled one
    CHECK_FALSE(store.find(a).has_value());
  }

  SUBCASE("several jobs completed in one statement; a lost claim is left alone") {
    std::vector<pgkit::job_request> jobs(5, pgkit::job_request{"c", "", {}});
    store.enqueue_many(jobs);
    auto claimed = store.claim({"c"}, 5, "test");
    REQUIRE(claimed.size() == 5);
    // The last job was rescued and claimed again meanwhile: its old claim must not end it.
    fx.sql("UPDATE pgkit.queue_job SET attempt = attempt + 1 WHERE id = " +
           std::to_string(claimed.back().id));
    CHECK(store.complete(claimed) == 4);
    CHECK(fx.number("SELECT count(*) FROM pgkit.queue_job WHERE state = 'completed' "
                    "AND finished_at IS NOT NULL AND heartbeat_at IS NULL") == 4);
    CHECK(store.find(claimed.back().id)->state == pgkit::job_state::running);
    CHECK(store.complete(claimed) == 0);  // completing twice changes nothing
    CHECK(store.complete(std::vector<pgkit::job>{}) == 0);
  }

  SUBCASE("a graceful stop loses nothing") {
    std::vector<pgkit::job_request> jobs(200, pgkit::job_request{"bulk", "", {}});
    store.enqueue_many(jobs);
    auto settings = fast_worker(4);
    settings.batch_size = 8;
    pgkit::queue_worker worker{store, settings};
    recorder seen;
    worker.handle("bulk", [&](const pgkit::job& claimed) {
      std::this_thread::sleep_for(1ms);
      seen.handler()(claimed);
    });
    worker.start();
    REQUIRE(eventually([&] { return seen.size() >= 20; }));
    CHECK(worker.stop(10s));
    CHECK(fx.number("SELECT count(*) FROM pgkit.queue_job WHERE state = 'running'") == 0);
    CHECK(fx.number("SELECT count(*) FROM pgkit.queue_job WHERE state = 'completed'") ==
          static_cast<long long>(seen.size()));
    CHECK(fx.number("SELECT count(*) FROM pgkit.queue_job WHERE state = 'available' "
                    "AND attempt = 0") == 200 - static_cast<long long>(seen.size()));
    pgkit::queue_worker rest{store, fast_worker()};
    rest.handle("bulk", seen.handler());
    rest.run_until_empty();
    CHECK(std::set<std::int64_t>(seen.ids.begin(), seen.ids.end()).size() == 200);
    CHECK(seen.ids.size() == 200);
  }

  SUBCASE("a claim cursor goes on where it stopped, and still finds jobs that sort before it") {
    std::vector<pgkit::job_request> batch(6, pgkit::job_request{"q", "", {}});
    auto ids = store.enqueue_many(batch);
    pgkit::claim_cursor cursor{1h};  // no walk from the start by the clock in this test
    const auto claim_ids = [&](std::size_t limit) {
      std::vector<std::int64_t> got;
      for (const auto& claimed : store.claim({"q"}, limit, "w", cursor))
        got.push_back(claimed.id);
      return got;
    };
    CHECK(claim_ids(2) == std::vector<std::int64_t>{ids[0], ids[1]});
    CHECK(claim_ids(2) == std::vector<std::int64_t>{ids[2], ids[3]});
    // A job that sorts first comes in: the cursor's walk goes on past it while it finds jobs,
    pgkit::enqueue_options urgent;
    urgent.priority = -1;
    auto first = store.enqueue("q", "urgent", urgent);
    CHECK(claim_ids(2) == std::vector<std::int64_t>{ids[4], ids[5]});
    // and when it finds none, a walk from the start takes it (as soon as the last walk from
    // the start has been paid off: a twentieth of the time; up to 15 s here, for a loaded CI
    // machine where that first walk took long).
    std::vector<std::int64_t> got;
    for (int tries = 0; tries < 1500 && got.empty(); ++tries) {
      got = claim_ids(2);
      if (got.empty())
        std::this_thread::sleep_for(10ms);
    }
    CHECK(got == std::vector<std::int64_t>{first});
    CHECK(claim_ids(2).empty());
    CHECK(fx.number("SELECT count(*) FROM pgkit.queue_job WHERE state = 'running'") == 7);
  }

  SUBCASE("with the xmin horizon held, a cursor's claims do not read again what was claimed") {
    // Another session's open transaction keeps VACUUM from removing the claimed jobs' old
    // entries in the claim index. A walk from the queue's start reads every one of them (the
    // claim index's idx_tup_read grows by thousands); the cursor's walk starts after them.
    // One connection, so that its statistics can be pushed to the server: a backend sends
    // them at the end of a statement at most once a second (500 ms before PostgreSQL 15).
    auto config = pgkit::config_from_url(fx.db.url(), "test");
    config.pool_size = 1;
    auto one = std::make_shared<pgkit::pool>(config);
    pgkit::queue_store on_one{one};
    std::vector<pgkit::job_request> batch(3000, pgkit::job_request{"q", "", {}});
    on_one.enqueue_many(batch);
    pqxx::connection holder{fx.db.url()};
    pqxx::work pinned{holder};
    pinned.exec("SELECT txid_current()");
    pgkit::claim_cursor cursor{1h};
    for (int i = 0; i < 20; ++i)
      CHECK(on_one.complete(on_one.claim({"q"}, 100, "w", cursor)) == 100);
    // Index entries read so far, once the connection's statistics have reached the server.
    const auto entries_read = [&] {
      std::this_thread::sleep_for(1100ms);
      {
        auto lease = one->acquire();
        pqxx::nontransaction{lease.connection()}.exec("SELECT 1");
      }
      const auto read = [&] {
        return fx.number(
            "SELECT idx_tup_read FROM pg_stat_user_indexes WHERE indexrelname = "
            "'queue_job_claim_idx'");
      };
      long long last = read();
      for (int tries = 0; tries < 10; ++tries) {
        std::this_thread::sleep_for(300ms);
        auto now = read();
        if (now == last)
          break;
        last = now;
      }
      return last;
    };
    auto before = entries_read();
    CHECK(on_one.claim({"q"}, 10, "w", cursor).size() == 10);
    auto after_cursor = entries_read();
    CHECK(on_one.claim({"q"}, 10, "w").size() == 10);
    auto after_start = entries_read();
    CHECK(after_cursor - before < 200);
    CHECK(after_start - after_cursor >= 2000);
    pinned.abort();
  }

  SUBCASE("bad input is refused before anything is sent") {
    CHECK(pgkit_test::expect_error([&] { store.enqueue("", "x"); }).kind() ==
          pgkit::error_kind::usage);
    pgkit::enqueue_options options;
    options.max_attempts = 0;
    CHECK(pgkit_test::expect_error([&] { store.enqueue("q", "x", options); }).kind() ==
          pgkit::error_kind::usage);
    CHECK(fx.number("SELECT count(*) FROM pgkit.queue_job") == 0);
  }
}

TEST_CASE("pgkit::queue_store without the module") {
  pgkit_test::scratch_database db{"queue_missing"};
  auto pool = std::make_shared<pgkit::pool>(pgkit::config_from_url(db.url(), "test"));
  pgkit::queue_store store{pool};
  auto e = pgkit_test::expect_error([&] { store.check(); });
  CHECK(e.kind() == pgkit::error_kind::undefined_object);
  CHECK(e.hint() == "run pgkit apply queue");
  CHECK(pgkit_test::expect_error([&] { store.enqueue("q", "x"); }).hint() ==
        "run pgkit apply queue");
}

TEST_CASE("pgkit::queue_worker") {
  queue_fixture fx{"queue_worker"};
  auto& store = *fx.store;

  SUBCASE("1000 jobs over 8 worker threads in 3 processes each run exactly once") {
    std::vector<pgkit::job_request> jobs(1000, pgkit::job_request{"bulk", "", {}});
    store.enqueue_many(jobs);
    std::vector<std::unique_ptr<pgkit_test::child_process>> workers;
    for (const char* threads : {"3", "3", "2"}) {
      workers.push_back(std::make_unique<pgkit_test::child_process>(
          std::vector<std::string>{PGKIT_QUEUE_CHILD, fx.db.url(), "work", "bulk", threads, "-"}));
    }
    for (auto& child : workers)
      REQUIRE(child->read_line(30s) == std::optional<std::string>{"ready"});
    CHECK(eventually([&] { return fx.number("SELECT count(*) FROM ran") >= 1000; }, 60s));
    for (auto& child : workers) {
      child->close_stdin();
      CHECK(child->wait(30s) == 0);
    }
    CHECK(fx.number("SELECT count(*) FROM ran") == 1000);
    CHECK(fx.number("SELECT count(DISTINCT id) FROM ran") == 1000);
    CHECK(fx.number("SELECT count(*) FROM pgkit.queue_job WHERE state = 'completed' "
                    "AND attempt = 1") == 1000);
  }

  SUBCASE("a job whose worker was killed (kill -9) mid-job runs again after its timeout") {
    pgkit::enqueue_options options;
    // Heartbeats come every third of the timeout: a timeout of 1.2 s lets the worker stall
    // 800 ms on a loaded machine before its job looks abandoned.
    options.timeout = 1200ms;
    auto id = store.enqueue("fragile", "x", options);
    pgkit_test::child_process hanging{
        {PGKIT_QUEUE_CHILD, fx.db.url(), "hang", "fragile", "-", "-"}};
    REQUIRE(hanging.read_line(30s) == "claimed " + std::to_string(id));
    // While the worker lives, its heartbeats keep the job its own past the timeout.
    std::this_thread::sleep_for(1500ms);
    CHECK(store.rescue() == 0);
    CHECK(store.find(id)->state == pgkit::job_state::running);
    hanging.send_signal(SIGKILL);
    hanging.wait(10s);
    recorder seen;
    pgkit::queue_worker worker{store, fast_worker()};
    worker.handle("fragile", seen.handler());
    worker.start();
    REQUIRE(eventually([&] { return seen.size() == 1; }));
    CHECK(worker.stop(5s));
    auto info = *store.find(id);
    CHECK(info.state == pgkit::job_state::completed);
    CHECK(info.attempt == 2);
    REQUIRE(info.errors.size() == 1);
    CHECK(info.errors.front().error.find("timed out: no heartbeat from hanging worker") == 0);
  }

  SUBCASE("a heartbeat keeps a long job its own past its timeout") {
    pgkit::enqueue_options options;
    options.timeout = 600ms;  // a heartbeat every 200 ms: stalls up to 400 ms are tolerated
    auto id = store.enqueue("long", "x", options);
    pgkit::queue_worker worker{store, fast_worker()};
    std::atomic<bool> release{false};
    worker.handle("long", [&](const pgkit::job&) {
      while (!release)
        std::this_thread::sleep_for(5ms);
    });
    worker.start();
    REQUIRE(eventually([&] { return store.find(id)->state == pgkit::job_state::running; }));
    // Several timeouts pass while the handler runs: other rescues find nothing to take.
    std::this_thread::sleep_for(1500ms);
    CHECK(store.rescue() == 0);
    release = true;
    REQUIRE(eventually([&] { return store.find(id)->state == pgkit::job_state::completed; }));
    CHECK(store.find(id)->attempt == 1);
    CHECK(worker.stop(5s));
  }

  SUBCASE("NOTIFY wakes an idle worker long before its poll") {
    auto settings = fast_worker();
    settings.poll_interval = std::chrono::hours{1};
    pgkit::queue_worker worker{store, settings};
    recorder seen;
    worker.handle("wake", seen.handler());
    worker.start();
    // Its listener is connected and listening (not a guess at how long that takes). The job
    // comes at once: the threads may still be in their first (empty) look, and a notification
    // during that look must end the wait that follows it (it was lost before, until the poll).
    REQUIRE(eventually([&] {
      return fx.sql(
                 "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                 "AND application_name = 'pgkit queue worker' AND query LIKE 'LISTEN%'") == "1";
    }));
    store.enqueue("wake", "now");
    CHECK(eventually([&] { return seen.size() == 1; }));
    CHECK(worker.stop(5s));
  }

  SUBCASE("a periodic job over 4 processes is enqueued once per tick") {
    std::vector<std::unique_ptr<pgkit_test::child_process>> tickers;
    for (int i = 0; i < 4; ++i) {
      tickers.push_back(std::make_unique<pgkit_test::child_process>(std::vector<std::string>{
          PGKIT_QUEUE_CHILD, fx.db.url(), "tick", "heartbeat", "ticks", "100"}));
    }
    for (auto& child : tickers)
      REQUIRE(child->read_line(30s) == std::optional<std::string>{"ready"});
    CHECK(eventually(
        [&] {
          return fx.number("SELECT count(*) FROM pgkit.queue_job WHERE queue = 'ticks'") >= 11;
        },
        30s));
    for (auto& child : tickers) {
      child->close_stdin();
      CHECK(child->wait(30s) == 0);
    }
    auto jobs = fx.number("SELECT count(*) FROM pgkit.queue_job WHERE queue = 'ticks'");
    CHECK(jobs >= 11);
    CHECK(fx.number("SELECT count(DISTINCT unique_key) FROM pgkit.queue_job "
                    "WHERE queue = 'ticks'") == jobs);
    // One job per tick and no tick skipped between the first and the last.
    CHECK(fx.number("SELECT (max(t) - min(t)) / 100 + 1 FROM (SELECT split_part(unique_key, "
                    "'@', 2)::bigint AS t FROM pgkit.queue_job WHERE queue = 'ticks') AS k") ==
          jobs);
  }

  SUBCASE("a cron schedule enqueues the minute it matches once across workers") {
    pgkit::queue_schedule minutely;
    minutely.name = "minutely";
    minutely.queue = "cron";
    minutely.cron = "* * * * *";
    auto options = fast_worker();
    options.schedules.push_back(minutely);
    pgkit::queue_worker first{store, options};
    pgkit::queue_worker second{store, options};
    first.start();
    second.start();
    REQUIRE(eventually([&] {
      return fx.number("SELECT count(*) FROM pgkit.queue_job WHERE queue = 'cron'") > 0;
    }));
    first.stop(10s);
    second.stop(10s);
    // One job per minute (two when the test crossed a minute), keyed by the minute's start.
    auto jobs = fx.number("SELECT count(*) FROM pgkit.queue_job WHERE queue = 'cron'");
    CHECK(jobs <= 2);
    CHECK(fx.number("SELECT count(*) FROM pgkit.queue_job WHERE queue = 'cron' "
                    "AND split_part(unique_key, '@', 2)::bigint % 60000 = 0 "
                    "AND unique_key LIKE 'minutely@%'") == jobs);
    CHECK(fx.number("SELECT count(DISTINCT unique_key) FROM pgkit.queue_job "
                    "WHERE queue = 'cron'") == jobs);

    minutely.cron = "0 25 * * *";
    options.schedules = {minutely};
    auto refused = pgkit_test::expect_error([&] { pgkit::queue_worker{store, options}; });
    CHECK(refused.kind() == pgkit::error_kind::usage);
    CHECK(std::string{refused.what()} ==
          "the cron expression \"0 25 * * *\" is not valid: the hour field takes 0 to 23, not 25");
  }
}

TEST_CASE("pgkit::queue_worker behind PgBouncer in transaction mode polls") {
  pgkit_test::scratch_database db{"queue_bouncer"};
  {
    pqxx::connection connection{db.url()};
    pgkit::apply_modules(connection, {"queue"});
  }
  pgkit_test::pgbouncer bouncer{pgkit_test::port_of(pgkit_test::sandbox_url())};
  auto config = pgkit::config_from_url(bouncer.url(db.name()), "bouncer");
  config.pooler = pgkit::pooler_mode::pgbouncer_transaction;
  config.pool_size = 4;
  auto pool = std::make_shared<pgkit::pool>(config);
  pgkit::queue_store store{pool};
  auto settings = fast_worker(2);
  settings.poll_interval = 50ms;
  std::vector<std::string> errors;
  std::mutex errors_mutex;
  settings.on_error = [&](const pgkit::error& e) {
    std::lock_guard<std::mutex> guard{errors_mutex};
    errors.push_back(e.what());
  };
  pgkit::queue_worker worker{store, settings};
  recorder seen;
  worker.handle("bounced", seen.handler());
  worker.start();
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 20; ++i)
    ids.push_back(store.enqueue("bounced", std::to_string(i)));
  CHECK(eventually([&] { return seen.size() == 20; }));
  CHECK(worker.stop(5s));
  CHECK(std::set<std::int64_t>(seen.ids.begin(), seen.ids.end()) ==
        std::set<std::int64_t>(ids.begin(), ids.end()));
  std::lock_guard<std::mutex> guard{errors_mutex};
  CHECK(errors.empty());
}
