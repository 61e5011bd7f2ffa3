// The session store against a real PostgreSQL: keys and what is stored, expiry on the database
// clock, set/touch/clear semantics, compare-and-set between concurrent writers, malformed keys,
// schemas, PgBouncer's unnamed-statement mode.

#include <doctest/doctest.h>

#include <pqxx/pqxx>

#include <atomic>
#include <chrono>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "pgkit/connection.hpp"
#include "pgkit/error.hpp"
#include "pgkit/migration.hpp"
#include "pgkit/session.hpp"

using namespace std::chrono_literals;
using pgkit_test::query_value;

namespace {

// A scratch database with the session module applied and a store on a pool of `pool_size`.
struct session_fixture {
  explicit session_fixture(const std::string& label, pgkit::session_options options = {},
                           std::size_t pool_size = 4)
      : db{label} {
    pqxx::connection connection{db.url()};
    pgkit::apply_modules(connection, {"session"});
    auto config = pgkit::config_from_url(db.url(), "test");
    config.pool_size = pool_size;
    pool = std::make_shared<pgkit::pool>(config);
    store = std::make_unique<pgkit::session_store>(pool, options);
  }

  std::string sql(const std::string& statement) const { return query_value(db.url(), statement); }
  // The session row's column `what`, found by the digest the database computes from `key`.
  std::string column(const std::string& key, const std::string& what) const {
    return sql("SELECT " + what + " FROM pgkit.session WHERE key_hash = sha256('" + key +
               "'::bytea)");
  }
  long long rows() const { return std::stoll(sql("SELECT count(*) FROM pgkit.session")); }

  pgkit_test::scratch_database db;
  std::shared_ptr<pgkit::pool> pool;
  std::unique_ptr<pgkit::session_store> store;
};

bool is_url_safe(const std::string& key) {
  for (char c : key) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok)
      return false;
  }
  return true;
}

}  // namespace

TEST_CASE("pgkit::session_store") {
  SUBCASE("generate returns distinct 43-character URL-safe keys; get returns the data") {
    session_fixture f{"session_keys"};
    std::set<std::string> keys;
    for (int i = 0; i < 200; ++i) {
      auto key = f.store->generate("data " + std::to_string(i));
      CHECK(key.size() == 43);
      CHECK(is_url_safe(key));
      keys.insert(key);
    }
    CHECK(keys.size() == 200);
    CHECK(f.rows() == 200);
    auto key = f.store->generate("hello");
    auto found = f.store->get(key);
    REQUIRE(found);
    CHECK(found->data == "hello");
    CHECK(found->version == 1);
  }

  SUBCASE("only the SHA-256 digest of the key is stored; the key appears nowhere in the table") {
    session_fixture f{"session_digest"};
    auto key = f.store->generate("payload");
    CHECK(f.sql("SELECT count(*) FROM pgkit.session") == "1");
    CHECK(f.sql("SELECT encode(key_hash, 'hex') = encode(sha256('" + key +
                "'::bytea), 'hex') FROM pgkit.session") == "t");
    CHECK(f.sql("SELECT octet_length(key_hash) FROM pgkit.session") == "32");
    // Neither the row's text form nor any of its bytes contain the key.
    CHECK(f.sql("SELECT count(*) FROM pgkit.session s WHERE s::text LIKE '%" + key +
                "%' OR "
                "position('" +
                key +
                "'::bytea IN s.key_hash) > 0 OR "
                "position('" +
                key + "'::bytea IN s.data) > 0") == "0");
    CHECK(f.sql("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'pgkit' "
                "AND table_name = 'session' AND data_type IN ('text', 'character varying', "
                "'character')") == "0");
  }

  SUBCASE("data is bytes: NUL bytes, high bytes and a megabyte survive the round trip") {
    session_fixture f{"session_bytes"};
    std::string binary{"a\0b\xff\x80z", 6};
    auto key = f.store->generate(binary);
    CHECK(f.store->get(key)->data == binary);
    std::string large(1 << 20, 'x');
    large[12345] = '\0';
    CHECK(f.store->set(key, large) == pgkit::set_result::updated);
    CHECK(f.store->get(key)->data == large);
    auto empty = f.store->generate();
    CHECK(f.store->get(empty)->data.empty());
  }

  SUBCASE("the default period is one week and set_default_period changes later sessions") {
    session_fixture f{"session_period"};
    CHECK(f.store->default_period() == std::chrono::hours{24 * 7});
    auto week = f.store->generate("w");
    auto remaining = f.store->get(week)->remaining;
    CHECK(remaining <= std::chrono::hours{24 * 7});
    CHECK(remaining > std::chrono::hours{24 * 7} - 1min);
    CHECK(f.column(week, "expires_at - created_at") == "7 days");

    f.store->set_default_period(1h);
    CHECK(f.store->default_period() == 1h);
    auto hour = f.store->generate("h");
    CHECK(f.store->get(hour)->remaining <= 1h);
    CHECK(f.store->get(hour)->remaining > 59min);
    CHECK(f.column(hour, "expires_at - created_at") == "01:00:00");
    // The one-week session keeps its expiry; a set without ttl uses the new default.
    CHECK(f.store->get(week)->remaining > std::chrono::hours{24 * 6});
    CHECK(f.store->set(week, "w2") == pgkit::set_result::updated);
    CHECK(f.store->get(week)->remaining <= 1h);

    CHECK_THROWS_AS(f.store->set_default_period(0ms), pgkit::usage_error);
    CHECK_THROWS_AS(f.store->set_default_period(-5s), pgkit::usage_error);
    CHECK(f.store->default_period() == 1h);
    CHECK_THROWS_AS(f.store->generate("x", 0ms), pgkit::usage_error);
    CHECK_THROWS_AS(f.store->set(hour, "x", -1s), pgkit::usage_error);
    pgkit::session_options bad;
    bad.default_period = 0s;
    CHECK_THROWS_AS(pgkit::session_store(f.pool, bad), pgkit::usage_error);
  }

  SUBCASE("a period longer than 100 years is a usage error, sent nowhere") {
    session_fixture f{"session_forever"};
    auto forever = std::chrono::milliseconds::max();
    auto key = f.store->generate("x", 1h);
    CHECK_THROWS_WITH_AS(f.store->generate("y", forever),
                         doctest::Contains("a session's ttl is 9223372036854775807 ms"),
                         pgkit::usage_error);
    CHECK_THROWS_AS(f.store->set(key, "y", forever), pgkit::usage_error);
    CHECK_THROWS_AS(f.store->set_default_period(forever), pgkit::usage_error);
    // The hint speaks of sessions, not of the cache's never_expires.
    try {
      f.store->generate("y", forever);
    } catch (const pgkit::error& e) {
      CHECK(e.hint().find("never_expires") == std::string::npos);
      CHECK(e.hint().find("cache") == std::string::npos);
      CHECK(e.hint().find("session") != std::string::npos);
    }
    CHECK(f.rows() == 1);
    CHECK(f.store->get(key)->data == "x");
  }

  SUBCASE("expiry follows the database clock") {
    session_fixture f{"session_clock"};
    auto key = f.store->generate("clock", 1h);
    // The server decides what is left: move the expiry on the server and read it back.
    f.sql("UPDATE pgkit.session SET expires_at = now() + interval '10 minutes'");
    auto remaining = f.store->get(key)->remaining;
    CHECK(remaining <= 10min);
    CHECK(remaining > 9min);
    f.sql("UPDATE pgkit.session SET expires_at = now() - interval '1 second'");
    CHECK_FALSE(f.store->get(key));
    CHECK(f.rows() == 0);  // the expired row was deleted by the read

    auto brief = f.store->generate("brief", 300ms);
    std::this_thread::sleep_for(1s);
    CHECK_FALSE(f.store->get(brief));
    CHECK(f.store->set(brief, "again") == pgkit::set_result::missing);
    CHECK(f.store->touch(brief) == pgkit::touch_result::missing);
    CHECK(f.rows() == 0);
  }

  SUBCASE("an expired session whose row another transaction holds is not waited for") {
    session_fixture f{"session_nowait"};
    auto key = f.store->generate("held", 1h);
    f.sql("UPDATE pgkit.session SET expires_at = now() - interval '1 minute'");
    pqxx::connection holder{f.db.url()};
    pqxx::work lock{holder};
    lock.exec("SELECT * FROM pgkit.session FOR UPDATE");
    auto read = std::async(std::launch::async, [&] { return f.store->get(key); });
    REQUIRE(read.wait_for(30s) == std::future_status::ready);
    CHECK_FALSE(read.get());
    lock.commit();
    CHECK(f.rows() == 1);  // left for purge or the next reader
    CHECK_FALSE(f.store->get(key));
    CHECK(f.rows() == 0);
  }

  SUBCASE("set replaces the data of a live session, bumps the version and says when none exists") {
    session_fixture f{"session_set"};
    auto key = f.store->generate("one", 1h);
    CHECK(f.store->set(key, "two", 2h) == pgkit::set_result::updated);
    auto found = f.store->get(key);
    CHECK(found->data == "two");
    CHECK(found->version == 2);
    CHECK(found->remaining > 1h);
    CHECK(f.store->set(key, "three") == pgkit::set_result::updated);
    CHECK(f.store->get(key)->version == 3);

    CHECK(f.store->clear(key));
    CHECK(f.store->set(key, "revived?") == pgkit::set_result::missing);
    CHECK_FALSE(f.store->get(key));
    CHECK(f.rows() == 0);

    // An expired session is not revived by set.
    auto old = f.store->generate("old", 1h);
    f.sql("UPDATE pgkit.session SET expires_at = now() - interval '1 second'");
    CHECK(f.store->set(old, "new") == pgkit::set_result::missing);
    CHECK(f.column(old, "convert_from(data, 'UTF8')") == "old");
  }

  SUBCASE("set without a ttl keeps an expiry within the touch interval of the default period") {
    pgkit::session_options options;
    options.touch_interval = 1min;
    options.default_period = 1h;
    session_fixture f{"session_set_expiry", options};
    auto key = f.store->generate("a");
    auto expiry = f.column(key, "expires_at");
    // Moments later the default period lands within a minute of the current expiry: it stays,
    // so no indexed column changes (the row can be updated in place).
    CHECK(f.store->set(key, "b") == pgkit::set_result::updated);
    CHECK(f.column(key, "expires_at") == expiry);
    CHECK(f.column(key, "convert_from(data, 'UTF8')") == "b");
    auto cas_expiry = f.column(key, "expires_at");
    CHECK(f.store->compare_and_set(key, 2, "c") == pgkit::set_result::updated);
    CHECK(f.column(key, "expires_at") == cas_expiry);
    CHECK(f.store->get(key)->version == 3);
  }

  SUBCASE("touch extends, but skips the write when the session was touched recently") {
    pgkit::session_options options;
    options.touch_interval = 1min;
    session_fixture f{"session_touch", options};
    auto key = f.store->generate("t", 1h);
    auto written = f.column(key, "xmin::text");
    // Just created: moving the expiry by a few milliseconds is not worth a write.
    CHECK(f.store->touch(key, 1h) == pgkit::touch_result::skipped);
    CHECK(f.column(key, "xmin::text") == written);

    // As if 30 minutes had passed since the last touch.
    f.sql("UPDATE pgkit.session SET expires_at = now() + interval '30 minutes'");
    written = f.column(key, "xmin::text");
    CHECK(f.store->touch(key, 1h) == pgkit::touch_result::extended);
    CHECK(f.column(key, "xmin::text") != written);
    CHECK(f.store->get(key)->remaining > 59min);
    CHECK(f.store->get(key)->version == 1);  // touch does not change the data's version
    CHECK(f.store->touch(key, 1h) == pgkit::touch_result::skipped);

    // Never shortens: a shorter ttl than what is left is no write.
    CHECK(f.store->touch(key, 1min) == pgkit::touch_result::skipped);
    CHECK(f.store->get(key)->remaining > 59min);
    // Without ttl it extends to the default period (a week), far past the interval.
    CHECK(f.store->touch(key) == pgkit::touch_result::extended);
    CHECK(f.store->get(key)->remaining > std::chrono::hours{24 * 6});

    CHECK(f.store->clear(key));
    CHECK(f.store->touch(key, 1h) == pgkit::touch_result::missing);

    // With an interval of zero every touch that moves the expiry later writes.
    pgkit::session_options eager;
    eager.touch_interval = 0ms;
    pgkit::session_store always{f.pool, eager};
    auto other = always.generate("o", 1h);
    std::this_thread::sleep_for(5ms);
    CHECK(always.touch(other, 1h) == pgkit::touch_result::extended);
  }

  SUBCASE("clear deletes the session and says whether there was one") {
    session_fixture f{"session_clear"};
    auto key = f.store->generate("c");
    auto other = f.store->generate("d");
    CHECK(f.store->clear(key));
    CHECK_FALSE(f.store->clear(key));
    CHECK_FALSE(f.store->get(key));
    CHECK(f.store->get(other)->data == "d");
    CHECK(f.rows() == 1);
  }

  SUBCASE("malformed keys are simply not found, never an SQL error") {
    session_fixture f{"session_malformed"};
    auto real = f.store->generate("real");
    std::vector<std::string> keys = {"",
                                     "short",
                                     real + "A",
                                     real.substr(0, 42),
                                     real.substr(0, 42) + "+",
                                     real.substr(0, 42) + "=",
                                     std::string(43, '\0'),
                                     "'; DROP TABLE pgkit.session; --xxxxxxxxxxxxxxxxx",
                                     std::string(100000, 'A'),
                                     "\xff\xfe" + real.substr(2)};
    for (const auto& key : keys) {
      CAPTURE(key.size());
      CHECK_FALSE(f.store->get(key));
      CHECK(f.store->set(key, "x") == pgkit::set_result::missing);
      CHECK(f.store->compare_and_set(key, 1, "x") == pgkit::set_result::missing);
      CHECK(f.store->touch(key) == pgkit::touch_result::missing);
      CHECK_FALSE(f.store->clear(key));
    }
    // A well-formed key that was never generated is just as absent.
    std::string unknown(43, 'A');
    CHECK(pgkit::is_well_formed_session_key(unknown));
    CHECK_FALSE(f.store->get(unknown));
    CHECK(f.store->set(unknown, "x") == pgkit::set_result::missing);
    CHECK(f.rows() == 1);
    CHECK(f.store->get(real)->data == "real");
  }

  SUBCASE("compare_and_set: the second of two writers with the same version gets a conflict") {
    session_fixture f{"session_cas"};
    auto key = f.store->generate("v1");
    auto first = f.store->get(key);
    auto second = f.store->get(key);
    CHECK(first->version == second->version);
    CHECK(f.store->compare_and_set(key, first->version, "from first") ==
          pgkit::set_result::updated);
    CHECK(f.store->compare_and_set(key, second->version, "from second") ==
          pgkit::set_result::conflict);
    auto now = f.store->get(key);
    CHECK(now->data == "from first");
    CHECK(now->version == first->version + 1);
    // Reading again and retrying succeeds.
    CHECK(f.store->compare_and_set(key, now->version, "from second") == pgkit::set_result::updated);
    CHECK(f.store->get(key)->data == "from second");
    CHECK(f.store->clear(key));
    CHECK(f.store->compare_and_set(key, now->version + 1, "gone") == pgkit::set_result::missing);
  }

  SUBCASE("compare_and_set blocked behind a concurrent writer sees its commit and conflicts") {
    session_fixture f{"session_cas_blocked"};
    auto key = f.store->generate("start");
    auto seen = f.store->get(key);
    // Another request's transaction has written the session and not committed yet.
    pqxx::connection other{f.db.url()};
    pqxx::work writer{other};
    writer.exec("UPDATE pgkit.session SET data = 'other'::bytea, version = version + 1");
    auto attempt = std::async(std::launch::async,
                              [&] { return f.store->compare_and_set(key, seen->version, "mine"); });
    CHECK(attempt.wait_for(300ms) == std::future_status::timeout);  // it waits for the row
    writer.commit();
    REQUIRE(attempt.wait_for(30s) == std::future_status::ready);
    CHECK(attempt.get() == pgkit::set_result::conflict);
    CHECK(f.store->get(key)->data == "other");
  }

  SUBCASE("two concurrent writers incrementing with compare_and_set lose no update") {
    session_fixture f{"session_cas_race"};
    auto key = f.store->generate("0");
    constexpr int k_increments = 150;
    std::atomic<int> conflicts{0};
    auto writer = [&] {
      for (int done = 0; done < k_increments;) {
        auto current = f.store->get(key);
        auto next = std::to_string(std::stoi(current->data) + 1);
        auto outcome = f.store->compare_and_set(key, current->version, next);
        if (outcome == pgkit::set_result::updated)
          ++done;
        else if (outcome == pgkit::set_result::conflict)
          ++conflicts;
        else
          FAIL("the session vanished");
      }
    };
    std::thread a{writer};
    std::thread b{writer};
    a.join();
    b.join();
    auto final_value = f.store->get(key);
    CHECK(final_value->data == std::to_string(2 * k_increments));
    CHECK(final_value->version == 1 + 2 * k_increments);
    // The same race with plain set loses updates (why compare_and_set exists) is not asserted:
    // it depends on scheduling. The conflicts seen here are the ones set would have lost.
    MESSAGE("conflicts resolved by retrying: " << conflicts.load());
  }

  SUBCASE("check() hints `pgkit apply session` until the module is applied") {
    pgkit_test::scratch_database db{"session_check"};
    auto pool = std::make_shared<pgkit::pool>(pgkit::config_from_url(db.url(), "test"));
    pgkit::session_options options;
    options.schema = "web";
    pgkit::session_store store{pool, options};
    try {
      store.check();
      FAIL("no error");
    } catch (const pgkit::error& e) {
      CHECK(e.kind() == pgkit::error_kind::undefined_object);
      CHECK(std::string{e.what()}.find("web.session") != std::string::npos);
      CHECK(e.hint() == "run pgkit apply session --schema web");
    }
    pgkit::session_store in_pgkit{pool};
    try {
      in_pgkit.check();
      FAIL("no error");
    } catch (const pgkit::error& e) {
      CHECK(e.kind() == pgkit::error_kind::undefined_object);
      CHECK(std::string{e.what()} ==
            "the session module is not applied in schema pgkit (there is no table pgkit.session)");
      CHECK(e.hint() == "run pgkit apply session");
    }
    pqxx::connection connection{db.url()};
    pgkit::apply_modules(connection, {"session"}, "web");
    CHECK_NOTHROW(store.check());
    CHECK(store.get(store.generate("checked"))->data == "checked");
  }

  SUBCASE("a store in another schema, named in the options or by the pool's configuration") {
    pgkit_test::scratch_database db{"session_schema"};
    pqxx::connection connection{db.url()};
    pgkit::apply_modules(connection, {"session"}, "web");
    auto config = pgkit::config_from_url(db.url(), "test");
    auto pool = std::make_shared<pgkit::pool>(config);
    pgkit::session_options options;
    options.schema = "web";
    pgkit::session_store named{pool, options};
    auto key = named.generate("in web");
    CHECK(query_value(db.url(), "SELECT count(*) FROM web.session") == "1");
    CHECK(named.schema() == "web");

    config.schema = "web";
    pgkit::session_store configured{std::make_shared<pgkit::pool>(config)};
    CHECK(configured.schema() == "web");
    CHECK(configured.get(key)->data == "in web");

    // The default schema has no session table: a clear error with a hint.
    pgkit::session_store missing{pool};
    try {
      missing.generate("nowhere");
      FAIL("no error");
    } catch (const pgkit::error& e) {
      CHECK(e.kind() == pgkit::error_kind::undefined_object);
      CHECK(std::string{e.what()}.find("pgkit.session") != std::string::npos);
      CHECK(e.hint() == "run pgkit apply session");
    }
    options.schema = "bad-name";
    CHECK_THROWS_AS(pgkit::session_store(pool, options), pgkit::usage_error);
  }

  SUBCASE("with pooler = pgbouncer-transaction every operation works with unnamed statements") {
    pgkit_test::scratch_database db{"session_unnamed"};
    pqxx::connection connection{db.url()};
    pgkit::apply_modules(connection, {"session"});
    auto config = pgkit::config_from_url(db.url(), "test");
    config.pooler = pgkit::pooler_mode::pgbouncer_transaction;
    config.pool_size = 1;
    auto pool = std::make_shared<pgkit::pool>(config);
    pgkit::session_store store{pool};
    auto key = store.generate("a", 1h);
    auto found = store.get(key);
    CHECK(found->data == "a");
    CHECK(store.set(key, "b") == pgkit::set_result::updated);
    CHECK(store.compare_and_set(key, found->version, "c") == pgkit::set_result::conflict);
    CHECK(store.touch(key) == pgkit::touch_result::skipped);
    CHECK(store.clear(key));
    auto lease = pool->acquire();
    pqxx::nontransaction tx{*lease};
    CHECK(tx.exec("SELECT count(*) FROM pg_prepared_statements")[0][0].as<int>() == 0);
  }
}

TEST_CASE("ocaml-session seeds") {
  SUBCASE("ocaml-session: set with an explicit expiry sets exactly that expiry") {
    pgkit::session_options options;
    options.touch_interval = 10min;
    session_fixture f{"ocaml_set_expiry", options};
    auto key = f.store->generate("a", 1h);
    // A minute less than the current expiry is within the touch interval, and is set all the
    // same: the database's clock decides, and the stored expiry is now() + 59 min exactly.
    for (auto lifetime : {59min, 61min}) {
      CHECK(f.store->set(key, "b", lifetime) == pgkit::set_result::updated);
      const auto minutes = std::to_string(lifetime.count());
      CHECK(f.sql("SELECT abs(extract(epoch FROM expires_at - (now() + interval '" + minutes +
                  " minutes'))) < 5 FROM pgkit.session") == "t");
    }
    auto version = f.store->get(key)->version;
    CHECK(f.store->compare_and_set(key, version, "c", 55min) == pgkit::set_result::updated);
    CHECK(f.sql("SELECT abs(extract(epoch FROM expires_at - (now() + interval '55 minutes'))) "
                "< 5 FROM pgkit.session") == "t");
  }

  SUBCASE("ocaml-session: a session store on one connection") {
    pgkit_test::scratch_database db{"ocaml_one_connection"};
    auto connection = pgkit::connect(db.url());
    pgkit::apply_modules(*connection, {"session"});
    pgkit::session_store store{*connection};
    store.check();
    auto key = store.generate("on one connection", 1h);
    CHECK(store.get(key)->data == "on one connection");
    CHECK(store.set(key, "changed") == pgkit::set_result::updated);
    CHECK(store.compare_and_set(key, 1, "stale") == pgkit::set_result::conflict);
    CHECK(store.touch(key, std::chrono::hours{24 * 14}) == pgkit::touch_result::extended);
    // Calls from several threads take turns on the one connection.
    std::vector<std::future<void>> writers;
    for (int i = 0; i < 4; ++i) {
      writers.push_back(std::async(std::launch::async, [&] {
        for (int n = 0; n < 20; ++n)
          store.generate("w");
      }));
    }
    for (auto& writer : writers)
      writer.get();
    CHECK(query_value(db.url(), "SELECT count(*) FROM pgkit.session") == "81");
    // The application's transaction holds the store's writes until it commits.
    {
      pqxx::work tx{*connection};
      store.generate("rolled back", 1h);
      tx.abort();
    }
    CHECK(query_value(db.url(), "SELECT count(*) FROM pgkit.session") == "81");
    CHECK(store.clear(key));
    CHECK(store.sweep().complete);
    pgkit::session_options with_replica;
    with_replica.replica = std::make_shared<pgkit::pool>(pgkit::config_from_url(db.url(), "r"));
    CHECK_THROWS_AS(pgkit::session_store(*connection, with_replica), pgkit::usage_error);
  }
}
