// The operator's commands (issue 22): lock_timeout retries, create, drop, wait, up, down,
// baseline, dump, load and diff, with the real dbmate beside pgkit where dbmate has the command.

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <thread>

#include "child_process.hpp"
#include "harness.hpp"
#include "migration_cli_support.hpp"

using namespace std::chrono_literals;
using namespace pgkit_test::migration_cli;
using pgkit_test::query_value;
using pgkit_test::run_pgkit;
using pgkit_test::scratch_database;

TEST_CASE("pgkit apply: a migration that hits lock_timeout is retried whole") {
  scratch_database db{"ops_lock_retry"};
  auto addr = "--addr=" + db.url();
  auto dir = pgkit_test::temp_dir("pgkit-lock-retry");
  write_file(fs::path{dir} / "app" / "20260301000000_t.sql",
             migration_text("CREATE TABLE t (x int);", "DROP TABLE t;"));
  REQUIRE(run_pgkit({"apply", addr, "--migrations-dir", dir, "app"}).exit_code == 0);
  write_file(fs::path{dir} / "app" / "20260302000000_u.sql",
             migration_text("CREATE TABLE u (y int);"));
  write_file(fs::path{dir} / "app" / "20260303000000_alter.sql",
             migration_text("ALTER TABLE t ADD COLUMN z int;"));
  pgkit_test::child_process holder{{"psql", "-X", "-q", "-A", "-t", db.url()}};
  holder.write_stdin("BEGIN; LOCK TABLE pgkit.t IN ACCESS SHARE MODE; SELECT 'locked';\n");
  REQUIRE(holder.read_line(30s) == std::optional<std::string>{"locked"});
  const auto applied = [&] {
    return query_value(
        db.url(),
        "SELECT string_agg(version, ',' ORDER BY version) FROM pgkit.schema_migration "
        "WHERE module = 'app'");
  };

  SUBCASE("the holder ends during the retries: the run succeeds") {
    std::vector<std::string> argv{pgkit_test::pgkit_binary(),
                                  "apply",
                                  addr,
                                  "--migrations-dir",
                                  dir,
                                  "--lock-timeout",
                                  "0.05",
                                  "--lock-retries",
                                  "6",
                                  "app"};
    pgkit_test::child_process apply{argv};
    REQUIRE(apply.wait_for_stderr("retrying in 250 ms (retry 1 of 6)", 30s));
    holder.write_stdin("COMMIT;\n");
    CHECK(apply.wait(60s) == 0);
    CHECK(contains(apply.err(), "applied 2 migrations"));
    CHECK(applied() == "20260301000000,20260302000000,20260303000000");
  }
  SUBCASE("retries exhausted: nothing applied, exit 1") {
    auto result = run_pgkit({"apply", addr, "--migrations-dir", dir, "--lock-timeout", "0.05",
                             "--lock-retries", "1", "app"});
    CHECK(result.exit_code == 1);
    CHECK(contains(result.err, "retrying in 250 ms (retry 1 of 1)"));
    CHECK(contains(result.err, "(gave up after 1 retry)"));
    CHECK(contains(result.err, "raise --lock-timeout or --lock-retries"));
    CHECK(applied() == "20260301000000");
    CHECK(query_value(db.url(), "SELECT to_regclass('pgkit.u') IS NULL") == "t");
    holder.write_stdin("ROLLBACK;\n");
  }
  holder.close_stdin();
  holder.wait(30s);
}

namespace {

// A database name of the test's own that does not exist yet, dropped again at the end.
struct future_database {
  explicit future_database(const scratch_database& base, const std::string& suffix)
      : name(base.name() + "_" + suffix), url(pgkit_test::with_database(base.url(), name)) {}
  ~future_database() {
    query_value(pgkit_test::sandbox_url(), "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
  }
  bool exists() const {
    return query_value(pgkit_test::sandbox_url(),
                       "SELECT count(*) FROM pg_database WHERE datname = '" + name + "'") == "1";
  }
  std::string name;
  std::string url;
};

// The tables and columns of schema public, dbmate's own table left out.
std::string public_columns(const std::string& url) {
  return query_value(url,
                     "SELECT coalesce(string_agg(table_name || '.' || column_name, ',' ORDER BY "
                     "table_name, column_name), '') FROM information_schema.columns WHERE "
                     "table_schema = 'public' AND table_name <> 'schema_migrations'");
}

struct step {
  int exit_code;
  bool exists;
  std::string columns;
};

}  // namespace

TEST_CASE("pgkit create, drop, wait, up and down beside dbmate") {
  scratch_database base{"ops_parity"};
  // The same two migrations in dbmate's layout (DIR/*.sql) and as pgkit module `app`.
  auto dir = pgkit_test::temp_dir("pgkit-ops-parity");
  const std::string first =
      migration_text("CREATE TABLE public.t (x int);", "DROP TABLE public.t;");
  const std::string second =
      migration_text("CREATE TABLE public.u (y int);", "DROP TABLE public.u;");
  write_file(fs::path{dir} / "dbmate" / "20260301000000_t.sql", first);
  write_file(fs::path{dir} / "dbmate" / "20260302000000_u.sql", second);
  write_file(fs::path{dir} / "modules" / "app" / "20260301000000_t.sql", first);
  write_file(fs::path{dir} / "modules" / "app" / "20260302000000_u.sql", second);

  // Runs `command` with dbmate, or the same with pgkit, on `db`; returns what a user sees.
  const auto run = [&](bool with_dbmate, const future_database& db,
                       const std::vector<std::string>& command) {
    pgkit_test::process_result result;
    if (with_dbmate) {
      result = pgkit_test::run_process(args({dbmate(), "--url", db.url + "?sslmode=disable", "-d",
                                             dir + "/dbmate", "--no-dump-schema"},
                                            command));
    } else {
      result = run_pgkit(args({"--addr", db.url}, command));
    }
    return step{result.exit_code, db.exists(), db.exists() ? public_columns(db.url) : ""};
  };
  const auto same = [](const step& dbmate_step, const step& pgkit_step) {
    CHECK(dbmate_step.exit_code == pgkit_step.exit_code);
    CHECK(dbmate_step.exists == pgkit_step.exists);
    CHECK(dbmate_step.columns == pgkit_step.columns);
  };

  SUBCASE("one database's life, side by side") {
    future_database by_dbmate{base, "d"}, by_pgkit{base, "p"};
    const std::vector<std::string> module{"-d", dir + "/modules", "app"};
    // up on a missing database creates it and applies; down rolls the newest one back.
    auto up = run(false, by_pgkit, args({"up"}, module));
    same(run(true, by_dbmate, {"up"}), up);
    CHECK(up.columns == "t.x,u.y");
    auto down = run(false, by_pgkit, args({"down"}, module));
    same(run(true, by_dbmate, {"down"}), down);
    CHECK(down.columns == "t.x");
    same(run(true, by_dbmate, {"wait"}), run(false, by_pgkit, {"wait"}));

    // Another session connected: both refuse and the database stays. dbmate exits 2 for every
    // failure, pgkit 1 for a database failure (2 is its usage error).
    {
      pqxx::connection d_session{by_dbmate.url}, p_session{by_pgkit.url};
      CHECK(run(true, by_dbmate, {"drop"}).exit_code == 2);
      auto refused = run_pgkit({"--addr", by_pgkit.url, "drop"});
      CHECK(refused.exit_code == 1);
      CHECK(contains(refused.err, "other sessions are connected to it (backend pids " +
                                      std::to_string(p_session.backendpid()) + ")"));
      CHECK(contains(refused.err, "pass --force"));
      CHECK(by_dbmate.exists());
      CHECK(by_pgkit.exists());
    }
    auto dropped = run(false, by_pgkit, {"drop"});
    same(run(true, by_dbmate, {"drop"}), dropped);
    CHECK_FALSE(dropped.exists);
    same(run(true, by_dbmate, {"drop"}), run(false, by_pgkit, {"drop"}));
    auto created = run(false, by_pgkit, {"create"});
    same(run(true, by_dbmate, {"create"}), created);
    CHECK(created.exists);

    // dbmate's create fails on an existing database (42P04, exit 2); pgkit's is idempotent,
    // like both drops, and says so.
    CHECK(run(true, by_dbmate, {"create"}).exit_code == 2);
    auto again = run_pgkit({"--addr", by_pgkit.url, "create"});
    CHECK(again.exit_code == 0);
    CHECK(contains(again.err, "pgkit: note: database " + by_pgkit.name + " exists already"));

    pqxx::connection session{by_pgkit.url};
    auto forced = run_pgkit({"--addr", by_pgkit.url, "drop", "--force"});
    CHECK(forced.exit_code == 0);
    CHECK_FALSE(by_pgkit.exists());
  }
  SUBCASE("drop waits for a session that is leaving, as DROP DATABASE does") {
    // A session that closes while drop runs does not make it refuse: the server gives leaving
    // sessions five seconds (drop counted pg_stat_activity itself before, and refused).
    future_database leaving{base, "l"};
    CHECK(run_pgkit({"--addr", leaving.url, "create"}).exit_code == 0);
    auto session = std::make_unique<pqxx::connection>(leaving.url);
    std::thread closer{[&session] {
      std::this_thread::sleep_for(1s);
      session.reset();
    }};
    auto result = run_pgkit({"--addr", leaving.url, "drop"});
    closer.join();
    CHECK(result.exit_code == 0);
    CHECK_FALSE(contains(result.err, "refusing"));
    CHECK_FALSE(leaving.exists());
  }
  SUBCASE("wait on a port where nothing listens: exit 1 after the timeout, saying why") {
    // dbmate exits 2 here (its code for every failure).
    auto url = "postgresql://postgres@127.0.0.1:1/" + base.name();
    auto by_pgkit = run_pgkit({"--addr", url, "wait", "--wait-timeout", "0.3"});
    CHECK(by_pgkit.exit_code == 1);
    CHECK(contains(by_pgkit.err, "did not accept connections within 300 ms; the last attempt: "));
    CHECK(contains(by_pgkit.err, "Connection refused"));
  }
  SUBCASE("drop of the maintenance database pgkit connects through: exit 2, nothing changed") {
    auto result = run_pgkit({"--addr", pgkit_test::with_database(base.url(), "postgres"), "drop"});
    CHECK(result.exit_code == 2);
    CHECK(contains(result.err, "refusing to drop database postgres"));
    CHECK(query_value(base.url(), "SELECT count(*) FROM pg_database WHERE datname = 'postgres'") ==
          "1");
  }
}

TEST_CASE("pgkit baseline, --env-file and .env") {
  scratch_database db{"ops_baseline"};
  auto dir = pgkit_test::temp_dir("pgkit-ops-baseline");
  write_file(fs::path{dir} / "app" / "20260301000000_t.sql",
             migration_text("CREATE TABLE public.t (x int);"));
  write_file(fs::path{dir} / "app" / "20260302000000_u.sql",
             migration_text("CREATE TABLE public.u (y int);"));
  write_file(fs::path{dir} / "app" / "20260303000000_v.sql",
             migration_text("CREATE TABLE public.v (z int);"));
  auto addr = "--addr=" + db.url();

  SUBCASE("baseline then apply runs only the later migrations") {
    // The database has what the first two files make, made by hand.
    query_value(db.url(), "CREATE TABLE public.t (x int); CREATE TABLE public.u (y int)");
    auto baseline = run_pgkit({"baseline", addr, "-d", dir, "app", "--to", "20260302000000"});
    REQUIRE_MESSAGE(baseline.exit_code == 0, baseline.err);
    CHECK(contains(baseline.err, "recorded 2 migrations of module app as applied"));
    auto apply = run_pgkit({"apply", addr, "-d", dir, "app"});
    REQUIRE_MESSAGE(apply.exit_code == 0, apply.err);
    CHECK(contains(apply.err, "applied 1 migration in schema pgkit"));
    CHECK(public_columns(db.url()) == "t.x,u.y,v.z");
    CHECK(run_pgkit({"status", addr, "-d", dir, "--exit-code", "app"}).exit_code == 0);

    auto again = run_pgkit({"baseline", addr, "-d", dir, "app", "--to", "20260301000000"});
    CHECK(again.exit_code == 2);
    CHECK(contains(again.err, "recorded as applied already"));
    auto unknown = run_pgkit({"baseline", addr, "-d", dir, "app", "--to", "20260401000000"});
    CHECK(unknown.exit_code == 2);
    CHECK(contains(unknown.err, "20260301000000, 20260302000000, 20260303000000"));
  }
  SUBCASE("--env-file and ./.env set DATABASE_URL unless it is set already") {
    auto app_dir = pgkit_test::temp_dir("pgkit-ops-env");
    write_file(fs::path{app_dir} / ".env", "# the app's settings\nexport DATABASE_URL='" +
                                               db.url() +
                                               "'\nOTHER=\"a \\\"quoted\\\" value\" # comment\n");
    pgkit_test::process_options in_dir;
    in_dir.cwd = app_dir;
    in_dir.unset_env = {"DATABASE_URL"};
    auto from_dot_env = run_pgkit({"apply", "-d", dir, "app"}, in_dir);
    CHECK_MESSAGE(from_dot_env.exit_code == 0, from_dot_env.err);
    CHECK(public_columns(db.url()) == "t.x,u.y,v.z");

    // A variable already set wins over the file.
    auto set = in_dir;
    set.env["DATABASE_URL"] = "postgresql://postgres@127.0.0.1:1/nowhere";
    auto not_overridden = run_pgkit({"status", "app", "-d", dir}, set);
    CHECK(not_overridden.exit_code == 1);
    CHECK(contains(not_overridden.err, "127.0.0.1:1"));

    write_file(fs::path{app_dir} / "bad.env", "DATABASE_URL\n");
    auto bad = run_pgkit({"status", "--env-file", "bad.env"}, in_dir);
    CHECK(bad.exit_code == 2);
    CHECK(contains(bad.err, "bad.env:1: not a KEY=VALUE line"));
    auto missing = run_pgkit({"status", "--env-file", "missing.env"}, in_dir);
    CHECK(missing.exit_code == 2);
    CHECK(contains(missing.err, "cannot read env file missing.env: no such file"));
  }
}

namespace {

// Module `shop` of the application's, under DIR/modules: one object of each kind that dump and
// diff cover.
void write_shop_module(const std::string& dir) {
  write_file(fs::path{dir} / "modules" / "shop" / "20260301000000_shop.sql",
             migration_text(R"(CREATE SCHEMA shop;
CREATE TYPE shop.state AS ENUM ('new', 'paid', 'shipped');
CREATE DOMAIN shop.price AS numeric(12, 2) CHECK (VALUE >= 0);
CREATE SEQUENCE shop.ticket START WITH 100;
CREATE TABLE shop.customers (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  email text NOT NULL UNIQUE,
  name text DEFAULT 'anonymous'
);
CREATE TABLE shop.orders (
  id serial PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES shop.customers (id) ON DELETE CASCADE,
  state shop.state NOT NULL DEFAULT 'new',
  total shop.price NOT NULL,
  total_cents bigint GENERATED ALWAYS AS ((total * 100)::bigint) STORED,
  created_at timestamptz NOT NULL DEFAULT now(),
  CHECK (total < 1000000)
);
CREATE INDEX orders_created_at_idx ON shop.orders (created_at DESC) WHERE state <> 'shipped';
CREATE FUNCTION shop.touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.created_at := now();
  RETURN NEW;
END $$;
CREATE TRIGGER orders_touch BEFORE UPDATE ON shop.orders FOR EACH ROW EXECUTE FUNCTION shop.touch();
CREATE FUNCTION shop.open_orders() RETURNS bigint LANGUAGE sql STABLE AS
  $$ SELECT count(*) FROM shop.orders WHERE state <> 'shipped' $$;
CREATE VIEW shop.open AS SELECT id, customer_id FROM shop.orders WHERE state <> 'shipped';
CREATE VIEW shop.open_count AS SELECT count(*) AS n FROM shop.open;
CREATE MATERIALIZED VIEW shop.totals AS SELECT customer_id, sum(total) AS total FROM shop.orders GROUP BY customer_id;
CREATE UNIQUE INDEX totals_customer ON shop.totals (customer_id);
CREATE PROCEDURE shop.archive() LANGUAGE sql AS $$ DELETE FROM shop.orders WHERE state = 'shipped' $$;
CREATE SCHEMA reporting;
CREATE TABLE public.shop_settings (key text PRIMARY KEY, value text NOT NULL);)"));
}

}  // namespace

TEST_CASE("pgkit dump and load") {
  scratch_database db{"ops_dump"};
  auto addr = "--addr=" + db.url();
  auto dir = pgkit_test::temp_dir("pgkit-ops-dump");
  write_shop_module(dir);
  auto applied = run_pgkit({"apply", addr, "-d", dir + "/modules", "shop", "cache", "session"});
  REQUIRE_MESSAGE(applied.exit_code == 0, applied.err);
  const auto file = dir + "/db/schema.sql";
  auto dumped = run_pgkit({"dump", addr, "--schema-file", file});
  REQUIRE_MESSAGE(dumped.exit_code == 0, dumped.err);
  const auto text = pgkit_test::read_file(file);
  const auto status_of = [&](const scratch_database& target) {
    return run_pgkit({"status", "--addr=" + target.url(), "-d", dir + "/modules"}).out;
  };

  SUBCASE("load into an empty database: the same catalog and the same status") {
    CHECK(contains(text, "CREATE TABLE shop.orders ("));
    CHECK(contains(text,
                   "INSERT INTO pgkit.schema_migration (module, version, name, checksum) "
                   "VALUES ('shop', '20260301000000', 'shop', "));
    CHECK_FALSE(contains(text, "\nSET "));
    CHECK_FALSE(contains(text, "PostgreSQL"));
    scratch_database copy{"ops_dump_copy"};
    auto loaded = run_pgkit({"load", "--addr=" + copy.url(), "--schema-file", file});
    REQUIRE_MESSAGE(loaded.exit_code == 0, loaded.err);
    CHECK(schema_catalog(copy) == schema_catalog(db));
    CHECK(status_of(copy) == status_of(db));
    CHECK(contains(status_of(copy), "shop"));
    // The copy dumps to the same text.
    auto again = run_pgkit({"dump", "--addr=" + copy.url(), "--schema-file", file + ".copy"});
    REQUIRE(again.exit_code == 0);
    CHECK(pgkit_test::read_file(file + ".copy") == text);

    // apply --dump-schema writes the same file after a successful run (here: nothing to do).
    fs::remove(file);
    pgkit_test::process_options in_dir;
    in_dir.cwd = dir;
    auto with_dump = run_pgkit(
        {"apply", addr, "-d", "modules", "shop", "cache", "session", "--dump-schema"}, in_dir);
    CHECK_MESSAGE(with_dump.exit_code == 0, with_dump.err);
    CHECK(contains(with_dump.err, "wrote the schema to db/schema.sql"));
    CHECK(pgkit_test::read_file(file) == text);

    // The schema_file key of database.toml is the default file of dump, load and
    // apply --dump-schema.
    write_file(fs::path{dir} / "database.toml", "[connections.main]\nurl = \"" + db.url() +
                                                    "\"\nschema_file = \"keyed/schema.sql\"\n");
    auto keyed = run_pgkit({"dump"}, in_dir);
    CHECK_MESSAGE(keyed.exit_code == 0, keyed.err);
    CHECK(contains(keyed.err, "wrote the schema to keyed/schema.sql"));
    CHECK(pgkit_test::read_file(dir + "/keyed/schema.sql") == text);
    fs::remove(dir + "/keyed/schema.sql");
    auto keyed_apply =
        run_pgkit({"apply", "-d", "modules", "shop", "cache", "session", "--dump-schema"}, in_dir);
    CHECK_MESSAGE(keyed_apply.exit_code == 0, keyed_apply.err);
    CHECK(pgkit_test::read_file(dir + "/keyed/schema.sql") == text);
    scratch_database keyed_copy{"ops_dump_keyed"};
    write_file(fs::path{dir} / "database.toml", "[connections.main]\nurl = \"" + keyed_copy.url() +
                                                    "\"\nschema_file = \"keyed/schema.sql\"\n");
    auto keyed_load = run_pgkit({"load"}, in_dir);
    CHECK_MESSAGE(keyed_load.exit_code == 0, keyed_load.err);
    CHECK(contains(keyed_load.err, "loaded keyed/schema.sql"));
    CHECK(schema_catalog(keyed_copy) == schema_catalog(db));

    // A database with tables is refused, and stays as it was.
    auto before = schema_catalog(copy);
    auto refused = run_pgkit({"load", "--addr=" + copy.url(), "--schema-file", file});
    CHECK(refused.exit_code == 2);
    CHECK(contains(refused.err, "refusing to load a schema into a database that has tables: "));
    CHECK(schema_catalog(copy) == before);
  }
  SUBCASE("a --schema-file that is a directory, a FIFO or unwritable: exit 2, nothing written") {
    auto fifo = dir + "/fifo.sql";
    REQUIRE(pgkit_test::run_process({"mkfifo", fifo}).exit_code == 0);
    for (const auto& [path, reason] : std::vector<std::pair<std::string, std::string>>{
             {dir + "/db", "is a directory"},
             {fifo, "is not a regular file"},
             {file + "/under-a-file.sql", "cannot write --schema-file"}}) {
      auto result = run_pgkit({"dump", addr, "--schema-file", path});
      CHECK(result.exit_code == 2);
      CHECK_MESSAGE(contains(result.err, reason), result.err);
    }
    CHECK(pgkit_test::read_file(file) == text);
    auto from_fifo = run_pgkit({"load", addr, "--schema-file", fifo});
    CHECK(from_fifo.exit_code == 2);
  }
}

// The dump of one schema is one file on every server major 13 to 18, apart from the lines where
// the server's own deparsed definitions differ; the file is tests/cli/expected/shop_schema.sql
// (the shop module's part of the dump: pgkit's own objects and bookkeeping change with the
// built-in modules and are left out).
TEST_CASE("pgkit dump: the same file from every server major") {
  scratch_database db{"ops_dump_majors"};
  auto dir = pgkit_test::temp_dir("pgkit-ops-dump-majors");
  write_shop_module(dir);
  auto applied = run_pgkit({"apply", "--addr=" + db.url(), "-d", dir + "/modules", "shop"});
  REQUIRE_MESSAGE(applied.exit_code == 0, applied.err);
  auto dumped = run_pgkit({"dump", "--addr=" + db.url(), "--schema-file", dir + "/schema.sql"});
  REQUIRE_MESSAGE(dumped.exit_code == 0, dumped.err);
  std::string shop_part;
  const auto text = pgkit_test::read_file(dir + "/schema.sql");
  for (std::size_t at = 0; at < text.size();) {
    auto end = text.find("\n\n", at);
    if (end == std::string::npos)
      end = text.size();
    auto block = text.substr(at, end - at);
    while (!block.empty() && block.back() == '\n')
      block.pop_back();
    if (block.find("pgkit") == std::string::npos)
      shop_part += (shop_part.empty() ? "" : "\n\n") + block;
    at = end + 2;
  }
  shop_part += "\n";
  const auto expected =
      pgkit_test::read_file(pgkit_test::source_dir() + "/tests/cli/expected/shop_schema.sql");

  const auto lines = [](const std::string& whole) {
    std::vector<std::string> out;
    std::string line;
    for (char c : whole) {
      if (c == '\n') {
        out.push_back(line);
        line.clear();
      } else {
        line += c;
      }
    }
    return out;
  };
  const auto got = lines(shop_part);
  const auto want = lines(expected);
  REQUIRE_MESSAGE(got.size() == want.size(), shop_part);
  std::vector<std::pair<std::string, std::string>> differing;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (got[i] != want[i])
      differing.emplace_back(want[i], got[i]);
  }
  // Before PostgreSQL 16, pg_get_viewdef qualifies the columns of a one-table view with the
  // table's name; from 16 on it does not. Those are the only lines that differ.
  std::vector<std::pair<std::string, std::string>> server_deparse;
  if (std::stoi(query_value(db.url(), "SHOW server_version_num")) < 160000) {
    server_deparse = {
        {" SELECT id,", " SELECT orders.id,"},
        {"    customer_id", "    orders.customer_id"},
        {"  WHERE (state <> 'shipped'::shop.state);",
         "  WHERE (orders.state <> 'shipped'::shop.state);"},
        {" SELECT customer_id,", " SELECT orders.customer_id,"},
        {"    sum((total)::numeric) AS total", "    sum((orders.total)::numeric) AS total"},
        {"  GROUP BY customer_id;", "  GROUP BY orders.customer_id;"},
    };
  }
  CHECK_MESSAGE(differing == server_deparse, shop_part);
}

namespace {

// The databases whose names pgkit diff gives its throwaway ones.
std::string scratch_databases() {
  return query_value(pgkit_test::sandbox_url(),
                     "SELECT count(*) FROM pg_database WHERE datname LIKE 'pgkit\\_scratch\\_%'");
}

}  // namespace

TEST_CASE("pgkit diff") {
  // Counted against what was there before: the test asserts what its own runs leave behind.
  const auto scratch_before = scratch_databases();
  scratch_database db{"ops_diff"};
  auto addr = "--addr=" + db.url();
  auto dir = pgkit_test::temp_dir("pgkit-ops-diff");
  write_shop_module(dir);
  auto applied = run_pgkit({"apply", addr, "-d", dir + "/modules", "shop"});
  REQUIRE_MESSAGE(applied.exit_code == 0, applied.err);
  const auto diff = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv{"diff", addr, "-d", dir + "/modules"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_pgkit(argv);
  };

  // After a clean apply: no drift, in a throwaway database that is gone again, or in --dev-url.
  auto clean = diff({});
  CHECK_MESSAGE(clean.exit_code == 0, clean.err);
  CHECK(clean.out.empty());
  CHECK(contains(clean.err,
                 "no drift: the database matches the migrations (schemas pgkit, "
                 "public, reporting, shop)"));
  CHECK(scratch_databases() == scratch_before);
  scratch_database dev{"ops_diff_dev"};
  auto with_dev = diff({"--dev-url", dev.url(), "shop"});
  CHECK_MESSAGE(with_dev.exit_code == 0, with_dev.err);
  CHECK(query_value(dev.url(), "SELECT to_regclass('shop.orders') IS NOT NULL") == "t");

  // A role that may not create databases, and no --dev-url: exit 2, nothing created.
  const auto role = db.name() + "_nocreatedb";
  query_value(db.url(), "CREATE ROLE " + role + " LOGIN NOCREATEDB");
  auto refused =
      run_pgkit({"diff", "--addr=" + db.url() + "?user=" + role, "-d", dir + "/modules", "shop"});
  query_value(db.url(), "DROP ROLE " + role);
  CHECK(refused.exit_code == 2);
  CHECK_MESSAGE(contains(refused.err, "the role may not create databases"), refused.err);
  CHECK(contains(refused.err, "pass --dev-url URL"));
  // (Only throwaway databases are counted, and only pgkit diff and the docs' diff example, which
  // never runs beside this test, make them: other tests create databases meanwhile.)
  CHECK(scratch_databases() == scratch_before);

  // Drift of each kind, made by hand; a schema the migrations do not touch is not compared.
  query_value(db.url(), R"(
ALTER TABLE shop.customers ALTER COLUMN name TYPE varchar(200);
ALTER TABLE shop.customers ALTER COLUMN email DROP NOT NULL;
ALTER TABLE shop.customers ALTER COLUMN id SET GENERATED BY DEFAULT;
ALTER TABLE shop.orders ALTER COLUMN created_at DROP DEFAULT;
ALTER TABLE shop.orders ALTER COLUMN total_cents DROP EXPRESSION;
ALTER TABLE public.shop_settings ADD COLUMN note text;
ALTER TABLE shop.orders DROP CONSTRAINT orders_total_check;
CREATE INDEX orders_state_idx ON shop.orders (state);
DROP INDEX shop.orders_created_at_idx;
CREATE INDEX orders_created_at_idx ON shop.orders (created_at);
ALTER SEQUENCE shop.ticket INCREMENT BY 5;
CREATE OR REPLACE VIEW shop.open AS SELECT id, customer_id FROM shop.orders WHERE state = 'new';
DROP MATERIALIZED VIEW shop.totals;
CREATE MATERIALIZED VIEW shop.totals AS
  SELECT customer_id, max(total) AS total FROM shop.orders GROUP BY customer_id;
CREATE UNIQUE INDEX totals_customer ON shop.totals (customer_id);
CREATE OR REPLACE FUNCTION shop.open_orders() RETURNS bigint LANGUAGE sql STABLE AS
  $$ SELECT count(*) FROM shop.orders WHERE state = 'new' $$;
DROP PROCEDURE shop.archive();
CREATE TRIGGER orders_touch_insert BEFORE INSERT ON shop.orders
  FOR EACH ROW EXECUTE FUNCTION shop.touch();
ALTER DOMAIN shop.price SET DEFAULT 0;
DROP SCHEMA reporting;
CREATE TABLE shop.notes (id int);
CREATE SCHEMA scratchpad;
CREATE TABLE scratchpad.anything (id int);
SELECT 1)");
  // ALTER TYPE ... ADD VALUE runs outside a transaction block before PostgreSQL 12.
  query_value(db.url(), "ALTER TYPE shop.state ADD VALUE 'refunded'");
  const auto extension = query_value(db.url(),
                                     "SELECT coalesce(min(name), '') FROM pg_available_extensions "
                                     "WHERE name IN ('citext', 'pgcrypto')");
  if (extension.empty())
    MESSAGE("neither citext nor pgcrypto is available on this server: extension drift unchecked");
  else
    query_value(db.url(), "CREATE EXTENSION " + extension + " SCHEMA shop");
  const auto catalog = schema_catalog(db);

  auto drifted = diff({});
  CHECK_MESSAGE(drifted.exit_code == 3, drifted.err);
  // One line per drift made above; where the server's deparsed text differs between majors
  // (expressions, views), only the start of the line.
  std::vector<std::string> expected{
      "- schema reporting (only in the migrations)\n",
      "~ domain shop.price (differs: the database has \"...AS numeric(12,2) DEFAULT 0 "
      "CONSTRAINT...\", the migrations \"...AS numeric(12,2) CONSTRAINT...\")\n",
      "~ enum type shop.state (differs: the database has \"CREATE TYPE shop.state AS ENUM ('new', "
      "'paid', 'shipped', 'refunded');\", the migrations \"CREATE TYPE shop.state AS ENUM ('new', "
      "'paid', 'shipped');\")\n",
      "~ function shop.open_orders() (differs: the database has \"...WHERE state = 'new'...\", "
      "the migrations \"...WHERE state <> 'shipped'...\")\n",
      "- procedure shop.archive() (only in the migrations)\n",
      "~ sequence shop.ticket (differs: the database has \"...INCREMENT BY 5...\", the migrations "
      "\"...INCREMENT BY 1...\")\n",
      "+ column public.shop_settings.note (only in the database)\n",
      "~ column shop.customers.id (differs: the database has \"bigint GENERATED BY DEFAULT AS "
      "IDENTITY NOT NULL\", the migrations \"bigint GENERATED ALWAYS AS IDENTITY NOT NULL\")\n",
      "~ column shop.customers.email (differs: the database has \"text\", the migrations \"text "
      "NOT NULL\")\n",
      "~ column shop.customers.name (differs: the database has \"character varying(200) DEFAULT "
      "'anonymous'::",
      "+ table shop.notes (only in the database)\n",
      "~ column shop.orders.total_cents (differs: the database has \"bigint\", the migrations "
      "\"bigint GENERATED ALWAYS AS (",
      "~ column shop.orders.created_at (differs: the database has \"timestamp with time zone NOT "
      "NULL\", the migrations \"timestamp with time zone DEFAULT now() NOT NULL\")\n",
      "- constraint orders_total_check on shop.orders (only in the migrations)\n",
      "~ materialized view shop.totals (differs: the database has \"max(",
      "~ view shop.open (differs: the database has \"",
      "~ index shop.orders_created_at_idx (differs: the database has \"...USING btree "
      "(created_at);\", the migrations \"...USING btree (created_at DESC) WHERE (state <> "
      "'shipped'::shop.state);\")\n",
      "+ index shop.orders_state_idx (only in the database)\n",
      "+ trigger orders_touch_insert on shop.orders (only in the database)\n",
  };
  if (!extension.empty())
    expected.push_back("+ extension " + extension + " (only in the database)\n");
  for (const auto& line : expected)
    CHECK_MESSAGE(contains(drifted.out, line), line);
  CHECK(std::count(drifted.out.begin(), drifted.out.end(), '\n') ==
        static_cast<std::ptrdiff_t>(expected.size()));
  CHECK_FALSE(contains(drifted.out, "scratchpad"));
  CHECK_FALSE(contains(drifted.err, "not applied to the database yet"));
  CHECK(contains(drifted.err, std::to_string(expected.size()) +
                                  " differences between the database and its migrations"));

  // --json: the same differences as data, both definitions whole.
  auto as_json = diff({"--json"});
  CHECK(as_json.exit_code == 3);
  auto document = nlohmann::json::parse(as_json.out);
  CHECK(document["drift"] == true);
  CHECK(document["schemas"] == nlohmann::json::array({"pgkit", "public", "reporting", "shop"}));
  CHECK(document["differences"].size() == expected.size());
  bool found = false;
  for (const auto& entry : document["differences"]) {
    if (entry["kind"] == "column" && entry["name"] == "shop.orders.created_at") {
      found = true;
      CHECK(entry["change"] == "differs");
      CHECK(entry["database"] == "timestamp with time zone NOT NULL");
      CHECK(entry["migrations"] == "timestamp with time zone DEFAULT now() NOT NULL");
    }
    if (entry["change"] == "only_in_database")
      CHECK(entry["migrations"].is_null());
  }
  CHECK(found);
  // diff changed nothing, and left no throwaway database behind.
  CHECK(schema_catalog(db) == catalog);
  CHECK(scratch_databases() == scratch_before);

  // A migration not applied yet shows as drift, and diff says why.
  write_file(fs::path{dir} / "modules" / "shop" / "20260302000000_later.sql",
             migration_text("CREATE TABLE shop.later (id int);"));
  auto pending = diff({"shop"});
  CHECK(pending.exit_code == 3);
  CHECK(contains(pending.out, "- table shop.later (only in the migrations)\n"));
  CHECK(contains(pending.err, "warning: 1 migration is not applied to the database yet"));

  // Interrupted while the migrations run in the throwaway database: it is dropped all the same.
  write_file(fs::path{dir} / "slow" / "slow" / "20260401000000_slow.sql",
             migration_text("SELECT pg_sleep(60);"));
  pgkit_test::child_process interrupted{
      {pgkit_test::pgkit_binary(), "diff", addr, "--verbose", "-d", dir + "/slow", "slow"}};
  REQUIRE(interrupted.wait_for_stderr("building the migrations in the throwaway database", 30s));
  interrupted.send_signal(SIGINT);
  CHECK(interrupted.wait(30s) == 1);
  CHECK_MESSAGE(contains(interrupted.err(), "interrupted"), interrupted.err());
  CHECK(scratch_databases() == scratch_before);
}
