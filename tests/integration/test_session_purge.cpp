// Purging expired sessions and the auth module's expired rows: exact counts, what stays,
// dry runs, scopes, missing modules, time limits, concurrent readers and concurrent purges.

#include <doctest/doctest.h>

#include <pqxx/pqxx>

#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "pgkit/error.hpp"
#include "pgkit/migration.hpp"
#include "pgkit/session.hpp"

using namespace std::chrono_literals;
using pgkit_test::query_value;

namespace {

void run_sql(const std::string& url, const std::string& sql) {
  pqxx::connection connection{url};
  pqxx::nontransaction tx{connection};
  tx.exec(sql);
}

long long count(const std::string& url, const std::string& sql) {
  return std::stoll(query_value(url, sql));
}

// `expired` sessions past their expiry and `live` ones with a day left, keys made up in SQL.
void add_sessions(const std::string& url, int expired, int live,
                  const std::string& schema = "pgkit") {
  run_sql(url, "INSERT INTO " + schema +
                   ".session (key_hash, expires_at) SELECT sha256(('expired ' || i)::bytea), "
                   "now() - (i || ' seconds')::interval FROM generate_series(1, " +
                   std::to_string(expired) + ") i");
  run_sql(url, "INSERT INTO " + schema +
                   ".session (key_hash, expires_at) SELECT sha256(('live ' || i)::bytea), "
                   "now() + interval '1 day' FROM generate_series(1, " +
                   std::to_string(live) + ") i");
}

// Auth rows: 300 expired sessions, 50 live ones and 20 that never expire; per user of ten, one
// expired, one used and one deleted token for the first five and one live token for the rest.
void add_auth_rows(const std::string& url) {
  run_sql(url,
          "INSERT INTO pgkit.auth_user (email) SELECT 'user' || i || '@example.com' "
          "FROM generate_series(1, 10) i");
  run_sql(
      url,
      "INSERT INTO pgkit.auth_session (user_id, expires_at, ip, user_agent) "
      "SELECT (SELECT id FROM pgkit.auth_user ORDER BY email LIMIT 1), now() - interval '1 hour', "
      "'192.0.2.1', 'test' FROM generate_series(1, 300)");
  run_sql(url,
          "INSERT INTO pgkit.auth_session (user_id, expires_at) SELECT "
          "(SELECT id FROM pgkit.auth_user ORDER BY email LIMIT 1), now() + interval '1 day' "
          "FROM generate_series(1, 50)");
  run_sql(
      url,
      "INSERT INTO pgkit.auth_session (user_id, expires_at) SELECT "
      "(SELECT id FROM pgkit.auth_user ORDER BY email LIMIT 1), NULL FROM generate_series(1, 20)");
  run_sql(url,
          "WITH numbered AS (SELECT id, row_number() OVER (ORDER BY email) AS n "
          "FROM pgkit.auth_user) "
          "INSERT INTO pgkit.auth_one_time_token (user_id, token_type, token_hash, expires_at, "
          "used_at, deleted_at) "
          "SELECT id, 'password_reset', sha256(('expired ' || n)::bytea), "
          "now() - interval '1 minute', NULL::timestamptz, NULL::timestamptz FROM numbered WHERE n "
          "<= 5 UNION ALL "
          "SELECT id, 'magic_link', sha256(('used ' || n)::bytea), now() + interval '1 hour', "
          "now(), NULL FROM numbered WHERE n <= 5 UNION ALL "
          "SELECT id, 'email_confirmation', sha256(('deleted ' || n)::bytea), "
          "now() + interval '1 hour', NULL, now() FROM numbered WHERE n <= 5 UNION ALL "
          "SELECT id, 'password_reset', sha256(('live ' || n)::bytea), now() + interval '1 hour', "
          "NULL, NULL FROM numbered WHERE n > 5");
}

struct purge_fixture {
  explicit purge_fixture(const std::string& label,
                         const std::vector<std::string>& modules = {"session", "auth"})
      : db{label}, connection{db.url()} {
    if (!modules.empty())
      pgkit::apply_modules(connection, modules);
  }
  long long sessions() const { return count(db.url(), "SELECT count(*) FROM pgkit.session"); }

  pgkit_test::scratch_database db;
  pqxx::connection connection;
};

}  // namespace

TEST_CASE("pgkit::sweep_expired_sessions") {
  SUBCASE("20 000 expired and 500 live sessions: exactly the 500 remain, expired auth rows go") {
    purge_fixture f{"purge_counts"};
    add_sessions(f.db.url(), 20000, 500);
    add_auth_rows(f.db.url());
    auto result = pgkit::sweep_expired_sessions(f.connection, "pgkit");
    CHECK(result.rows("session") == 20000);
    CHECK(result.rows("auth_session") == 300);
    CHECK(result.rows("auth_one_time_token") == 15);
    CHECK(result.deleted == 20315);
    CHECK(result.complete);
    CHECK(result.skipped_modules.empty());
    REQUIRE(result.tables.size() == 3);
    CHECK(result.tables[0].table == "session");
    CHECK(result.tables[1].table == "auth_session");
    CHECK(result.tables[2].table == "auth_one_time_token");
    // 20 full batches and a short one for the sessions, one short batch each for auth.
    CHECK(result.batches == 23);

    CHECK(f.sessions() == 500);
    CHECK(count(f.db.url(), "SELECT count(*) FROM pgkit.session WHERE expires_at <= now()") == 0);
    CHECK(count(f.db.url(), "SELECT count(*) FROM pgkit.auth_session") == 70);
    CHECK(count(f.db.url(), "SELECT count(*) FROM pgkit.auth_session WHERE expires_at IS NULL") ==
          20);
    CHECK(query_value(f.db.url(),
                      "SELECT string_agg(DISTINCT token_type || ' ' || (used_at IS NULL) || ' ' || "
                      "(deleted_at IS NULL) || ' ' || (expires_at > now()), ',') "
                      "FROM pgkit.auth_one_time_token") == "password_reset true true true");
    CHECK(count(f.db.url(), "SELECT count(*) FROM pgkit.auth_one_time_token") == 5);
    CHECK(count(f.db.url(), "SELECT count(*) FROM pgkit.auth_user") == 10);

    auto again = pgkit::sweep_expired_sessions(f.connection, "pgkit");
    CHECK(again.deleted == 0);
    CHECK(again.batches == 3);
  }

  SUBCASE("count_only counts what a purge would delete and deletes nothing") {
    purge_fixture f{"purge_dry"};
    add_sessions(f.db.url(), 1200, 30);
    add_auth_rows(f.db.url());
    pgkit::sweep_options options;
    options.dry_run = true;
    auto result = pgkit::sweep_expired_sessions(f.connection, "pgkit", options);
    CHECK(result.rows("session") == 1200);
    CHECK(result.rows("auth_session") == 300);
    CHECK(result.rows("auth_one_time_token") == 15);
    CHECK(result.batches == 0);
    CHECK(f.sessions() == 1230);
    CHECK(count(f.db.url(), "SELECT count(*) FROM pgkit.auth_session") == 370);
  }

  SUBCASE("a scope limits the purge to the session table or to the auth tables") {
    purge_fixture f{"purge_scope"};
    add_sessions(f.db.url(), 100, 10);
    add_auth_rows(f.db.url());
    pgkit::sweep_options options;
    options.scope = pgkit::sweep_scope::auth;
    auto auth = pgkit::sweep_expired_sessions(f.connection, "pgkit", options);
    CHECK(auth.tables.size() == 2);
    CHECK(auth.rows("auth_session") == 300);
    CHECK(auth.rows("auth_one_time_token") == 15);
    CHECK(f.sessions() == 110);
    options.scope = pgkit::sweep_scope::session;
    auto session = pgkit::sweep_expired_sessions(f.connection, "pgkit", options);
    CHECK(session.tables.size() == 1);
    CHECK(session.rows("session") == 100);
    CHECK(f.sessions() == 10);
  }

  SUBCASE("modules that are not applied are skipped; none applied is an error with a hint") {
    purge_fixture only_session{"purge_no_auth", {"session"}};
    add_sessions(only_session.db.url(), 10, 1);
    auto result = pgkit::sweep_expired_sessions(only_session.connection, "pgkit");
    CHECK(result.rows("session") == 10);
    CHECK(result.tables.size() == 1);
    CHECK(result.skipped_modules == std::vector<std::string>{"auth"});
    pgkit::sweep_options options;
    options.scope = pgkit::sweep_scope::auth;
    try {
      pgkit::sweep_expired_sessions(only_session.connection, "pgkit", options);
      FAIL("no error");
    } catch (const pgkit::error& e) {
      CHECK(e.kind() == pgkit::error_kind::undefined_object);
      CHECK(std::string{e.what()} == "the auth module is not applied in schema pgkit");
      CHECK(e.hint() == "run pgkit apply auth");
    }

    purge_fixture nothing{"purge_nothing", {}};
    try {
      pgkit::sweep_expired_sessions(nothing.connection, "pgkit");
      FAIL("no error");
    } catch (const pgkit::error& e) {
      CHECK(e.kind() == pgkit::error_kind::undefined_object);
      CHECK(std::string{e.what()} ==
            "neither the session nor the auth module is applied in schema pgkit");
      CHECK(e.hint() == "run pgkit apply session auth (or the one you use)");
    }
  }

  SUBCASE("max_duration stops between batches; the next purge finishes the job") {
    purge_fixture f{"purge_time", {"session"}};
    add_sessions(f.db.url(), 3000, 5);
    pgkit::sweep_options options;
    options.batch_size = 1;
    options.max_duration = 1ms;  // 3000 one-row transactions take far longer
    auto partial = pgkit::sweep_expired_sessions(f.connection, "pgkit", options);
    CHECK_FALSE(partial.complete);
    CHECK(partial.rows("session") < 3000);
    auto rest = pgkit::sweep_expired_sessions(f.connection, "pgkit");
    CHECK(rest.complete);
    CHECK(partial.rows("session") + rest.rows("session") == 3000);
    CHECK(f.sessions() == 5);
  }

  SUBCASE("bad options and schemas are refused before anything runs") {
    purge_fixture f{"purge_bad", {"session"}};
    pgkit::sweep_options options;
    options.batch_size = 0;
    CHECK_THROWS_AS(pgkit::sweep_expired_sessions(f.connection, "pgkit", options),
                    pgkit::usage_error);
    options.batch_size = 10;
    options.max_duration = 0ms;
    CHECK_THROWS_AS(pgkit::sweep_expired_sessions(f.connection, "pgkit", options),
                    pgkit::usage_error);
    CHECK_THROWS_AS(pgkit::sweep_expired_sessions(f.connection, "x\"; DROP TABLE y; --"),
                    pgkit::usage_error);
  }

  SUBCASE("a purge in another schema") {
    pgkit_test::scratch_database db{"purge_schema"};
    pqxx::connection connection{db.url()};
    pgkit::apply_modules(connection, {"session"}, "web");
    add_sessions(db.url(), 40, 2, "web");
    auto result = pgkit::sweep_expired_sessions(connection, "web");
    CHECK(result.rows("session") == 40);
    CHECK(count(db.url(), "SELECT count(*) FROM web.session") == 2);
  }

  SUBCASE("readers keep reading while purge runs; nothing live is lost, nothing expired stays") {
    purge_fixture f{"purge_readers", {"session"}};
    auto config = pgkit::config_from_url(f.db.url(), "test");
    config.pool_size = 4;
    auto pool = std::make_shared<pgkit::pool>(config);
    pgkit::session_store store{pool};
    std::vector<std::string> live;
    std::vector<std::string> expired;
    for (int i = 0; i < 100; ++i)
      live.push_back(store.generate("live " + std::to_string(i), 1h));
    for (int i = 0; i < 1000; ++i)
      expired.push_back(store.generate("expired", 1h));
    run_sql(f.db.url(),
            "UPDATE pgkit.session SET expires_at = now() - interval '1 minute' "
            "WHERE data = 'expired'::bytea");
    add_sessions(f.db.url(), 5000, 0);

    std::atomic<bool> purging{true};
    std::atomic<long> live_reads{0};
    std::atomic<long> wrong_reads{0};
    auto reader = [&](int seed) {
      std::size_t i = static_cast<std::size_t>(seed);
      do {
        auto found = store.get(live[i % live.size()]);
        if (!found || found->data != "live " + std::to_string(i % live.size()))
          ++wrong_reads;
        ++live_reads;
        if (store.get(expired[(i * 7) % expired.size()]))
          ++wrong_reads;
        ++i;
      } while (purging.load());
    };
    std::vector<std::future<void>> readers;
    for (int t = 0; t < 3; ++t)
      readers.push_back(std::async(std::launch::async, reader, t * 31));
    pgkit::sweep_options options;
    options.batch_size = 100;
    auto result = store.sweep(options);
    purging = false;
    for (auto& r : readers)
      r.get();

    CHECK(wrong_reads == 0);
    CHECK(live_reads > 0);
    // Readers delete some expired sessions themselves; purge takes the rest, and together
    // they leave exactly the live ones.
    CHECK(result.rows("session") <= 6000);
    CHECK(result.rows("session") >= 5000);
    CHECK(store.sweep().rows("session") == 0);
    CHECK(f.sessions() == 100);
    for (std::size_t i = 0; i < live.size(); ++i)
      CHECK(store.get(live[i])->data == "live " + std::to_string(i));
  }

  SUBCASE("two purges at once never delete the same row twice and never wait on each other") {
    purge_fixture f{"purge_twice", {"session"}};
    add_sessions(f.db.url(), 30000, 100);
    pqxx::connection second{f.db.url()};
    pgkit::sweep_options options;
    options.batch_size = 500;
    auto one = std::async(std::launch::async, [&] {
      return pgkit::sweep_expired_sessions(f.connection, "pgkit", options);
    });
    auto two = std::async(std::launch::async,
                          [&] { return pgkit::sweep_expired_sessions(second, "pgkit", options); });
    auto a = one.get();
    auto b = two.get();
    CHECK(a.rows("session") + b.rows("session") == 30000);
    // A purge that stopped on a short batch while the other still worked leaves the rest to it.
    CHECK(f.sessions() == 100);
  }
}
