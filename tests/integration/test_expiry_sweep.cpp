// The batched expiry sweep behind the stores' sweep(): max_duration is a client-side
// deadline that also stops a batch in flight. Each case runs its own server, because freezing a
// backend of the shared one could stall the tests running beside it.

#include <doctest/doctest.h>

#include <signal.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include <pqxx/pqxx>

#include "child_process.hpp"
#include "harness.hpp"
#include "pgkit/cache.hpp"
#include "pgkit/config.hpp"
#include "pgkit/connection.hpp"
#include "pgkit/error.hpp"
#include "pgkit/migration.hpp"
#include "pgkit/pool.hpp"
#include "pgkit/query.hpp"
#include "pgkit/session.hpp"

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Runs `body` and returns the pgkit::error it threw (the test fails when it throws none), and
// how long it took.
template <typename Body>
std::pair<pgkit::error, steady::duration> error_of(Body&& body) {
  auto started = steady::now();
  try {
    body();
  } catch (const pgkit::error& e) {
    return {e, steady::now() - started};
  }
  FAIL("no pgkit::error was thrown");
  return {pgkit::error{pgkit::error_kind::internal, "none"}, steady::now() - started};
}

// The first column of the first row of `sql`.
std::string first_value(pqxx::connection& conn, const std::string& sql) {
  std::string value;
  pgkit::stream_query(conn, sql, {}, {}, [&](const pgkit::row_view& row) {
    value = std::string{row.get(0).value_or("NULL")};
    return pgkit::row_action::stop;
  });
  return value;
}

}  // namespace

TEST_CASE("pgkit::cache_store::sweep max_duration is a deadline") {
  pgkit_test::own_sandbox server;
  {
    auto setup = pgkit::connect(server.url());
    pgkit::apply_modules(*setup, {"cache"});
    pgkit::execute_no_data(*setup,
                           "INSERT INTO pgkit.cache (resource_type, key, value, expires_at) "
                           "SELECT 'old', 'k' || g, 'v', now() - interval '1 hour' "
                           "FROM generate_series(1, 5000) AS g");
  }
  auto config = pgkit::config_from_url(server.url(), "test");
  config.pool_size = 1;
  auto connections = std::make_shared<pgkit::pool>(config);
  pgkit::cache_store store{connections};
  auto probe = pgkit::connect(server.url());

  SUBCASE("a frozen backend: the batch in flight is canceled, the connection dropped, no hang") {
    pgkit_test::resume_on_exit resume;
    pgkit::sweep_options options;
    options.batch_size = 1000;
    options.max_duration = 1500ms;
    options.progress = [&](std::size_t, std::size_t) {
      if (resume.pid != 0)
        return;
      // The pool's only connection is the gc's; freeze its backend before the next batch.
      resume.pid = std::stoi(
          first_value(*probe,
                      "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                      "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"));
      REQUIRE(resume.pid > 0);
      REQUIRE(::kill(resume.pid, SIGSTOP) == 0);
    };
    auto [e, took] = error_of([&] { store.sweep(options); });
    CHECK(e.kind() == pgkit::error_kind::timeout);
    CHECK(contains(e.what(), "the time limit of 1500 ms passed while a batch was running"));
    CHECK(contains(e.what(), "after deleting 1000 expired entries in 1 batches"));
    CHECK(took < 20s);
    ::kill(resume.pid, SIGCONT);
    // The canceled batch was rolled back; the committed one stays.
    CHECK(pgkit_test::eventually(
        [&] { return first_value(*probe, "SELECT count(*) FROM pgkit.cache") == "4000"; }));
    // The pool replaces the dropped connection: the next gc finishes the job.
    CHECK(store.sweep().deleted == 4000);
  }
}

TEST_CASE("pgkit::sweep_expired_sessions max_duration is a deadline") {
  pgkit_test::scratch_database db{"sweep_purge"};
  auto connection = pgkit::connect(db.url());
  pgkit::apply_modules(*connection, {"session"});
  pgkit::execute_no_data(*connection,
                         "INSERT INTO pgkit.session (key_hash, data, expires_at) "
                         "SELECT sha256(g::text::bytea), '', now() - interval '1 hour' "
                         "FROM generate_series(1, 100) AS g");

  SUBCASE("a batch waiting on a lock is canceled when the time limit passes") {
    auto holder = pgkit::connect(db.url());
    pqxx::work lock{*holder};
    pgkit::execute_no_data(lock, "LOCK TABLE pgkit.session IN ACCESS EXCLUSIVE MODE");
    pgkit::sweep_options options;
    options.max_duration = 1000ms;
    options.lock_timeout = 60s;
    auto [e, took] =
        error_of([&] { pgkit::sweep_expired_sessions(*connection, "pgkit", options); });
    CHECK(e.kind() == pgkit::error_kind::timeout);
    CHECK(contains(e.what(), "the time limit of 1000 ms passed while a batch was running"));
    CHECK(contains(e.what(), "after deleting 0 expired rows in 0 batches"));
    CHECK(took < 20s);
    lock.abort();
    // The connection was not dropped (the server answered the cancel) and is usable.
    CHECK(pgkit::status(*connection) == pgkit::connection_state::open);
    auto done = pgkit::sweep_expired_sessions(*connection, "pgkit");
    CHECK(done.rows("session") == 100);
    CHECK(done.complete);
  }
}

TEST_CASE("the cache and session sweeps share one vocabulary") {
  pgkit_test::scratch_database db{"sweep_vocabulary"};
  auto connection = pgkit::connect(db.url());
  pgkit::apply_modules(*connection, {"cache", "session"});
  pgkit::execute_no_data(*connection,
                         "INSERT INTO pgkit.cache (resource_type, key, value, expires_at) "
                         "SELECT 'old', 'k' || g, 'v', now() - interval '1 hour' "
                         "FROM generate_series(1, 300) AS g");
  pgkit::execute_no_data(*connection,
                         "INSERT INTO pgkit.cache (resource_type, key, value) "
                         "SELECT 'live', 'k' || g, 'v' FROM generate_series(1, 5) AS g");
  pgkit::execute_no_data(*connection,
                         "INSERT INTO pgkit.session (key_hash, data, expires_at) "
                         "SELECT sha256(g::text::bytea), '', now() - interval '1 hour' "
                         "FROM generate_series(1, 100) AS g");
  pgkit::cache_options cache_settings;
  cache_settings.gc_lock_timeout = 60s;
  pgkit::cache_store store{std::make_shared<pgkit::pool>(pgkit::config_from_url(db.url(), "test")),
                           cache_settings};

  SUBCASE("dry_run counts and deletes nothing; deleted, batches, elapsed and complete") {
    pgkit::sweep_options gc_options;
    gc_options.dry_run = true;
    auto counted = store.sweep(gc_options);
    CHECK(counted.deleted == 300);
    CHECK(counted.complete);
    CHECK(counted.complete);
    CHECK(first_value(*connection, "SELECT count(*) FROM pgkit.cache") == "305");

    pgkit::sweep_options counting;
    counting.dry_run = true;
    auto would = pgkit::sweep_expired_sessions(*connection, "pgkit", counting);
    CHECK(would.deleted == 100);
    CHECK(would.rows("session") == 100);
    CHECK(would.complete);
    CHECK(first_value(*connection, "SELECT count(*) FROM pgkit.session") == "100");

    gc_options.dry_run = false;
    gc_options.batch_size = 100;
    auto swept = store.sweep(gc_options);
    CHECK(swept.deleted == 300);
    CHECK(swept.batches >= 3);
    CHECK(swept.complete);
    CHECK(swept.elapsed.count() > 0);
    std::size_t batches_seen = 0;
    pgkit::sweep_options session_options;
    session_options.batch_size = 40;
    session_options.progress = [&](std::size_t, std::size_t) { ++batches_seen; };
    auto purged = pgkit::sweep_expired_sessions(*connection, "pgkit", session_options);
    CHECK(purged.deleted == 100);
    CHECK(batches_seen == purged.batches);
    CHECK(swept.rows("cache") == 300);
    CHECK(first_value(*connection, "SELECT count(*) FROM pgkit.cache") == "5");
  }

  SUBCASE("sweep's lock_timeout overrides the store's gc_lock_timeout") {
    auto holder = pgkit::connect(db.url());
    pqxx::work lock{*holder};
    pgkit::execute_no_data(lock, "LOCK TABLE pgkit.cache IN ACCESS EXCLUSIVE MODE");
    pgkit::sweep_options gc_options;
    gc_options.lock_timeout = 100ms;
    // Without the override the batch would wait (60 s) until this time limit cancels it.
    gc_options.max_duration = 20s;
    auto failure = error_of([&] { store.sweep(gc_options); });
    CHECK(failure.first.kind() == pgkit::error_kind::lock_timeout);
    lock.abort();
    CHECK(store.sweep().deleted == 300);
  }
}

// The names before sweep() stay for one release as deprecated aliases (CHANGELOG.md). This is
// the only code that still uses them.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
TEST_CASE("the deprecated names of the stores' sweep still work") {
  pgkit_test::scratch_database db{"sweep_deprecated"};
  auto connection = pgkit::connect(db.url());
  pgkit::apply_modules(*connection, {"cache", "session"});
  auto expire_all = [&] {
    pgkit::execute_no_data(*connection,
                           "INSERT INTO pgkit.cache (resource_type, key, value, expires_at) "
                           "SELECT 'old', 'k' || g, 'v', now() - interval '1 hour' "
                           "FROM generate_series(1, 30) AS g");
    pgkit::execute_no_data(*connection,
                           "INSERT INTO pgkit.session (key_hash, data, expires_at) "
                           "SELECT sha256(g::text::bytea), '', now() - interval '1 hour' "
                           "FROM generate_series(1, 20) AS g");
  };
  auto connections = std::make_shared<pgkit::pool>(pgkit::config_from_url(db.url(), "test"));

  SUBCASE("pgkit::cache, cache_ttl, gc, cache_gc_options and cache_gc_result") {
    pgkit::cache store{connections};
    pgkit::cache_ttl lifetime = 1h;
    store.set("t", "k", "v", lifetime);
    expire_all();
    pgkit::cache_gc_options options;
    options.batch_size = 10;
    options.dry_run = true;
    pgkit::cache_gc_result counted = store.gc(options);
    CHECK(counted.deleted == 30);
    CHECK(counted.finished);
    CHECK(store.gc(10, std::nullopt).deleted == 30);
    CHECK(store.gc().deleted == 0);
    CHECK(store.get("t", "k") == "v");
  }

  SUBCASE(
      "purge, purge_expired_sessions, purge_options, purge_mode, purge_scope and purge_result") {
    pgkit::session_store store{connections};
    expire_all();
    pgkit::purge_options options;
    options.mode = pgkit::purge_mode::count_only;
    options.scope = pgkit::purge_scope::session;
    pgkit::purge_result counted = pgkit::purge_expired_sessions(*connection, "pgkit", options);
    CHECK(counted.total() == 20);
    CHECK(counted.rows("session") == 20);
    CHECK(store.purge(options).total() == 20);
    CHECK(store.purge(5).total() == 20);
    CHECK(pgkit::purge_expired_sessions(*connection, "pgkit").total() == 0);
  }
}
#pragma GCC diagnostic pop
