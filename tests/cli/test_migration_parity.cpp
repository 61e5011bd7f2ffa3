// What a user coming from dbmate runs into: files dbmate accepts, migrations that play with
// transactions and settings, bad bytes, poolers, signals, and `pgkit new`.

#include <doctest/doctest.h>

#include <pqxx/pqxx>

#include <signal.h>

#include <chrono>
#include <regex>
#include <string>

#include "child_process.hpp"
#include "harness.hpp"
#include "migration_cli_support.hpp"
#include "pgkit/migration.hpp"

using namespace pgkit_test::migration_cli;
using pgkit_test::query_value;
using pgkit_test::run_pgkit;
using pgkit_test::scratch_database;

TEST_CASE("pgkit print-sql: a last statement without a semicolon") {
  auto dir = pgkit_test::temp_dir("pgkit-parity");
  auto module = fs::path{dir} / "app";
  write_file(module / "20260301000000_roles.sql",
             migration_text("CREATE TABLE roles (name text PRIMARY KEY);\n"
                            "INSERT INTO roles VALUES ('admin'), ('viewer')",
                            "DROP TABLE roles"));
  write_file(module / "20260302000000_fill.sql",
             migration_text("DO $$\nBEGIN\n  INSERT INTO roles VALUES ('editor');\nEND $$",
                            "DELETE FROM roles WHERE name = 'editor' -- no ';' either"));
  std::vector<std::string> common{"--migrations-dir", dir, "app"};

  SUBCASE("--format plain runs under psql") {
    scratch_database db{"parity_plain"};
    auto psql = run_plain_script(db, common);
    REQUIRE_MESSAGE(psql.exit_code == 0, psql.err);
    CHECK(query_value(db.url(), "SELECT string_agg(name, ',' ORDER BY name) FROM pgkit.roles") ==
          "admin,editor,viewer");
    CHECK(run_pgkit(args({"status", "--addr=" + db.url(), "--exit-code"}, common)).exit_code == 0);
  }
  SUBCASE("--format dbmate runs under dbmate, up and down") {
    scratch_database db{"parity_dbmate"};
    auto out = pgkit_test::temp_dir("pgkit-parity-out");
    REQUIRE(run_pgkit(args({"print-sql", "--format", "dbmate", "--out", out}, common)).exit_code ==
            0);
    auto up = run_dbmate(db, out, "up");
    REQUIRE_MESSAGE(up.exit_code == 0, up.err);
    CHECK(query_value(db.url(), "SELECT count(*) FROM pgkit.roles") == "3");
    // dbmate rolls back the newest version: core's uuid7() counter step (20261206200000),
    // then the app's newest.
    auto down = run_dbmate(db, out, "rollback");
    REQUIRE_MESSAGE(down.exit_code == 0, down.err);
    CHECK(query_value(db.url(), "SELECT count(*) FROM pgkit.roles") == "3");
    down = run_dbmate(db, out, "rollback");
    REQUIRE_MESSAGE(down.exit_code == 0, down.err);
    CHECK(query_value(db.url(), "SELECT count(*) FROM pgkit.roles") == "2");
  }
}

TEST_CASE("pgkit print-sql --format dbmate: a transaction:false migration, up and rollback") {
  scratch_database db{"parity_dbmate_outside"};
  auto addr = "--addr=" + db.url();
  auto dir = pgkit_test::temp_dir("pgkit-parity");
  write_file(fs::path{dir} / "app" / "20260301000000_table.sql",
             migration_text("CREATE TABLE t (a int);", "DROP TABLE t;"));
  write_file(fs::path{dir} / "app" / "20260302000000_index.sql",
             "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY t_a ON t (a)\n"
             "-- migrate:down transaction:false\nDROP INDEX CONCURRENTLY t_a\n");
  auto out = pgkit_test::temp_dir("pgkit-parity-out");
  auto written =
      run_pgkit({"print-sql", "--format", "dbmate", "--out", out, "--migrations-dir", dir, "app"});
  REQUIRE_MESSAGE(written.exit_code == 0, written.err);
  CHECK(fs::exists(fs::path{out} / "202603020000000_app_index.sql"));
  CHECK(fs::exists(fs::path{out} / "202603020000001_app_index_pgkit_record.sql"));
  auto dbmate_with_path = [&](const std::string& command) {
    return pgkit_test::run_process({dbmate(), "--url", dbmate_url(db) + "&search_path=public,pgkit",
                                    "--migrations-dir", out, "--no-dump-schema", command});
  };
  auto up = dbmate_with_path("up");
  REQUIRE_MESSAGE(up.exit_code == 0, up.err);
  CHECK(query_value(db.url(), "SELECT to_regclass('pgkit.t_a') IS NOT NULL") == "t");
  CHECK(run_pgkit({"status", addr, "--exit-code", "--migrations-dir", dir, "app"}).exit_code == 0);
  // The newest files: core's uuid7() counter step (20261206200000), then the index's two.
  for (int i = 0; i < 3; ++i)
    REQUIRE(dbmate_with_path("rollback").exit_code == 0);
  CHECK(query_value(db.url(), "SELECT to_regclass('pgkit.t_a') IS NULL") == "t");
  auto status = run_pgkit({"status", addr, "--exit-code", "--migrations-dir", dir, "app"});
  CHECK(status.exit_code == 3);
  CHECK(contains(status.out, "pending  20260302000000_index.sql"));
}

TEST_CASE("pgkit apply: transaction control in a migration is refused before anything is sent") {
  scratch_database db{"parity_tx"};
  auto addr = "--addr=" + db.url();
  auto dir = pgkit_test::temp_dir("pgkit-parity");
  auto module = fs::path{dir} / "app";
  write_file(module / "20260301000000_first.sql", migration_text("CREATE TABLE first_table ();"));

  SUBCASE("COMMIT in the middle of an up section") {
    auto file = (module / "20260302000000_second.sql").string();
    write_file(file, migration_text("CREATE TABLE a ();\nCOMMIT;\nCREATE TABLE b ();"));
    for (const auto& command :
         {std::vector<std::string>{"apply", addr}, std::vector<std::string>{"print-sql"}}) {
      auto result = run_pgkit(args(command, {"--migrations-dir", dir, "app"}));
      CHECK(result.exit_code == 2);
      CHECK_MESSAGE(contains(result.err, "pgkit: error: " + file +
                                             ":3: the up section runs COMMIT, which would end "
                                             "pgkit's transaction"),
                    result.err);
    }
    CHECK(query_value(db.url(), "SELECT to_regnamespace('pgkit') IS NULL") == "t");
  }
  SUBCASE("BEGIN; ... END; in a down section") {
    auto file = (module / "20260302000000_second.sql").string();
    write_file(file, migration_text("SELECT 1;", "-- undo\nbegin;\nDROP TABLE a;\nend;"));
    auto result = run_pgkit({"apply", addr, "--migrations-dir", dir, "app"});
    CHECK(result.exit_code == 2);
    CHECK(contains(result.err, file + ":5: the down section runs BEGIN"));
  }
  SUBCASE("what the lexer cannot see is caught after the migration ran") {
    // Like psql, the lexer takes the function named begin for a BEGIN ... END body, so the
    // COMMIT after it hides in the same statement.
    write_file(module / "20260302000000_sneaky.sql",
               migration_text("CREATE FUNCTION begin() RETURNS int LANGUAGE sql AS 'SELECT 1';\n"
                              "COMMIT;\nCREATE TABLE after_commit ();"));
    auto result = run_pgkit({"apply", addr, "--migrations-dir", dir, "app"});
    CHECK(result.exit_code == 2);
    CHECK_MESSAGE(contains(result.err, "20260302000000_sneaky.sql) ended pgkit's transaction"),
                  result.err);
    // What the COMMIT committed stays, but the migration is not recorded as applied.
    CHECK(query_value(db.url(),
                      "SELECT count(*) FROM pgkit.schema_migration WHERE version = "
                      "'20260302000000'") == "0");
  }
  SUBCASE("function bodies, DO blocks and BEGIN ATOMIC are not transaction control") {
    // SQL-standard function bodies need PostgreSQL 14; older servers get the plpgsql one.
    bool atomic = std::stoi(query_value(db.url(), "SHOW server_version_num")) >= 140000;
    std::string g = atomic ? "CREATE FUNCTION g(a int) RETURNS int LANGUAGE sql\n"
                             "BEGIN ATOMIC\n  SELECT CASE WHEN a > 0 THEN a ELSE 0 END;\nEND;\n"
                           : "CREATE FUNCTION g(a int) RETURNS int LANGUAGE plpgsql AS $g$ BEGIN\n"
                             "  RETURN CASE WHEN a > 0 THEN a ELSE 0 END;\nEND $g$;\n";
    write_file(module / "20260302000000_functions.sql",
               migration_text("CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\n"
                              "BEGIN\n  RETURN 1;\nEND\n$$;\n" +
                                  g +
                                  "DO $$ BEGIN PERFORM f(); END $$;\n"
                                  "SAVEPOINT s;\nROLLBACK TO SAVEPOINT s;",
                              "DROP FUNCTION g(int);\nDROP FUNCTION f();"));
    auto result = run_pgkit({"apply", addr, "--migrations-dir", dir, "app"});
    REQUIRE_MESSAGE(result.exit_code == 0, result.err);
    CHECK(query_value(db.url(), "SELECT pgkit.g(5) + pgkit.f()") == "6");
  }
}

TEST_CASE("pgkit apply: hidden files in a module directory are ignored") {
  scratch_database db{"parity_hidden"};
  auto dir = pgkit_test::temp_dir("pgkit-parity");
  auto module = fs::path{dir} / "app";
  write_file(module / "20260301000000_a.sql", migration_text("CREATE TABLE a ();"));
  write_file(module / ".scratch.sql", "not a migration at all");
  fs::create_symlink("user@host.12345:1700000000", module / ".#20260302000000_b.sql");
  auto result = run_pgkit({"apply", "--addr=" + db.url(), "--migrations-dir", dir, "app"});
  CHECK_MESSAGE(result.exit_code == 0, result.err);
  CHECK(query_value(db.url(), "SELECT to_regclass('pgkit.a') IS NOT NULL") == "t");
}

TEST_CASE("pgkit apply: each migration starts with pgkit's settings") {
  auto dir = pgkit_test::temp_dir("pgkit-parity");
  auto module = fs::path{dir} / "app";
  write_file(module / "20260301000000_elsewhere.sql",
             migration_text("CREATE SCHEMA elsewhere;\nSET search_path TO elsewhere;\n"
                            "CREATE TABLE moved ();",
                            "DROP SCHEMA elsewhere CASCADE;"));
  write_file(module / "20260302000000_next.sql", migration_text("CREATE TABLE next_table ();"));
  std::vector<std::string> common{"--migrations-dir", dir, "app"};

  SUBCASE("apply") {
    scratch_database db{"parity_settings"};
    auto result = run_pgkit(args({"apply", "--addr=" + db.url()}, common));
    REQUIRE_MESSAGE(result.exit_code == 0, result.err);
    CHECK(query_value(db.url(), "SELECT to_regclass('pgkit.next_table') IS NOT NULL") == "t");
    CHECK(query_value(db.url(), "SELECT to_regclass('elsewhere.moved') IS NOT NULL") == "t");
  }
  SUBCASE("the plain script under psql") {
    scratch_database db{"parity_settings_psql"};
    auto psql = run_plain_script(db, common);
    REQUIRE_MESSAGE(psql.exit_code == 0, psql.err);
    CHECK(query_value(db.url(), "SELECT to_regclass('pgkit.next_table') IS NOT NULL") == "t");
  }
}

TEST_CASE("pgkit rollback: a failing transaction:false down section keeps the migration") {
  scratch_database db{"parity_down"};
  auto addr = "--addr=" + db.url();
  auto dir = pgkit_test::temp_dir("pgkit-parity");
  auto file = fs::path{dir} / "app" / "20260301000000_index.sql";
  write_file(fs::path{dir} / "app" / "20260201000000_table.sql",
             migration_text("CREATE TABLE t (id int);", "DROP TABLE t;"));
  write_file(file,
             "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n"
             "-- migrate:down transaction:false\nDROP INDEX CONCURRENTLY no_such_index;\n");
  std::vector<std::string> common{"--migrations-dir", dir, "app"};
  REQUIRE(run_pgkit(args({"apply", addr}, common)).exit_code == 0);

  auto failed = run_pgkit(args({"rollback", addr}, common));
  CHECK(failed.exit_code == 1);
  CHECK(contains(failed.err, "no_such_index"));
  auto status = run_pgkit(args({"status", addr, "--exit-code"}, common));
  CHECK_MESSAGE(status.exit_code == 0, status.out);
  CHECK(query_value(db.url(),
                    "SELECT max(version) FROM pgkit.schema_migration WHERE module = 'app'") ==
        "20260301000000");

  write_file(file,
             "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n"
             "-- migrate:down transaction:false\nDROP INDEX CONCURRENTLY t_id;\n");
  auto fixed = run_pgkit(args({"rollback", addr}, common));
  CHECK_MESSAGE(fixed.exit_code == 0, fixed.err);
  CHECK(query_value(db.url(), "SELECT to_regclass('pgkit.t_id') IS NULL") == "t");
  CHECK(query_value(db.url(),
                    "SELECT max(version) FROM pgkit.schema_migration WHERE module = 'app'") ==
        "20260201000000");
}

TEST_CASE("pgkit apply and the plain script agree on multi-statement transaction:false sections") {
  auto dir = pgkit_test::temp_dir("pgkit-parity");
  write_file(fs::path{dir} / "app" / "20260201000000_table.sql",
             migration_text("CREATE TABLE t (a int, b int);", "DROP TABLE t;"));
  write_file(fs::path{dir} / "app" / "20260301000000_indexes.sql",
             "-- migrate:up transaction:false\n"
             "CREATE INDEX CONCURRENTLY t_a ON t (a);\n"
             "CREATE INDEX CONCURRENTLY t_b ON t (b);\n"
             "-- migrate:down transaction:false\n"
             "DROP INDEX CONCURRENTLY t_b;\nDROP INDEX CONCURRENTLY t_a;\n");
  std::vector<std::string> common{"--migrations-dir", dir, "app"};
  scratch_database applied{"parity_multi_a"}, scripted{"parity_multi_b"};
  auto apply = run_pgkit(args({"apply", "--addr=" + applied.url()}, common));
  REQUIRE_MESSAGE(apply.exit_code == 0, apply.err);
  auto psql = run_plain_script(scripted, common);
  REQUIRE_MESSAGE(psql.exit_code == 0, psql.err);
  CHECK(schema_catalog(applied) == schema_catalog(scripted));
  CHECK(query_value(applied.url(), "SELECT count(*) FROM pg_indexes WHERE tablename = 't'") == "2");
  auto rollback = run_pgkit(args({"rollback", "--addr=" + applied.url()}, common));
  CHECK_MESSAGE(rollback.exit_code == 0, rollback.err);
  CHECK(query_value(applied.url(), "SELECT count(*) FROM pg_indexes WHERE tablename = 't'") == "0");
}

TEST_CASE("pgkit rollback --to takes a 14-digit version or 0") {
  scratch_database db{"parity_to"};
  auto addr = "--addr=" + db.url();
  auto dir = pgkit_test::temp_dir("pgkit-parity");
  write_file(fs::path{dir} / "app" / "20240101000000_a.sql",
             migration_text("CREATE TABLE a ();", "DROP TABLE a;"));
  write_file(fs::path{dir} / "app" / "20240102000000_b.sql",
             migration_text("CREATE TABLE b ();", "DROP TABLE b;"));
  REQUIRE(run_pgkit({"apply", addr, "--migrations-dir", dir, "app"}).exit_code == 0);
  for (const std::string given : {"20240101", "x", "020240101000000", "00"}) {
    auto result = run_pgkit({"rollback", addr, "--migrations-dir", dir, "app", "--to", given});
    CHECK(result.exit_code == 2);
    CHECK(contains(result.err, "pgkit: error: --to '" + given + "' is not a version"));
  }
  CHECK(table_count(db) == "4");
  auto all = run_pgkit({"rollback", addr, "--migrations-dir", dir, "app", "--to", "0"});
  CHECK_MESSAGE(all.exit_code == 0, all.err);
  CHECK(table_count(db) == "2");
}

TEST_CASE("pgkit refuses files with bytes SQL cannot carry") {
  scratch_database db{"parity_bytes"};
  auto addr = "--addr=" + db.url();
  auto dir = pgkit_test::temp_dir("pgkit-parity");
  auto module = fs::path{dir} / "app";

  SUBCASE("a NUL byte: exit 2 naming file and offset, nothing applied") {
    auto file = (module / "20260301000000_nul.sql").string();
    using namespace std::string_literals;
    write_file(file, "-- migrate:up\nCREATE TABLE a ();\0CREATE TABLE b ();\n-- migrate:down\n"s);
    auto result = run_pgkit({"apply", addr, "--migrations-dir", dir, "app"});
    CHECK(result.exit_code == 2);
    CHECK(contains(result.err, file + ": a NUL byte at byte offset 32 (line 2)"));
    CHECK(query_value(db.url(), "SELECT to_regnamespace('pgkit') IS NULL") == "t");
  }
  SUBCASE("invalid UTF-8 in a section") {
    auto file = (module / "20260301000000_latin1.sql").string();
    write_file(file, migration_text("CREATE TABLE caf\xe9 ();"));
    auto result = run_pgkit({"print-sql", "--migrations-dir", dir, "app"});
    CHECK(result.exit_code == 2);
    CHECK(contains(result.err, file + ": invalid UTF-8 at byte offset 30 (line 2)"));
  }
  SUBCASE("invalid UTF-8 in a file name") {
    write_file(module / "20260301000000_caf\xe9.sql", migration_text("SELECT 1;"));
    auto result = run_pgkit({"print-sql", "--migrations-dir", dir, "app"});
    CHECK(result.exit_code == 2);
    CHECK(contains(result.err, "the file name is not valid UTF-8"));
  }
  SUBCASE("a byte order mark is named as such") {
    auto file = (module / "20260301000000_bom.sql").string();
    write_file(file, "\xef\xbb\xbf" + migration_text("SELECT 1;"));
    auto result = run_pgkit({"print-sql", "--migrations-dir", dir, "app"});
    CHECK(result.exit_code == 2);
    CHECK(contains(result.err, file + ": the file starts with a UTF-8 byte order mark (BOM)"));
  }
}

TEST_CASE("pgkit apply and rollback refuse a transaction-mode pooler") {
  scratch_database db{"parity_pooler"};
  auto app = pgkit_test::in_app_dir(db.url(), "pooler = \"pgbouncer-transaction\"\n");
  for (const auto& command : {std::vector<std::string>{"apply", "cache"},
                              std::vector<std::string>{"migrate", "--apply", "cache"},
                              std::vector<std::string>{"rollback", "cache"}}) {
    auto result = run_pgkit(command, app);
    CHECK(result.exit_code == 2);
    CHECK(contains(result.err,
                   "pgkit: error: migrations cannot run through a transaction-mode "
                   "pooler"));
    CHECK(contains(result.err, "pgkit: hint: run migrations over a direct connection"));
  }
  CHECK(query_value(db.url(), "SELECT to_regnamespace('pgkit') IS NULL") == "t");
  CHECK(query_value(db.url(), k_advisory_locks_here) == "0");
}

TEST_CASE("pgkit apply: SIGTERM or SIGINT cancels the running migration on the server") {
  for (int signal_number : {SIGTERM, SIGINT}) {
    scratch_database db{"parity_signal"};
    auto dir = pgkit_test::temp_dir("pgkit-parity");
    write_file(fs::path{dir} / "app" / "20260301000000_slow.sql",
               migration_text("CREATE TABLE started ();\nSELECT pg_sleep(600);"));
    pgkit_test::child_process apply{{pgkit_test::pgkit_binary(), "apply", "--addr=" + db.url(),
                                     "--migrations-dir", dir, "app"}};
    const std::string sleeping = "SELECT count(*) FROM pg_stat_activity WHERE datname = '" +
                                 db.name() +
                                 "' AND query LIKE '%pg_sleep(600)%' AND pid <> "
                                 "pg_backend_pid()";
    REQUIRE(pgkit_test::eventually([&] { return query_value(db.url(), sleeping) == "1"; }));
    apply.send_signal(signal_number);
    CHECK(apply.wait(std::chrono::seconds{30}) == 1);
    CHECK_MESSAGE(contains(apply.err(),
                           "pgkit: error: interrupted: the running transaction was "
                           "rolled back and nothing was applied"),
                  apply.err());
    CHECK(pgkit_test::eventually([&] { return query_value(db.url(), sleeping) == "0"; }));
    CHECK(query_value(db.url(), k_advisory_locks_here) == "0");
    CHECK(query_value(db.url(), "SELECT to_regclass('pgkit.started') IS NULL") == "t");
  }
}

TEST_CASE("pgkit apply: SIGTERM while waiting for the migration lock") {
  scratch_database db{"parity_signal_lock"};
  pqxx::connection holder{db.url()};
  pqxx::nontransaction hold{holder};
  hold.exec("SELECT pg_advisory_lock(" + std::to_string(pgkit::migration_lock_key("pgkit")) + ")");
  pgkit_test::child_process apply{
      {pgkit_test::pgkit_binary(), "apply", "--addr=" + db.url(), "--lock-wait", "600", "cache"}};
  REQUIRE(apply.wait_for_stderr("waiting up to 600 s for the migration lock",
                                std::chrono::seconds{60}));
  apply.send_signal(SIGTERM);
  CHECK(apply.wait(std::chrono::seconds{30}) == 1);
  CHECK(contains(apply.err(),
                 "pgkit: error: interrupted: the running transaction was rolled "
                 "back and nothing was applied"));
  CHECK(query_value(db.url(), "SELECT to_regnamespace('pgkit') IS NULL") == "t");
}

TEST_CASE("pgkit new") {
  auto dir = pgkit_test::temp_dir("pgkit-new");

  SUBCASE("creates the module folder and a file with both sections, and prints its path") {
    auto result = run_pgkit({"new", "--migrations-dir", dir, "app", "create_orders"});
    REQUIRE_MESSAGE(result.exit_code == 0, result.err);
    std::smatch match;
    REQUIRE(std::regex_match(result.out, match,
                             std::regex{"(.*/app/([0-9]{14})_create_orders\\.sql)\n"}));
    CHECK(fs::path{match[1].str()}.parent_path() == fs::path{dir} / "app");
    CHECK(pgkit_test::read_file(match[1].str()) == "-- migrate:up\n\n\n-- migrate:down\n\n");
  }
  SUBCASE("without --migrations-dir the file goes to ./migrations") {
    pgkit_test::process_options options;
    options.cwd = dir;
    auto result = run_pgkit({"new", "billing", "add_invoices"}, options);
    REQUIRE_MESSAGE(result.exit_code == 0, result.err);
    CHECK(result.out.rfind("migrations/billing/", 0) == 0);
    CHECK(fs::is_directory(fs::path{dir} / "migrations" / "billing"));
  }
  SUBCASE("refusals: a bad name, a built-in module, a newer file") {
    auto bad = run_pgkit({"new", "--migrations-dir", dir, "app", "Create-Orders"});
    CHECK(bad.exit_code == 2);
    CHECK(contains(bad.err, "invalid migration name 'Create-Orders'"));
    auto builtin = run_pgkit({"new", "--migrations-dir", dir, "auth", "more"});
    CHECK(builtin.exit_code == 2);
    CHECK(contains(builtin.err, "module auth is built into pgkit"));
    write_file(fs::path{dir} / "app" / "99990101000000_future.sql", migration_text("SELECT 1;"));
    auto older = run_pgkit({"new", "--migrations-dir", dir, "app", "next"});
    CHECK(older.exit_code == 2);
    CHECK(contains(older.err, "would not sort after the newest migration of module app"));
    CHECK(contains(older.err, "(99990101000000)"));
    CHECK(std::distance(fs::directory_iterator{fs::path{dir} / "app"}, fs::directory_iterator{}) ==
          1);
  }
}
