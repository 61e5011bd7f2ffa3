#include <doctest/doctest.h>

#include <pqxx/pqxx>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "harness.hpp"
#include "migration_cli_support.hpp"
#include "pgkit/migration.hpp"

namespace fs = std::filesystem;
using pgkit_test::process_result;
using pgkit_test::query_value;
using pgkit_test::run_pgkit;
using pgkit_test::run_process;
using pgkit_test::scratch_database;

namespace {

using namespace pgkit_test::migration_cli;

const std::vector<std::string> k_all = {"auth", "cache", "queue", "session"};

}  // namespace

TEST_CASE("pgkit apply, status and rollback") {
  scratch_database db{"cli_apply"};
  auto addr = "--addr=" + db.url();

  SUBCASE("apply on an empty database, again, status, rollback of every step, apply again") {
    auto first = run_pgkit(args({"apply", addr}, k_all));
    REQUIRE_MESSAGE(first.exit_code == 0, first.err);
    CHECK(contains(first.err, "applied 9 migrations in schema pgkit"));
    CHECK(table_count(db) == "8");

    auto again = run_pgkit(args({"apply", addr}, k_all));
    CHECK(again.exit_code == 0);
    CHECK(contains(again.err, "nothing to apply"));

    auto status = run_pgkit({"status", addr, "--exit-code"});
    CHECK(status.exit_code == 0);
    CHECK(contains(status.out, "cache        20261206160000  up to date"));

    for (const char* module : {"session", "queue", "cache", "auth", "core"}) {
      // auth has two migrations: its tables, then what the auth store added; cache has three:
      // the table, the near tier's triggers, then their interest check; core two: its tables
      // and uuid7(), then uuid7()'s counter.
      std::string steps = std::string{module} == "cache"                                   ? "3"
                          : std::string{module} == "auth" || std::string{module} == "core" ? "2"
                                                                                           : "1";
      auto rollback = run_pgkit({"rollback", addr, module, "--steps", steps});
      CHECK_MESSAGE(rollback.exit_code == 0, rollback.err);
      CHECK(contains(rollback.err, "rolled back " + steps +
                                       (steps == "1" ? " migration" : " migrations") +
                                       " of module " + module));
      auto pending = run_pgkit(args({"status", addr, "--exit-code"}, k_all));
      CHECK(pending.exit_code == 3);
      CHECK(contains(pending.out, std::string{"pending  "}));
    }
    CHECK(table_count(db) == "0");
    auto reapplied = run_pgkit(args({"apply", addr}, k_all));
    CHECK(reapplied.exit_code == 0);
    CHECK(table_count(db) == "8");
  }
  SUBCASE("status --json is one document with the same facts") {
    REQUIRE(run_pgkit({"apply", addr, "cache"}).exit_code == 0);
    auto status = run_pgkit({"status", addr, "--json", "cache", "session"});
    CHECK(status.exit_code == 0);
    CHECK(contains(status.out, "\"pending\": 1"));
    CHECK(contains(status.out, "\"module\": \"session\""));
    CHECK(contains(status.out, "\"applied_version\": \"20261206160000\""));
  }
  SUBCASE("migrate without --apply prints the pending SQL and changes nothing") {
    auto dry = run_pgkit({"migrate", addr, "cache"});
    CHECK(dry.exit_code == 0);
    CHECK(contains(dry.out, "CREATE UNLOGGED TABLE cache"));
    CHECK(contains(dry.err, "pending: cache 20000101000200_cache.sql"));
    CHECK(query_value(db.url(), "SELECT to_regnamespace('pgkit') IS NULL") == "t");
    auto applied = run_pgkit({"migrate", "--apply", addr, "cache"});
    CHECK(applied.exit_code == 0);
    CHECK(table_count(db) == "3");
    auto nothing = run_pgkit({"migrate", addr, "cache"});
    CHECK(nothing.exit_code == 0);
    CHECK(nothing.out.empty());
  }
  SUBCASE("rollback --to removes every migration newer than the version") {
    auto dir = pgkit_test::temp_dir("pgkit-cli");
    write_file(fs::path{dir} / "app" / "20260301000000_a.sql",
               migration_text("CREATE TABLE a ();", "DROP TABLE a;"));
    write_file(fs::path{dir} / "app" / "20260302000000_b.sql",
               migration_text("CREATE TABLE b ();", "DROP TABLE b;"));
    write_file(fs::path{dir} / "app" / "20260303000000_c.sql",
               migration_text("CREATE TABLE c ();", "DROP TABLE c;"));
    REQUIRE(run_pgkit({"apply", addr, "--migrations-dir", dir, "app"}).exit_code == 0);
    auto rollback =
        run_pgkit({"rollback", addr, "--migrations-dir", dir, "app", "--to", "20260301000000"});
    CHECK_MESSAGE(rollback.exit_code == 0, rollback.err);
    CHECK(table_count(db) == "3");
    CHECK(query_value(db.url(), "SELECT version FROM pgkit.module_version WHERE module = 'app'") ==
          "20260301000000");
    CHECK(run_pgkit({"rollback", addr, "app", "--steps", "2", "--to", "0"}).exit_code == 2);
  }
}

TEST_CASE("pgkit rollback: each down section undoes its up section exactly") {
  scratch_database db{"cli_down"};
  auto addr = "--addr=" + db.url();
  REQUIRE(run_pgkit({"apply", addr, "core"}).exit_code == 0);
  for (const char* module : {"auth", "cache", "queue", "session"}) {
    auto before = schema_catalog(db);
    REQUIRE(run_pgkit({"apply", addr, module}).exit_code == 0);
    CHECK(schema_catalog(db) != before);
    // Every migration of the module: auth has two, cache three.
    std::string steps = std::string{module} == "cache"  ? "3"
                        : std::string{module} == "auth" ? "2"
                                                        : "1";
    REQUIRE(run_pgkit({"rollback", addr, module, "--steps", steps}).exit_code == 0);
    CHECK_MESSAGE(schema_catalog(db) == before, module);
  }
  REQUIRE(run_pgkit({"rollback", addr, "core", "--steps", "2"}).exit_code == 0);
  CHECK(query_value(db.url(),
                    "SELECT count(*) FROM pg_depend WHERE refobjid = "
                    "'pgkit'::regnamespace") == "0");
}

TEST_CASE("pgkit apply: eight processes at once") {
  scratch_database db{"cli_concurrent"};
  std::vector<process_result> results(8);
  std::vector<std::thread> threads;
  for (auto& result : results) {
    threads.emplace_back([&result, &db] {
      result = run_pgkit(args({"apply", "--addr=" + db.url()}, k_all));
    });
  }
  for (auto& thread : threads)
    thread.join();
  int applied_runs = 0;
  for (const auto& result : results) {
    CHECK_MESSAGE(result.exit_code == 0, result.err);
    if (contains(result.err, "applied 9 migrations"))
      ++applied_runs;
  }
  CHECK(applied_runs == 1);
  CHECK(query_value(db.url(), "SELECT count(*) FROM pgkit.schema_migration") == "9");
  CHECK(query_value(db.url(),
                    "SELECT count(DISTINCT (module, version)) FROM "
                    "pgkit.schema_migration") == "9");
}

TEST_CASE("pgkit apply: failures") {
  scratch_database db{"cli_fail"};
  auto addr = "--addr=" + db.url();
  auto dir = pgkit_test::temp_dir("pgkit-cli");

  SUBCASE("a user module whose second migration fails: exit 1, nothing of the first remains") {
    REQUIRE(run_pgkit({"apply", addr, "cache"}).exit_code == 0);
    auto before = bookkeeping(db);
    write_file(fs::path{dir} / "app" / "20260301000000_first.sql",
               migration_text("CREATE TABLE first_table (id int);"));
    auto second = (fs::path{dir} / "app" / "20260302000000_second.sql").string();
    write_file(second, migration_text("INSERT INTO first_table VALUES (1);\n"
                                      "INSERT INTO first_table VALUES ('not a number');"));
    auto result = run_pgkit({"apply", addr, "--migrations-dir", dir, "app", "cache"});
    CHECK(result.exit_code == 1);
    CHECK(
        contains(result.err, "pgkit: error: migration app 20260302000000 (" + second + ") failed"));
    CHECK(contains(result.err, second + ":3"));
    CHECK(contains(result.err, "invalid input syntax for type integer"));
    CHECK(query_value(db.url(), "SELECT to_regclass('pgkit.first_table') IS NULL") == "t");
    CHECK(bookkeeping(db) == before);
  }
  SUBCASE("unknown modules: exit 2 with the known ones, nothing done") {
    auto result = run_pgkit({"apply", addr, "cache", "nope", "other"});
    CHECK(result.exit_code == 2);
    CHECK(contains(result.err,
                   "pgkit: error: unknown modules nope, other; known modules: auth, cache, core, "
                   "queue, session"));
    CHECK(query_value(db.url(), "SELECT to_regnamespace('pgkit') IS NULL") == "t");
    auto none = run_pgkit({"apply", addr});
    CHECK(none.exit_code == 2);
    CHECK(contains(none.err, "known modules: auth, cache, core, queue, session"));
  }
  SUBCASE("malformed files: exit 2 naming the file and the reason") {
    auto file = (fs::path{dir} / "app" / "20260301000000_a.sql").string();
    write_file(file, "-- migrate:up\nCREATE TABLE a ();\n");
    for (const auto& command :
         {std::vector<std::string>{"apply", addr}, std::vector<std::string>{"print-sql"}}) {
      auto result = run_pgkit(args(command, {"--migrations-dir", dir, "app"}));
      CHECK(result.exit_code == 2);
      CHECK(contains(result.err, "pgkit: error: " + file + ": no '-- migrate:down' section"));
    }
    write_file(file, migration_text("SELECT 1;"));
    write_file(fs::path{dir} / "app" / "20260301000000_b.sql", migration_text("SELECT 2;"));
    auto duplicate = run_pgkit({"print-sql", "--migrations-dir", dir, "app"});
    CHECK(duplicate.exit_code == 2);
    CHECK(contains(duplicate.err, "have the same version 20260301000000"));
  }
  SUBCASE("a lock held by another session: exit 1 after --lock-wait, naming its pid") {
    pqxx::connection holder{db.url()};
    pqxx::nontransaction hold{holder};
    hold.exec("SELECT pg_advisory_lock(" + std::to_string(pgkit::migration_lock_key("pgkit")) +
              ")");
    auto result = run_pgkit({"apply", addr, "--lock-wait", "1", "cache"});
    CHECK(result.exit_code == 1);
    CHECK(contains(result.err, "backend pid " + std::to_string(holder.backendpid())));
    CHECK(contains(result.err, "within 1 s"));
    CHECK(query_value(db.url(), "SELECT to_regnamespace('pgkit') IS NULL") == "t");
  }
  SUBCASE("an unreachable server: exit 1, the password redacted, a hint") {
    auto started = std::chrono::steady_clock::now();
    auto result =
        run_pgkit({"status", "--addr=postgresql://app:hunter2@127.0.0.1:1/app", "--wait", "1"});
    CHECK(std::chrono::steady_clock::now() - started >= std::chrono::seconds{1});
    CHECK(result.exit_code == 1);
    CHECK(contains(result.err, "postgresql://app:***@127.0.0.1:1/app"));
    CHECK_FALSE(contains(result.err, "hunter2"));
    CHECK(contains(result.err, "pgkit: hint:"));
  }
  SUBCASE("an invalid --schema is a usage error") {
    auto result = run_pgkit({"print-sql", "--schema", "no-dashes", "cache"});
    CHECK(result.exit_code == 2);
    CHECK(contains(result.err, "invalid schema name 'no-dashes'"));
  }
}

TEST_CASE("pgkit status: drift and out of order") {
  scratch_database db{"cli_drift"};
  auto addr = "--addr=" + db.url();
  auto dir = pgkit_test::temp_dir("pgkit-cli");
  auto module = fs::path{dir} / "app";
  write_file(module / "20260302000000_b.sql", migration_text("CREATE TABLE b ();"));
  REQUIRE(run_pgkit({"apply", addr, "--migrations-dir", dir, "app"}).exit_code == 0);

  SUBCASE("an applied file that changed is drifted: status --exit-code exits 3") {
    write_file(module / "20260302000000_b.sql", migration_text("CREATE TABLE b (x int);"));
    auto status = run_pgkit({"status", addr, "--migrations-dir", dir, "--exit-code"});
    CHECK(status.exit_code == 3);
    CHECK(contains(status.out, "drifted  20260302000000_b.sql (changed since it was applied)"));
    auto json = run_pgkit({"status", addr, "--migrations-dir", dir, "--json"});
    CHECK(json.exit_code == 0);
    CHECK(contains(json.out, "\"drifted\": 1"));
    auto apply = run_pgkit({"apply", addr, "--migrations-dir", dir, "app"});
    CHECK(apply.exit_code == 0);
    CHECK(contains(apply.err, "pgkit: warning: " + (module / "20260302000000_b.sql").string()));
  }
  SUBCASE("a pending migration older than the newest applied one is refused unless allowed") {
    write_file(module / "20260301000000_a.sql", migration_text("CREATE TABLE a ();"));
    auto status = run_pgkit({"status", addr, "--migrations-dir", dir, "app"});
    CHECK(contains(status.out, "pending  20260301000000_a.sql (out of order)"));
    auto refused = run_pgkit({"apply", addr, "--migrations-dir", dir, "app"});
    CHECK(refused.exit_code == 2);
    CHECK(contains(refused.err, "older than their module's newest applied one"));
    CHECK(contains(refused.err, "--allow-out-of-order"));
    auto allowed =
        run_pgkit({"apply", addr, "--migrations-dir", dir, "--allow-out-of-order", "app"});
    CHECK(allowed.exit_code == 0);
    CHECK(query_value(db.url(), "SELECT to_regclass('pgkit.a') IS NOT NULL") == "t");
  }
}

TEST_CASE("pgkit print-sql") {
  SUBCASE("--format plain piped into psql leaves the schema and bookkeeping apply leaves") {
    for (const std::string schema : {"pgkit", "Kit_2"}) {
      scratch_database applied{"cli_plain_a"}, scripted{"cli_plain_b"};
      auto dir = pgkit_test::temp_dir("pgkit-cli");
      write_file(fs::path{dir} / "app" / "20260301000000_orders.sql",
                 migration_text("CREATE TABLE orders (id uuid PRIMARY KEY DEFAULT uuid7(), "
                                "user_id uuid REFERENCES auth_user (id));"));
      write_file(fs::path{dir} / "app" / "20260302000000_index.sql",
                 "-- migrate:up transaction:false\n"
                 "CREATE INDEX CONCURRENTLY orders_user_id ON orders (user_id);\n"
                 "-- migrate:down\nDROP INDEX orders_user_id;\n");
      std::vector<std::string> modules{"auth", "cache", "session", "app"};
      std::vector<std::string> common{"--schema", schema, "--migrations-dir", dir};
      auto apply = run_pgkit(args(args({"apply", "--addr=" + applied.url()}, common), modules));
      REQUIRE_MESSAGE(apply.exit_code == 0, apply.err);
      auto psql = run_plain_script(scripted, args(common, modules));
      REQUIRE_MESSAGE(psql.exit_code == 0, psql.err);
      CHECK(schema_catalog(applied) == schema_catalog(scripted));
      auto quoted = "\"" + schema + "\"";
      CHECK(bookkeeping(applied, quoted) == bookkeeping(scripted, quoted));
      auto status = run_pgkit(
          args(args({"status", "--addr=" + scripted.url(), "--exit-code"}, common), modules));
      CHECK_MESSAGE(status.exit_code == 0, status.out);
    }
  }
  SUBCASE("--format dbmate: dbmate up, rollback once per file, up again, status agrees") {
    scratch_database db{"cli_dbmate"};
    auto addr = "--addr=" + db.url();
    auto out = pgkit_test::temp_dir("pgkit-dbmate");
    auto written = run_pgkit(args({"print-sql", "--format", "dbmate", "--out", out}, k_all));
    REQUIRE(written.exit_code == 0);
    CHECK(contains(written.err, "wrote 9 dbmate migrations"));
    auto up = run_dbmate(db, out, "up");
    REQUIRE_MESSAGE(up.exit_code == 0, up.err);
    CHECK(run_pgkit(args({"status", addr, "--exit-code"}, k_all)).exit_code == 0);
    CHECK(query_value(db.url(), "SELECT count(*) FROM public.schema_migrations") == "9");

    // The newest file first: core's uuid7() counter step, then the cache module's
    // near-interest step.
    auto first = run_dbmate(db, out, "rollback");
    REQUIRE_MESSAGE(first.exit_code == 0, first.err);
    auto core = run_pgkit({"status", addr, "--exit-code", "core"});
    CHECK(core.exit_code == 3);
    CHECK(contains(core.out, "pending  20261206200000_uuid7_counter.sql"));
    auto second = run_dbmate(db, out, "rollback");
    REQUIRE_MESSAGE(second.exit_code == 0, second.err);
    auto cache = run_pgkit({"status", addr, "--exit-code", "cache"});
    CHECK(cache.exit_code == 3);
    CHECK(contains(cache.out, "pending  20261206160000_cache_near_interest.sql"));
    for (int i = 0; i < 7; ++i)
      REQUIRE(run_dbmate(db, out, "rollback").exit_code == 0);
    CHECK(table_count(db) == "0");
    CHECK(query_value(db.url(),
                      "SELECT count(*) FROM pg_proc WHERE pronamespace = "
                      "'pgkit'::regnamespace") == "0");
    CHECK(query_value(db.url(), "SELECT count(*) FROM public.schema_migrations") == "0");

    auto again = run_dbmate(db, out, "up");
    REQUIRE_MESSAGE(again.exit_code == 0, again.err);
    CHECK(run_pgkit(args({"status", addr, "--exit-code"}, k_all)).exit_code == 0);
    CHECK(run_pgkit(args({"apply", addr}, k_all)).err.find("nothing to apply") !=
          std::string::npos);
  }
  SUBCASE("--format dbmate needs --out") {
    auto result = run_pgkit({"print-sql", "--format", "dbmate", "cache"});
    CHECK(result.exit_code == 2);
    CHECK(contains(result.err, "needs --out DIR"));
  }
}

TEST_CASE("pgkit __complete modules") {
  auto dir = pgkit_test::temp_dir("pgkit-cli");
  write_file(fs::path{dir} / "billing" / "20260301000000_a.sql", migration_text("SELECT 1;"));
  auto result = run_pgkit({"__complete", "modules", "--migrations-dir", dir});
  CHECK(result.exit_code == 0);
  CHECK(result.out == "auth\nbilling\ncache\ncore\nqueue\nsession\n");
}
