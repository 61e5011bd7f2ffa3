// --addr, --config and --connection through the binary: `pgkit __resolve` prints the
// connection every command would use, `pgkit __complete connections` the names for the shell.

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "harness.hpp"

using pgkit_test::run_pgkit;

namespace {

// A directory with `database.toml` (or `relative`) holding `text`.
std::string config_dir(const std::string& text, const std::string& relative = "database.toml") {
  auto dir = pgkit_test::temp_dir("pgkit-cli-config");
  std::filesystem::create_directories(std::filesystem::path{dir + "/" + relative}.parent_path());
  std::ofstream{dir + "/" + relative} << text;
  return dir;
}

pgkit_test::process_options in_dir(const std::string& dir) {
  pgkit_test::process_options options;
  options.cwd = dir;
  options.unset_env = {"DATABASE_URL"};
  return options;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

const char* const k_two_connections = R"(
[connections.main]
url = "postgresql://app:topsecret@db.internal/app"
schema = "infra"
[connections.replica]
driver = "postgres"
host = "replica.internal"
port = 6432
database = "app"
username = "reader"
password = "${REPLICA_PASSWORD:-alsosecret}"
pooler = "pgbouncer-transaction"
)";

}  // namespace

TEST_CASE("pgkit --config / --connection") {
  auto dir = config_dir(k_two_connections);

  SUBCASE("__complete connections lists the names from ./database.toml") {
    auto result = run_pgkit({"__complete", "connections"}, in_dir(dir));
    CHECK(result.exit_code == 0);
    CHECK(result.out == "main\nreplica\n");
  }
  SUBCASE("__complete connections reads config/database.toml and --config FILE") {
    auto nested =
        config_dir("[connections.staging]\nurl = \"postgresql://s/app\"\n", "config/database.toml");
    CHECK(run_pgkit({"__complete", "connections"}, in_dir(nested)).out == "staging\n");
    auto result = run_pgkit({"--config", dir + "/database.toml", "__complete", "connections"},
                            in_dir(nested));
    CHECK(result.out == "main\nreplica\n");
  }
  SUBCASE("__complete connections prints nothing without a configuration file") {
    auto empty = pgkit_test::temp_dir("pgkit-cli-empty");
    auto result = run_pgkit({"__complete", "connections"}, in_dir(empty));
    CHECK(result.exit_code == 0);
    CHECK(result.out.empty());
  }
  SUBCASE("the main connection is the default; the password never shows") {
    auto result = run_pgkit({"__resolve"}, in_dir(dir));
    CHECK(result.exit_code == 0);
    CHECK(contains(result.out, "address: postgresql://app:***@db.internal/app\n"));
    CHECK(contains(result.out, "source: database.toml [connections.main]\n"));
    CHECK(contains(result.out, "schema: infra\n"));
    CHECK(!contains(result.out + result.err, "topsecret"));
  }
  SUBCASE("--connection picks another, before or after the command") {
    for (auto args : {std::vector<std::string>{"--connection", "replica", "__resolve"},
                      std::vector<std::string>{"__resolve", "--connection=replica"}}) {
      auto result = run_pgkit(args, in_dir(dir));
      CHECK(result.exit_code == 0);
      CHECK(contains(result.out, "address: postgresql://reader:***@replica.internal:6432/app\n"));
      CHECK(contains(result.out, "pooler: pgbouncer-transaction\n"));
      CHECK(contains(result.out, "schema: pgkit\n"));
      CHECK(!contains(result.out, "alsosecret"));
    }
  }
  SUBCASE("an unknown name among 20 000 connections: a short message, a bounded suggestion") {
    std::string many;
    for (int i = 0; i < 20000; ++i)
      many += "[connections.conn_" + std::to_string(10000 + i) + "]\nurl = \"postgresql://h/db\"\n";
    auto big = config_dir(many);
    auto long_name = run_pgkit({"__resolve", "--connection", std::string(20000, 'c')}, in_dir(big));
    CHECK(long_name.exit_code == 2);
    CHECK(contains(long_name.err, "conn_10019 and 19980 more\n"));
    CHECK(long_name.err.size() < 1000);
    auto typo = run_pgkit({"__resolve", "--connection", "conn_1234x"}, in_dir(big));
    CHECK(typo.exit_code == 2);
    CHECK(contains(typo.err, "pgkit: hint: did you mean 'conn_12340'?\n"));
  }
  SUBCASE("--schema wins over the connection's schema key") {
    auto result = run_pgkit({"__resolve", "--schema", "mine"}, in_dir(dir));
    CHECK(contains(result.out, "schema: mine\n"));
  }
  SUBCASE("an unknown connection lists the known ones, exit 2") {
    auto result = run_pgkit({"__resolve", "--connection", "replcia"}, in_dir(dir));
    CHECK(result.exit_code == 2);
    CHECK(contains(result.err,
                   "pgkit: error: database.toml has no connection 'replcia'; it "
                   "defines: main, replica\n"));
    CHECK(contains(result.err, "pgkit: hint: did you mean 'replica'?\n"));
  }
  SUBCASE("--addr wins over DATABASE_URL, which wins over the file") {
    auto options = in_dir(dir);
    options.unset_env.clear();
    options.env["DATABASE_URL"] = "postgresql://u:envsecret@from-env/app";
    auto from_env = run_pgkit({"__resolve"}, options);
    CHECK(contains(from_env.out, "address: postgresql://u:***@from-env/app\n"));
    CHECK(contains(from_env.out, "source: DATABASE_URL\n"));
    CHECK(!contains(from_env.out, "envsecret"));
    auto from_addr = run_pgkit({"__resolve", "--addr", "postgresql://from-addr/app"}, options);
    CHECK(contains(from_addr.out, "address: postgresql://from-addr/app\n"));
  }
  SUBCASE("--json prints one document") {
    auto result = run_pgkit({"__resolve", "--json"}, in_dir(dir));
    CHECK(result.exit_code == 0);
    CHECK(contains(result.out, "\"address\": \"postgresql://app:***@db.internal/app\""));
    CHECK(contains(result.out, "\"pool_size\": 10"));
  }
}

TEST_CASE("pgkit configuration errors") {
  SUBCASE("a TOML syntax error names file, line and column, exit 2") {
    auto dir = config_dir("[connections.main]\nurl = \"postgresql://h/db\"\npool_size = = 3\n");
    auto result = run_pgkit({"__complete", "connections"}, in_dir(dir));
    CHECK(result.exit_code == 2);
    CHECK(result.err.rfind("pgkit: error: database.toml:3:", 0) == 0);
  }
  SUBCASE("an unknown key suggests the nearest, exit 2") {
    auto dir = config_dir(
        "[connections.main]\nurl = \"postgresql://h/db\"\nusername = \"a\"\n"
        "pasword = \"b\"\n");
    auto result = run_pgkit({"__resolve"}, in_dir(dir));
    CHECK(result.exit_code == 2);
    CHECK(contains(result.err,
                   "pgkit: error: database.toml:4:1: unknown key 'pasword' in "
                   "[connections.main]\n"));
    CHECK(contains(result.err, "pgkit: hint: did you mean 'password'?\n"));
  }
  SUBCASE("a wrong type names the key and the expected type, exit 2") {
    auto dir = config_dir("[connections.main]\nport = \"5432\"\n");
    auto result = run_pgkit({"__resolve"}, in_dir(dir));
    CHECK(result.exit_code == 2);
    CHECK(contains(result.err, "connections.main.port must be an integer, not a string"));
  }
  SUBCASE("an unset variable is named, exit 2") {
    auto dir = config_dir("[connections.main]\npassword = \"${PGKIT_TEST_UNSET_VAR}\"\n");
    auto result = run_pgkit({"__resolve"}, in_dir(dir));
    CHECK(result.exit_code == 2);
    CHECK(contains(result.err, "PGKIT_TEST_UNSET_VAR is not set"));
  }
  SUBCASE("a variable from the environment is expanded and stays hidden") {
    auto dir = config_dir("[connections.main]\nurl = \"${PGKIT_TEST_URL}\"\n");
    auto options = in_dir(dir);
    options.env["PGKIT_TEST_URL"] = "postgresql://app:hidden@expanded/app";
    auto result = run_pgkit({"__resolve"}, options);
    CHECK(result.exit_code == 0);
    CHECK(contains(result.out, "address: postgresql://app:***@expanded/app\n"));
    CHECK(!contains(result.out, "hidden"));
  }
  SUBCASE("--config naming a missing file, exit 2") {
    auto dir = pgkit_test::temp_dir("pgkit-cli-empty");
    auto result = run_pgkit({"--config", "nope.toml", "__resolve"}, in_dir(dir));
    CHECK(result.exit_code == 2);
    CHECK(contains(result.err, "cannot read the configuration file nope.toml: no such file"));
  }
}
