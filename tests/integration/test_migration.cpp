#include <doctest/doctest.h>

#include <pqxx/pqxx>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "harness.hpp"
#include "pgkit/error.hpp"
#include "pgkit/migration.hpp"

namespace fs = std::filesystem;
using pgkit_test::query_value;
using pgkit_test::scratch_database;

namespace {

// pg_locks covers the whole cluster, where other tests run at the same time.
const char* const k_advisory_locks_here =
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
    "(SELECT oid FROM pg_database WHERE datname = current_database())";

void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream{path} << text;
}

std::string migration_text(const std::string& up, const std::string& down = "SELECT 1;") {
  return "-- migrate:up\n" + up + "\n-- migrate:down\n" + down + "\n";
}

std::string bookkeeping(const std::string& url, const std::string& schema = "pgkit") {
  return query_value(url,
                     "SELECT coalesce(string_agg(module || ' ' || version, ',' ORDER BY "
                     "module, version), '') FROM " +
                         schema + ".schema_migration");
}

pgkit::migration_options user_options(const fs::path& dir, std::vector<std::string> modules) {
  pgkit::migration_options options;
  options.migrations_dirs = {dir.string()};
  options.modules = std::move(modules);
  return options;
}

}  // namespace

TEST_CASE("pgkit::apply_modules: the built-in schema") {
  scratch_database db{"builtin"};
  pqxx::connection connection{db.url()};
  auto result = pgkit::apply_modules(connection, {"auth", "cache", "session"});
  REQUIRE(result.applied.size() == 8);
  CHECK(result.applied[0].module == "core");

  SUBCASE("every table exists in schema pgkit, the cache unlogged, and bookkeeping is written") {
    CHECK(query_value(db.url(),
                      "SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class "
                      "WHERE relnamespace = 'pgkit'::regnamespace AND relkind = 'r'") ==
          "auth_one_time_token,auth_session,auth_user,cache,module_version,schema_migration,"
          "session");
    CHECK(query_value(db.url(),
                      "SELECT relpersistence FROM pg_class WHERE oid = "
                      "'pgkit.cache'::regclass") == "u");
    CHECK(bookkeeping(db.url()) ==
          "auth 20000101000100,auth 20261201140000,cache 20000101000200,cache 20000101000210,"
          "cache 20261206160000,core 20000101000000,core 20261206200000,"
          "session 20000101000300");
    CHECK(query_value(db.url(),
                      "SELECT version FROM pgkit.module_version WHERE module = "
                      "'auth'") == "20261201140000");
  }
  SUBCASE("uuid7() gives version-7, RFC variant, time-ordered ids") {
    auto row = query_value(
        db.url(),
        "WITH ids AS (SELECT pgkit.uuid7() AS a, pg_sleep(0.002), pgkit.uuid7() AS b) SELECT "
        "substr(a::text, 15, 1) || substr(a::text, 20, 1) || (a < b)::text FROM ids");
    CHECK(row.substr(0, 1) == "7");
    CHECK(std::string{"89ab"}.find(row.substr(1, 1)) != std::string::npos);
    CHECK(row.substr(2) == "true");
    CHECK(query_value(db.url(),
                      "SELECT abs(extract(epoch FROM now()) * 1000 - ('x' || "
                      "substr(replace(pgkit.uuid7()::text, '-', ''), 1, 12))::bit(48)"
                      "::bigint) < 60000") == "t");
  }
  SUBCASE("columns a person inserts by hand have defaults") {
    pqxx::work tx{connection};
    tx.exec("INSERT INTO pgkit.cache (resource_type, key) VALUES ('t', 'k')");
    tx.exec("INSERT INTO pgkit.session (key_hash) VALUES (sha256('k'))");
    auto user = tx.exec(
        "INSERT INTO pgkit.auth_user (email) VALUES ('a@example.com') "
        "RETURNING id, role, app_metadata::text")[0];
    CHECK(user[1].as<std::string>() == "user");
    CHECK(user[2].as<std::string>() == "{}");
    auto id = user[0].as<std::string>();
    tx.exec("INSERT INTO pgkit.auth_session (user_id) VALUES ('" + id + "')");
    tx.exec("INSERT INTO pgkit.auth_one_time_token (user_id, token_type, token_hash) VALUES ('" +
            id + "', 'password_reset', sha256('t'))");
    CHECK(tx.exec("SELECT expires_at > now() FROM pgkit.session")[0][0].as<bool>());
    tx.commit();
  }
  SUBCASE("email is unique among live users regardless of case; deleted users free it") {
    pqxx::nontransaction tx{connection};
    tx.exec("INSERT INTO pgkit.auth_user (email, phone_number) VALUES ('A@x.org', '+1')");
    CHECK_THROWS_AS(tx.exec("INSERT INTO pgkit.auth_user (email) VALUES ('a@X.org')"),
                    pqxx::unique_violation);
    CHECK_THROWS_AS(tx.exec("INSERT INTO pgkit.auth_user (phone_number) VALUES ('+1')"),
                    pqxx::unique_violation);
    tx.exec("UPDATE pgkit.auth_user SET deleted_at = now()");
    CHECK_NOTHROW(
        tx.exec("INSERT INTO pgkit.auth_user (email, phone_number) VALUES "
                "('a@x.org', '+1')"));
  }
  SUBCASE("one live token per user and type; deleting a user removes its sessions and tokens") {
    pqxx::nontransaction tx{connection};
    auto id = tx.exec("INSERT INTO pgkit.auth_user (email) VALUES ('t@x.org') RETURNING id")[0][0]
                  .as<std::string>();
    auto insert_token = [&](const std::string& hash) {
      tx.exec("INSERT INTO pgkit.auth_one_time_token (user_id, token_type, token_hash) VALUES ('" +
              id + "', 'magic_link', sha256('" + hash + "'))");
    };
    insert_token("1");
    CHECK_THROWS_AS(insert_token("2"), pqxx::unique_violation);
    tx.exec("UPDATE pgkit.auth_one_time_token SET used_at = now()");
    CHECK_NOTHROW(insert_token("2"));
    CHECK_THROWS_AS(tx.exec("INSERT INTO pgkit.auth_one_time_token (user_id, token_type, "
                            "token_hash) VALUES ('" +
                            id + "', 'bogus', sha256('3'))"),
                    pqxx::check_violation);
    tx.exec("INSERT INTO pgkit.auth_session (user_id, ip) VALUES ('" + id + "', '10.0.0.1')");
    tx.exec("DELETE FROM pgkit.auth_user");
    CHECK(tx.exec("SELECT (SELECT count(*) FROM pgkit.auth_session) + (SELECT count(*) FROM "
                  "pgkit.auth_one_time_token)")[0][0]
              .as<int>() == 0);
  }
  SUBCASE("applying again finds nothing to do") {
    CHECK(pgkit::apply_modules(connection, {"auth", "cache", "session"}).applied.empty());
    auto status = pgkit::read_migration_status(connection, {});
    CHECK(status.modules.size() == 4);
    CHECK(status.pending_count() == 0);
  }
  SUBCASE("rolling back every module leaves no table; applying again works") {
    pgkit::migration_options options;
    pgkit::rollback_target all;
    all.to_version = "0";
    auto refused =
        pgkit_test::expect_error([&] { pgkit::rollback_module(connection, options, "core", all); });
    CHECK(refused.kind() == pgkit::error_kind::usage);
    CHECK(std::string{refused.what()}.find("auth, cache, session depend on it") !=
          std::string::npos);
    for (const char* module : {"session", "cache"})
      CHECK(pgkit::rollback_module(connection, options, module, {}).size() == 1);
    pgkit::rollback_target both_auth_steps;
    both_auth_steps.steps = 2;
    CHECK(pgkit::rollback_module(connection, options, "auth", both_auth_steps).size() == 2);
    pgkit::apply_modules(connection, {"cache"});
    pgkit::rollback_module(connection, options, "cache", all);
    // core's two: the bookkeeping tables and uuid7(), then uuid7()'s counter.
    CHECK(pgkit::rollback_module(connection, options, "core", all).size() == 2);
    CHECK(query_value(db.url(),
                      "SELECT count(*) FROM pg_class WHERE relnamespace = "
                      "'pgkit'::regnamespace") == "0");
    CHECK(query_value(db.url(),
                      "SELECT count(*) FROM pg_proc WHERE pronamespace = "
                      "'pgkit'::regnamespace") == "0");
    CHECK(pgkit::apply_modules(connection, {"auth", "cache", "session"}).applied.size() == 8);
  }
}

TEST_CASE("pgkit::apply_modules: schemas, failures, locks and order") {
  scratch_database db{"engine"};
  pqxx::connection connection{db.url()};
  auto dir = fs::path{pgkit_test::temp_dir("pgkit-engine")};

  SUBCASE("--schema puts everything in the named schema") {
    pgkit::apply_modules(connection, {"cache"}, "Other_Schema");
    CHECK(query_value(db.url(), "SELECT to_regclass('\"Other_Schema\".cache') IS NOT NULL") == "t");
    CHECK(query_value(db.url(), "SELECT to_regnamespace('pgkit') IS NULL") == "t");
    CHECK(bookkeeping(db.url(), "\"Other_Schema\"") ==
          "cache 20000101000200,cache 20000101000210,cache 20261206160000,"
          "core 20000101000000,core 20261206200000");
  }
  SUBCASE("a failing migration rolls back the whole run and names module, version and file") {
    pgkit::apply_modules(connection, {"cache"});
    auto before = bookkeeping(db.url());
    write_file(dir / "app" / "20260301120000_first.sql",
               migration_text("CREATE TABLE first_table (id int);"));
    write_file(dir / "app" / "20260302120000_second.sql",
               migration_text("SELECT 1;\nCREATE TABLE second_table (id nosuchtype);"));
    auto failure = pgkit_test::expect_error(
        [&] { pgkit::apply_modules(connection, user_options(dir, {"app"})); });
    std::string message = failure.what();
    CHECK(message.find("app 20260302120000") != std::string::npos);
    CHECK(message.find((dir / "app" / "20260302120000_second.sql").string() + ":3") !=
          std::string::npos);
    CHECK(message.find("nosuchtype") != std::string::npos);
    CHECK(failure.kind() == pgkit::error_kind::undefined_object);
    CHECK(query_value(db.url(), "SELECT to_regclass('pgkit.first_table') IS NULL") == "t");
    CHECK(bookkeeping(db.url()) == before);
  }
  SUBCASE("a lock held by another session makes apply give up after lock_wait, naming its pid") {
    pqxx::connection holder{db.url()};
    pqxx::nontransaction hold{holder};
    hold.exec("SELECT pg_advisory_lock(" + std::to_string(pgkit::migration_lock_key("pgkit")) +
              ")");
    auto options = user_options(dir, {"cache"});
    options.lock_wait = std::chrono::milliseconds{300};
    auto failure = pgkit_test::expect_error([&] { pgkit::apply_modules(connection, options); });
    CHECK(failure.kind() == pgkit::error_kind::timeout);
    CHECK(std::string{failure.what()}.find("backend pid " + std::to_string(holder.backendpid())) !=
          std::string::npos);
    CHECK(query_value(db.url(), "SELECT to_regnamespace('pgkit') IS NULL") == "t");
    hold.exec("SELECT pg_advisory_unlock_all()");
    CHECK(pgkit::apply_modules(connection, options).applied.size() == 5);
  }
  SUBCASE("interrupted() stops a run waiting for the lock, and one between migrations") {
    pqxx::connection holder{db.url()};
    pqxx::nontransaction hold{holder};
    hold.exec("SELECT pg_advisory_lock(" + std::to_string(pgkit::migration_lock_key("pgkit")) +
              ")");
    auto options = user_options(dir, {"cache"});
    bool stop = false;
    options.interrupted = [&stop] { return stop; };
    options.progress = [&stop](const std::string& line) {
      stop = stop || line.find("waiting up to") != std::string::npos;
    };
    auto waiting = pgkit_test::expect_error([&] { pgkit::apply_modules(connection, options); });
    CHECK(waiting.kind() == pgkit::error_kind::canceled);
    CHECK(std::string{waiting.what()} ==
          "interrupted: the running transaction was rolled back and nothing was applied");
    hold.exec("SELECT pg_advisory_unlock_all()");

    write_file(dir / "app" / "20260301120000_table.sql", migration_text("CREATE TABLE t (x int);"));
    write_file(dir / "app" / "20260302120000_index.sql",
               "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY t_x ON t (x);\n"
               "-- migrate:down\nDROP INDEX t_x;\n");
    write_file(dir / "app" / "20260303120000_later.sql", migration_text("CREATE TABLE u ();"));
    options.modules = {"app"};
    stop = false;
    options.progress = [&stop](const std::string& line) {
      stop = stop || line.find("applied app 20260302120000") != std::string::npos;
    };
    auto between = pgkit_test::expect_error([&] { pgkit::apply_modules(connection, options); });
    CHECK(std::string{between.what()} ==
          "interrupted: 3 migrations committed before the interruption stay applied; the rest "
          "was rolled back");
    CHECK(bookkeeping(db.url()) == "app 20260301120000,app 20260302120000,core 20000101000000");
    CHECK(query_value(db.url(), k_advisory_locks_here) == "0");
  }
  SUBCASE(
      "an interruption that cancels the reading of what is applied ends the run as interrupted") {
    // The CLI's interruption sends a cancel request, which fails whatever statement runs; one
    // that lands before the first change (here reading schema_migration, held up by a lock)
    // must still read "interrupted", as one between migrations does.
    pgkit::apply_modules(connection, {"core"});
    write_file(dir / "app" / "20260301120000_table.sql", migration_text("CREATE TABLE t (x int);"));
    pqxx::connection holder{db.url()};
    pqxx::work hold{holder};
    hold.exec("LOCK TABLE pgkit.schema_migration IN ACCESS EXCLUSIVE MODE");
    auto options = user_options(dir, {"app"});
    std::atomic<bool> stop{false};
    options.interrupted = [&stop] { return stop.load(); };
    const auto pid = std::to_string(connection.backendpid());
    std::thread interrupter{[&] {
      pgkit_test::eventually([&] {
        return query_value(db.url(), "SELECT wait_event_type FROM pg_stat_activity WHERE pid = " +
                                         pid) == "Lock";
      });
      stop = true;
      connection.cancel_query();
    }};
    auto failure = pgkit_test::expect_error([&] { pgkit::apply_modules(connection, options); });
    interrupter.join();
    hold.abort();
    CHECK(failure.kind() == pgkit::error_kind::canceled);
    CHECK(std::string{failure.what()} ==
          "interrupted: the running transaction was rolled back and nothing was applied");
    CHECK(query_value(db.url(), "SELECT to_regclass('t') IS NULL") == "t");
  }
  SUBCASE("a transaction-mode pooler is refused before the lock") {
    auto options = user_options(dir, {"cache"});
    options.pooler = pgkit::pooler_mode::pgbouncer_transaction;
    auto refused = pgkit_test::expect_error([&] { pgkit::apply_modules(connection, options); });
    CHECK(refused.kind() == pgkit::error_kind::config);
    CHECK(query_value(db.url(), "SELECT to_regnamespace('pgkit') IS NULL") == "t");
    CHECK(pgkit_test::expect_error([&] {
            pgkit::rollback_module(connection, options, "cache", {});
          }).kind() == pgkit::error_kind::config);
  }
  SUBCASE("lock_timeout bounds a migration waiting for a table lock") {
    pgkit::apply_modules(connection, {"cache"});
    write_file(dir / "app" / "20260301120000_alter.sql",
               migration_text("ALTER TABLE cache ADD COLUMN extra int;"));
    pqxx::connection other{db.url()};
    pqxx::work blocker{other};
    blocker.exec("LOCK TABLE pgkit.cache IN ACCESS SHARE MODE");
    auto options = user_options(dir, {"app"});
    options.lock_timeout = std::chrono::milliseconds{200};
    auto failure = pgkit_test::expect_error([&] { pgkit::apply_modules(connection, options); });
    CHECK(failure.kind() == pgkit::error_kind::lock_timeout);
    blocker.abort();
  }
  SUBCASE("statement_timeout cancels a migration that runs too long") {
    write_file(dir / "app" / "20260301120000_slow.sql", migration_text("SELECT pg_sleep(5);"));
    auto options = user_options(dir, {"app"});
    options.statement_timeout = std::chrono::milliseconds{100};
    CHECK(pgkit_test::expect_error([&] { pgkit::apply_modules(connection, options); }).kind() ==
          pgkit::error_kind::canceled);
  }
  SUBCASE("a transaction:false migration runs on its own and is recorded") {
    write_file(dir / "app" / "20260301120000_table.sql", migration_text("CREATE TABLE t (x int);"));
    write_file(dir / "app" / "20260302120000_index.sql",
               "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY t_x ON t (x);\n"
               "-- migrate:down transaction:false\nDROP INDEX CONCURRENTLY t_x;\n");
    auto result = pgkit::apply_modules(connection, user_options(dir, {"app"}));
    CHECK(result.applied.size() == 4);  // core's two and the app's two
    CHECK(query_value(db.url(), "SELECT to_regclass('pgkit.t_x') IS NOT NULL") == "t");
    pqxx::nontransaction same_session{connection};
    CHECK(same_session.exec("SHOW search_path")[0][0].as<std::string>() == "\"$user\", public");
    same_session.commit();
    pgkit::rollback_module(connection, user_options(dir, {}), "app", {});
    CHECK(query_value(db.url(), "SELECT to_regclass('pgkit.t_x') IS NULL") == "t");
    CHECK(bookkeeping(db.url()) == "app 20260301120000,core 20000101000000,core 20261206200000");
  }
  SUBCASE("out-of-order migrations are refused unless allowed; drift and unknown are reported") {
    write_file(dir / "app" / "20260302120000_b.sql", migration_text("CREATE TABLE b ();"));
    pgkit::apply_modules(connection, user_options(dir, {"app"}));
    write_file(dir / "app" / "20260301120000_a.sql", migration_text("CREATE TABLE a ();"));
    auto refused = pgkit_test::expect_error(
        [&] { pgkit::apply_modules(connection, user_options(dir, {"app"})); });
    CHECK(refused.kind() == pgkit::error_kind::usage);
    CHECK(std::string{refused.what()}.find("20260301120000_a.sql") != std::string::npos);
    auto status = pgkit::read_migration_status(connection, user_options(dir, {"app"}));
    REQUIRE(status.modules.size() == 2);
    CHECK(status.modules[0].module == "app");
    CHECK(status.modules[0].out_of_order.size() == 1);
    CHECK(status.pending_count() == 1);

    auto allowed = user_options(dir, {"app"});
    allowed.out_of_order = pgkit::out_of_order_policy::allow;
    CHECK(pgkit::apply_modules(connection, allowed).applied.size() == 1);

    write_file(dir / "app" / "20260302120000_b.sql", migration_text("CREATE TABLE b (x int);"));
    fs::remove(dir / "app" / "20260301120000_a.sql");
    status = pgkit::read_migration_status(connection, user_options(dir, {}));
    CHECK(status.drifted_count() == 1);
    CHECK(status.modules[0].drifted.at(0).version == "20260302120000");
    CHECK(status.modules[0].unknown.at(0).version == "20260301120000");
    CHECK(pgkit::apply_modules(connection, user_options(dir, {"app"})).drifted.size() == 1);
  }
  SUBCASE("status of a module whose files were not given says so") {
    write_file(dir / "app" / "20260301120000_a.sql", migration_text("CREATE TABLE a ();"));
    pgkit::apply_modules(connection, user_options(dir, {"app"}));
    auto status = pgkit::read_migration_status(connection, {});
    REQUIRE(status.modules.size() == 2);
    CHECK_FALSE(status.modules[0].known);
    CHECK(status.modules[0].unknown.size() == 1);
  }
}
