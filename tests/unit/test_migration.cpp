#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "harness.hpp"
#include "pgkit/error.hpp"
#include "pgkit/migration.hpp"

namespace fs = std::filesystem;

namespace {

const char* const k_valid = R"(-- A header comment is fine.

-- migrate:up
CREATE TABLE t (id int);
CREATE INDEX t_id ON t (id);

-- migrate:down
DROP TABLE t;
)";

// Returns the message of the pgkit::usage_error that `action` throws ("" if none).
template <typename Action>
std::string usage_message(Action&& action) {
  try {
    action();
  } catch (const pgkit::usage_error& e) {
    return e.what();
  }
  return "";
}

void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream{path} << text;
}

std::string migration_text(const std::string& up, const std::string& down = "SELECT 1;") {
  return "-- migrate:up\n" + up + "\n-- migrate:down\n" + down + "\n";
}

}  // namespace

TEST_CASE("pgkit::parse_migration") {
  SUBCASE("a dbmate file gives its version, name, sections, their lines and a checksum") {
    auto m = pgkit::parse_migration("app", "20260301120000_create_t.sql", k_valid, "dir/x.sql");
    CHECK(m.module == "app");
    CHECK(m.version == "20260301120000");
    CHECK(m.name == "create_t");
    CHECK(m.up_sql == "CREATE TABLE t (id int);\nCREATE INDEX t_id ON t (id);");
    CHECK(m.down_sql == "DROP TABLE t;");
    CHECK(m.up_line == 4);
    CHECK(m.down_line == 8);
    CHECK(m.up_transaction == pgkit::transaction_mode::inside);
    CHECK(m.checksum.size() == 64);
  }
  SUBCASE("the checksum follows the up section only") {
    auto a = pgkit::parse_migration("m", "20260301120000_a.sql", migration_text("SELECT 1;"), "a");
    auto b = pgkit::parse_migration("m", "20260301120000_a.sql",
                                    migration_text("SELECT 1;", "SELECT 2;"), "a");
    auto c = pgkit::parse_migration("m", "20260301120000_a.sql", migration_text("SELECT 2;"), "a");
    CHECK(a.checksum == b.checksum);
    CHECK(a.checksum != c.checksum);
  }
  SUBCASE("transaction:false is read per section, and an empty down section is allowed") {
    auto m = pgkit::parse_migration(
        "m", "20260301120000_idx.sql",
        "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (x);\n"
        "-- migrate:down\n",
        "p");
    CHECK(m.up_transaction == pgkit::transaction_mode::outside);
    CHECK(m.down_transaction == pgkit::transaction_mode::inside);
    CHECK(m.down_sql.empty());
  }
  SUBCASE("malformed files are refused with the file and the reason") {
    struct bad_case {
      const char* file_name;
      std::string text;
      const char* reason;
    };
    const bad_case cases[] = {
        {"2026030112000_short.sql", k_valid, "malformed file name"},
        {"20260301120000-dash.sql", k_valid, "malformed file name"},
        {"20260301120000_.sql", k_valid, "malformed file name"},
        {"20260301120000_it's.sql", k_valid, "malformed file name"},
        {"20260301120000_a.sql", "CREATE TABLE t ();\n", "no '-- migrate:up' section"},
        {"20260301120000_a.sql", "-- migrate:up\nSELECT 1;\n", "no '-- migrate:down' section"},
        {"20260301120000_a.sql", "-- migrate:down\nSELECT 1;\n-- migrate:up\nSELECT 1;\n",
         "must come after '-- migrate:up'"},
        {"20260301120000_a.sql", "-- migrate:up\nSELECT 1;\n-- migrate:up\n-- migrate:down\n",
         "a second '-- migrate:up' section"},
        {"20260301120000_a.sql", "-- migrate:up transaction:maybe\nSELECT 1;\n-- migrate:down\n",
         "unknown migration option 'transaction:maybe'"},
        {"20260301120000_a.sql", "SELECT 0;\n-- migrate:up\nSELECT 1;\n-- migrate:down\n",
         "SQL before '-- migrate:up' would never run"},
        {"20260301120000_a.sql", "-- migrate:up\n-- only a comment\n-- migrate:down\n",
         "the up section has no SQL"},
        {"20260301120000_a.sql", std::string{"-- migrate:up\nSELECT 1;\0\n-- migrate:down\n", 41},
         "a NUL byte at byte offset 23 (line 2)"},
        {"20260301120000_a.sql", "-- migrate:up\nSELECT '\xc3';\n-- migrate:down\n",
         "invalid UTF-8 at byte offset 22 (line 2)"},
        {"20260301120000_a.sql", "-- migrate:up\nSELECT '\xed\xa0\x80';\n-- migrate:down\n",
         "invalid UTF-8 at byte offset 22"},  // a UTF-16 surrogate
        {"20260301120000_caf\xe9.sql", k_valid, "the file name is not valid UTF-8"},
        {"20260301120000_a.sql", "\xef\xbb\xbf-- migrate:up\nSELECT 1;\n-- migrate:down\n",
         "byte order mark (BOM)"},
        {"20260301120000_a.sql", "-- migrate:up\nBEGIN;\nSELECT 1;\nCOMMIT;\n-- migrate:down\n",
         "the/path.sql:2: the up section runs BEGIN"},
        {"20260301120000_a.sql",
         "-- migrate:up\nSELECT 1;\n-- migrate:down\n\nSTART TRANSACTION;\nSELECT 2",
         "the/path.sql:5: the down section runs START TRANSACTION"},
    };
    for (const auto& bad : cases) {
      auto message = usage_message(
          [&] { pgkit::parse_migration("m", bad.file_name, bad.text, "the/path.sql"); });
      CHECK_MESSAGE(message.find("the/path.sql") != std::string::npos, bad.file_name);
      CHECK_MESSAGE(message.find(bad.reason) != std::string::npos, message);
    }
  }
}

TEST_CASE("pgkit::module_catalog") {
  SUBCASE("the built-in modules are core, auth, cache, queue and session, each on core") {
    auto catalog = pgkit::module_catalog::load();
    CHECK(catalog.names() == std::vector<std::string>{"auth", "cache", "core", "queue", "session"});
    for (const auto& module : catalog.modules()) {
      CHECK_FALSE(module.migrations.empty());
      if (module.name != "core")
        CHECK(module.depends_on == std::vector<std::string>{"core"});
    }
  }
  SUBCASE("built-in versions are unique across modules and core comes first") {
    auto catalog = pgkit::module_catalog::load();
    auto order = pgkit::run_order(catalog.select(catalog.names()));
    std::set<std::string> versions;
    for (const auto* m : order)
      CHECK(versions.insert(m->version).second);
    REQUIRE_FALSE(order.empty());
    CHECK(order.front()->module == "core");
  }
  SUBCASE("selecting a module selects what it depends on, dependencies first") {
    auto catalog = pgkit::module_catalog::load();
    auto selected = catalog.select({"session", "cache"});
    REQUIRE(selected.size() == 3);
    CHECK(selected[0]->name == "core");
  }
  SUBCASE("unknown modules are refused with the list of known ones") {
    auto catalog = pgkit::module_catalog::load();
    auto message = usage_message([&] { catalog.select({"cache", "nope"}); });
    CHECK(message.find("unknown module nope") != std::string::npos);
    CHECK(message.find("known modules: auth, cache, core, queue, session") != std::string::npos);
    CHECK(usage_message([&] { catalog.select({}); }).find("known modules") != std::string::npos);
  }
  SUBCASE("user modules come from the subdirectories of --migrations-dir") {
    auto dir = fs::path{pgkit_test::temp_dir("pgkit-catalog")};
    write_file(dir / "app" / "20260301120000_a.sql", migration_text("SELECT 1;"));
    write_file(dir / "app" / "20260302120000_b.sql", migration_text("SELECT 2;"));
    write_file(dir / "app" / "README.md", "not a migration");
    auto catalog = pgkit::module_catalog::load({dir.string()});
    const auto* app = catalog.find("app");
    REQUIRE(app != nullptr);
    CHECK(app->migrations.size() == 2);
    CHECK(app->depends_on == std::vector<std::string>{"core"});
    auto selected = catalog.select({"app"});
    CHECK(selected.front()->name == "core");
  }
  SUBCASE("duplicate versions in a module are refused naming both files") {
    auto dir = fs::path{pgkit_test::temp_dir("pgkit-catalog")};
    write_file(dir / "app" / "20260301120000_a.sql", migration_text("SELECT 1;"));
    write_file(dir / "app" / "20260301120000_b.sql", migration_text("SELECT 2;"));
    auto message = usage_message([&] { pgkit::module_catalog::load({dir.string()}); });
    CHECK(message.find("20260301120000_a.sql") != std::string::npos);
    CHECK(message.find("20260301120000_b.sql") != std::string::npos);
    CHECK(message.find("same version") != std::string::npos);
  }
  SUBCASE("a malformed user file is refused with its path") {
    auto dir = fs::path{pgkit_test::temp_dir("pgkit-catalog")};
    write_file(dir / "app" / "20260301120000_a.sql", "-- migrate:up\nSELECT 1;\n");
    auto message = usage_message([&] { pgkit::module_catalog::load({dir.string()}); });
    CHECK(message.find((dir / "app" / "20260301120000_a.sql").string()) != std::string::npos);
    CHECK(message.find("no '-- migrate:down' section") != std::string::npos);
  }
  SUBCASE("a user module may not take a built-in module's name") {
    auto dir = fs::path{pgkit_test::temp_dir("pgkit-catalog")};
    write_file(dir / "cache" / "20260301120000_a.sql", migration_text("SELECT 1;"));
    auto message = usage_message([&] { pgkit::module_catalog::load({dir.string()}); });
    CHECK(message.find("clashes") != std::string::npos);
  }
  SUBCASE("migration files directly in --migrations-dir are refused with a hint") {
    auto dir = fs::path{pgkit_test::temp_dir("pgkit-catalog")};
    write_file(dir / "20260301120000_a.sql", migration_text("SELECT 1;"));
    auto message = usage_message([&] { pgkit::module_catalog::load({dir.string()}); });
    CHECK(message.find("outside a module directory") != std::string::npos);
    CHECK(usage_message([&] {
            pgkit::module_catalog::load({(dir / "nope").string()});
          }).find("is not a directory") != std::string::npos);
  }
}

TEST_CASE("pgkit::run_order") {
  SUBCASE("two modules with the same version are refused") {
    auto dir = fs::path{pgkit_test::temp_dir("pgkit-order")};
    write_file(dir / "one" / "20260301120000_a.sql", migration_text("SELECT 1;"));
    write_file(dir / "two" / "20260301120000_b.sql", migration_text("SELECT 2;"));
    auto catalog = pgkit::module_catalog::load({dir.string()});
    auto message = usage_message([&] { pgkit::run_order(catalog.select({"one", "two"})); });
    CHECK(message.find("version 20260301120000 is used by") != std::string::npos);
  }
  SUBCASE("a module that starts before a module it depends on is refused") {
    auto dir = fs::path{pgkit_test::temp_dir("pgkit-order")};
    write_file(dir / "old" / "19990101000000_a.sql", migration_text("SELECT 1;"));
    auto catalog = pgkit::module_catalog::load({dir.string()});
    auto message = usage_message([&] { pgkit::run_order(catalog.select({"old"})); });
    CHECK(message.find("not newer than") != std::string::npos);
  }
  SUBCASE("migrations of several modules run by version") {
    auto dir = fs::path{pgkit_test::temp_dir("pgkit-order")};
    write_file(dir / "one" / "20260301120000_a.sql", migration_text("SELECT 1;"));
    write_file(dir / "one" / "20260303120000_c.sql", migration_text("SELECT 3;"));
    write_file(dir / "two" / "20260302120000_b.sql", migration_text("SELECT 2;"));
    auto catalog = pgkit::module_catalog::load({dir.string()});
    std::vector<std::string> names;
    for (const auto* m : pgkit::run_order(catalog.select({"two", "one"})))
      names.push_back(m->module + "/" + m->name);
    CHECK(names ==
          std::vector<std::string>{"core/core", "one/a", "two/b", "one/c", "core/uuid7_counter"});
  }
}

TEST_CASE("pgkit::validate_schema_name") {
  for (const char* good : {"pgkit", "app_1", "_x", "Mixed$Case"})
    CHECK_NOTHROW(pgkit::validate_schema_name(good));
  for (const std::string bad : {"", "1abc", "a-b", "a\"b", "a b", "pg_toast", "PG_x"})
    CHECK_THROWS_AS(pgkit::validate_schema_name(bad), pgkit::usage_error);
  CHECK_NOTHROW(pgkit::validate_schema_name(std::string(63, 'a')));
  CHECK_THROWS_AS(pgkit::validate_schema_name(std::string(64, 'a')), pgkit::usage_error);
}

TEST_CASE("pgkit::migration_lock_key") {
  CHECK(pgkit::migration_lock_key("pgkit") == pgkit::migration_lock_key("pgkit"));
  CHECK(pgkit::migration_lock_key("pgkit") != pgkit::migration_lock_key("other"));
}

TEST_CASE("pgkit::render_plain_script") {
  auto dir = fs::path{pgkit_test::temp_dir("pgkit-render")};
  write_file(dir / "app" / "20260301120000_a.sql", migration_text("CREATE TABLE a ();"));
  write_file(dir / "app" / "20260302120000_idx.sql",
             "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON a ((1));\n"
             "-- migrate:down\nDROP INDEX i;\n");
  auto catalog = pgkit::module_catalog::load({dir.string()});
  auto order = pgkit::run_order(catalog.select({"app"}));

  SUBCASE("one transaction per run, the schema quoted, transaction:false outside of it") {
    auto script = pgkit::render_plain_script(order, "my_schema");
    auto begin = script.find("BEGIN;");
    auto create = script.find("CREATE TABLE a ();");
    auto commit = script.find("COMMIT;");
    auto concurrently = script.find("CREATE INDEX CONCURRENTLY");
    CHECK(script.find("CREATE SCHEMA IF NOT EXISTS \"my_schema\";") != std::string::npos);
    CHECK(script.find("SET LOCAL search_path TO \"my_schema\", public;") != std::string::npos);
    CHECK(begin < create);
    CHECK(create < commit);
    CHECK(commit < concurrently);
    CHECK(script.find("INSERT INTO \"my_schema\".schema_migration") != std::string::npos);
  }
  SUBCASE("an invalid schema is refused") {
    CHECK_THROWS_AS(pgkit::render_plain_script(order, "bad name"), pgkit::usage_error);
  }
  SUBCASE("the dbmate layout carries a transaction:false migration as two files") {
    auto files = pgkit::render_dbmate_files(order, "pgkit");
    REQUIRE(files.size() == 5);  // core, a, two for idx, and core's uuid7 counter
    CHECK(files[2].file_name == "202603021200000_app_idx.sql");
    CHECK(files[2].text.find("-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY") !=
          std::string::npos);
    CHECK(files[2].text.find("INSERT INTO") == std::string::npos);
    CHECK(files[3].file_name == "202603021200001_app_idx_pgkit_record.sql");
    CHECK(files[3].text.find("INSERT INTO \"pgkit\".schema_migration") != std::string::npos);
  }
  SUBCASE("the dbmate layout names each file by version, module and name") {
    auto built_in = pgkit::module_catalog::load();
    auto files = pgkit::render_dbmate_files(pgkit::run_order(built_in.select({"cache"})), "pgkit");
    REQUIRE(files.size() == 5);
    CHECK(files[0].file_name == "20000101000000_core_core.sql");
    CHECK(files[1].file_name == "20000101000200_cache_cache.sql");
    CHECK(files[2].file_name == "20000101000210_cache_cache_near.sql");
    CHECK(files[3].file_name == "20261206160000_cache_cache_near_interest.sql");
    CHECK(files[4].file_name == "20261206200000_core_uuid7_counter.sql");
    CHECK(files[1].text.find("-- migrate:up\n") != std::string::npos);
    CHECK(files[1].text.find("-- migrate:down\n") != std::string::npos);
    CHECK(files[1].text.find("CREATE UNLOGGED TABLE cache") != std::string::npos);
  }
}
