#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "harness.hpp"
#include "pgkit/config.hpp"
#include "pgkit/error.hpp"

namespace {

// An environment made of `variables` only.
pgkit::env_lookup fake_env(std::map<std::string, std::string> variables = {}) {
  return [variables](const std::string& name) -> std::optional<std::string> {
    auto found = variables.find(name);
    if (found == variables.end())
      return std::nullopt;
    return found->second;
  };
}

// Parses `text` and returns the config_error it throws (message and hint).
pgkit::config_error config_error_of(const std::string& text,
                                    const pgkit::env_lookup& env = fake_env()) {
  try {
    pgkit::parse_config(text, "database.toml", env);
  } catch (const pgkit::config_error& e) {
    return e;
  }
  FAIL("no config_error for: " << text);
  return pgkit::config_error{"unreachable"};
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("pgkit::parse_config") {
  SUBCASE("glimr's keys are read as they are") {
    auto file = pgkit::parse_config(R"(
[connections.main]
driver = "postgres"
host = "db.internal"
port = 6432
database = "app"
username = "app"
password = "s3cret"
pool_size = 15
)",
                                    "database.toml", fake_env());
    const auto& main = file.connection("main");
    CHECK(main.name == "main");
    CHECK(main.host == "db.internal");
    CHECK(main.port == 6432);
    CHECK(main.database == "app");
    CHECK(main.username == "app");
    CHECK(main.password == "s3cret");
    CHECK(main.pool_size == 15);
    CHECK(main.describe() == "postgresql://app:***@db.internal:6432/app");
    CHECK(main.source == "database.toml [connections.main]");
  }
  SUBCASE("every pool key is read") {
    auto file = pgkit::parse_config(R"(
[connections.main]
url = "postgresql://app@db/app"
pool_size = 4
min_idle = 2
acquire_timeout_ms = 250
max_lifetime_s = 120
idle_timeout_s = 30
connect_timeout_s = 3
application_name = "billing"
schema = "infra"
schema_file = "db/structure.sql"
pooler = "pgbouncer-transaction"
sslmode = "require"
)",
                                    "database.toml", fake_env());
    const auto& main = file.connection("main");
    CHECK(main.pool_size == 4);
    CHECK(main.min_idle == 2);
    CHECK(main.acquire_timeout == std::chrono::milliseconds{250});
    CHECK(main.max_lifetime == std::chrono::seconds{120});
    CHECK(main.idle_timeout == std::chrono::seconds{30});
    CHECK(main.connect_timeout == std::chrono::seconds{3});
    CHECK(main.schema == "infra");
    CHECK(main.schema_file == "db/structure.sql");
    CHECK(main.pooler == pgkit::pooler_mode::pgbouncer_transaction);
    auto conninfo = main.conninfo();
    CHECK(contains(conninfo, "connect_timeout='3'"));
    CHECK(contains(conninfo, "application_name='billing'"));
    CHECK(contains(conninfo, "sslmode='require'"));
  }
  SUBCASE("defaults: pool of 10, 5 s acquire timeout, 10 s connect timeout, no pooler") {
    auto file = pgkit::parse_config("[connections.main]\nurl = \"postgresql://h/db\"\n",
                                    "database.toml", fake_env());
    const auto& main = file.connection("main");
    CHECK(main.pool_size == 10);
    CHECK(main.min_idle == 0);
    CHECK(main.acquire_timeout == std::chrono::milliseconds{5000});
    CHECK(main.pooler == pgkit::pooler_mode::none);
    CHECK(main.schema.empty());
    CHECK(contains(main.conninfo(), "connect_timeout='10'"));
    CHECK(contains(main.conninfo(), "fallback_application_name='pgkit'"));
  }
  SUBCASE("url and a separate password combine; separate parts override the url") {
    auto file = pgkit::parse_config(R"(
[connections.main]
url = "postgresql://app@db.internal/app?connect_timeout=4"
password = "${APP_DB_PASSWORD}"
port = 5433
)",
                                    "database.toml", fake_env({{"APP_DB_PASSWORD", "pa ss'w"}}));
    const auto& main = file.connection("main");
    auto conninfo = main.conninfo();
    CHECK(contains(conninfo, R"(password='pa ss\'w')"));
    CHECK(contains(conninfo, "port='5433'"));
    CHECK(contains(conninfo, "connect_timeout='4'"));
    CHECK(main.describe() == "postgresql://app:***@db.internal:5433/app");
  }
  SUBCASE("several connections, names sorted") {
    auto file = pgkit::parse_config(R"(
[connections.replica]
url = "postgresql://r/app"
[connections.main]
url = "postgresql://m/app"
)",
                                    "database.toml", fake_env());
    CHECK(file.names() == std::vector<std::string>{"main", "replica"});
  }
  SUBCASE("an integer key may come from the environment") {
    auto file = pgkit::parse_config(
        "[connections.main]\nurl = \"postgresql://h/db\"\npool_size = \"${POOL:-7}\"\n",
        "database.toml", fake_env());
    CHECK(file.connection("main").pool_size == 7);
  }
}

TEST_CASE("pgkit::parse_config errors") {
  SUBCASE("a TOML syntax error names file, line and column") {
    auto e = config_error_of("[connections.main]\nurl = \"postgresql://h/db\"\npool_size = = 3\n");
    CHECK(e.kind() == pgkit::error_kind::config);
    CHECK(std::string{e.what()}.rfind("database.toml:3:", 0) == 0);
  }
  SUBCASE("an unknown key is refused with the nearest valid key") {
    auto e = config_error_of("[connections.main]\nurl = \"postgresql://h/db\"\npool_sise = 3\n");
    CHECK(contains(e.what(), "database.toml:3:1: unknown key 'pool_sise' in [connections.main]"));
    CHECK(e.hint() == "did you mean 'pool_size'?");
  }
  SUBCASE("an empty schema_file is refused") {
    auto e = config_error_of("[connections.main]\nschema_file = \"\"\n");
    CHECK(contains(e.what(), "schema_file must not be empty"));
  }
  SUBCASE("an unknown key far from every valid one lists them") {
    auto e = config_error_of("[connections.main]\nfrobnicator = 1\n");
    CHECK(contains(e.what(), "unknown key 'frobnicator'"));
    CHECK(contains(e.hint(), "valid keys: url, driver, host"));
  }
  SUBCASE("an unknown top-level key is refused") {
    auto e = config_error_of("[connection.main]\nurl = \"x\"\n");
    CHECK(contains(e.what(), "unknown top-level key 'connection'"));
    CHECK(e.hint() == "did you mean 'connections'?");
  }
  SUBCASE("a wrong type names the key and the expected type") {
    auto e =
        config_error_of("[connections.main]\nurl = \"postgresql://h/db\"\npool_size = \"ten\"\n");
    CHECK(contains(
        e.what(),
        "database.toml:3:13: connections.main.pool_size must be an integer, not a string"));
    auto port = config_error_of("[connections.main]\nport = 5432.5\n");
    CHECK(contains(port.what(),
                   "connections.main.port must be an integer, not a floating-point number"));
    auto host = config_error_of("[connections.main]\nhost = 12\n");
    CHECK(contains(host.what(), "connections.main.host must be a string, not an integer"));
    auto table = config_error_of("[connections]\nmain = \"postgresql://h/db\"\n");
    CHECK(contains(table.what(), "connections.main must be a table, not a string"));
  }
  SUBCASE("out-of-range numbers are refused") {
    CHECK(contains(config_error_of("[connections.main]\npool_size = 0\n").what(),
                   "pool_size must be between 1 and 10000, not 0"));
    CHECK(contains(config_error_of("[connections.main]\nport = 70000\n").what(),
                   "port must be between 1 and 65535"));
    CHECK(contains(config_error_of("[connections.main]\npool_size = 2\nmin_idle = 3\n").what(),
                   "min_idle (3) must not exceed pool_size (2)"));
  }
  SUBCASE("driver and pooler take only their known values") {
    CHECK(contains(config_error_of("[connections.main]\ndriver = \"mysql\"\n").what(),
                   "driver must be \"postgres\" or \"postgres_url\", not \"mysql\""));
    CHECK(contains(config_error_of("[connections.main]\ndriver = \"postgres_url\"\n").what(),
                   "driver = \"postgres_url\" but no url"));
    CHECK(contains(config_error_of("[connections.main]\npooler = \"pgbouncer\"\n").what(),
                   "pooler must be \"none\" or \"pgbouncer-transaction\""));
  }
  SUBCASE("an unset variable without fallback is named") {
    auto e = config_error_of("[connections.main]\npassword = \"${APP_DB_PASSWORD}\"\n");
    CHECK(contains(e.what(),
                   "database.toml:2:12: connections.main.password uses ${APP_DB_PASSWORD}, but "
                   "APP_DB_PASSWORD is not set"));
    CHECK(contains(e.hint(), "${APP_DB_PASSWORD:-fallback}"));
  }
  SUBCASE("a malformed url is a configuration error without its password") {
    auto e =
        config_error_of("[connections.main]\nurl = \"postgresql://app:hunter2@h/db?bogus=1\"\n");
    CHECK(contains(e.what(), "has an unknown parameter 'bogus'"));
    CHECK(!contains(e.what(), "hunter2"));
  }
  SUBCASE("a wrong-typed integer from the environment says what it got") {
    auto e = config_error_of("[connections.main]\npool_size = \"${POOL}\"\n",
                             fake_env({{"POOL", "many"}}));
    CHECK(contains(e.what(), "pool_size must be an integer, but 'many'"));
  }
}

TEST_CASE("pgkit::config_file::connection") {
  auto file = pgkit::parse_config(R"(
[connections.main]
url = "postgresql://m/app"
[connections.replica]
url = "postgresql://r/app"
)",
                                  "config/database.toml", fake_env());
  SUBCASE("an unknown connection lists the known ones and suggests the nearest") {
    try {
      file.connection("replcia");
      FAIL("no error");
    } catch (const pgkit::config_error& e) {
      CHECK(std::string{e.what()} ==
            "config/database.toml has no connection 'replcia'; it defines: main, replica");
      CHECK(e.hint() == "did you mean 'replica'?");
    }
  }
  SUBCASE("an empty file has no connections") {
    auto empty = pgkit::parse_config("", "database.toml", fake_env());
    CHECK_THROWS_WITH_AS(empty.connection("main"),
                         "database.toml defines no connections, so it has no 'main'",
                         pgkit::config_error);
  }
}

TEST_CASE("pgkit::expand_variables") {
  auto env = fake_env({{"HOST", "db"}, {"EMPTY", ""}});
  SUBCASE("${VAR} and ${VAR:-fallback}") {
    CHECK(pgkit::expand_variables("postgresql://${HOST}/app", env) == "postgresql://db/app");
    CHECK(pgkit::expand_variables("${MISSING:-local}", env) == "local");
    CHECK(pgkit::expand_variables("${EMPTY:-fallback}", env) == "fallback");
    CHECK(pgkit::expand_variables("${EMPTY}", env).empty());
    CHECK(pgkit::expand_variables("${HOST:-}", env) == "db");
    CHECK(pgkit::expand_variables("${MISSING:-}", env).empty());
  }
  SUBCASE("a lone $ stays; $${ is a literal ${") {
    CHECK(pgkit::expand_variables("pa$$word$", env) == "pa$$word$");
    CHECK(pgkit::expand_variables("$${HOST}", env) == "${HOST}");
  }
  SUBCASE("errors name what is wrong") {
    CHECK_THROWS_WITH_AS(pgkit::expand_variables("${MISSING}", env, "url"),
                         "url uses ${MISSING}, but MISSING is not set", pgkit::config_error);
    CHECK_THROWS_WITH_AS(pgkit::expand_variables("${HOST", env, "url"),
                         "url has a '${' without a closing '}'", pgkit::config_error);
    CHECK_THROWS_AS(pgkit::expand_variables("${1X}", env), pgkit::config_error);
  }
  SUBCASE("without an environment, every variable is unset") {
    CHECK_THROWS_AS(pgkit::expand_variables("${HOME}", pgkit::env_lookup{}), pgkit::config_error);
    CHECK(pgkit::expand_variables("${HOME:-x}", pgkit::env_lookup{}) == "x");
  }
}

TEST_CASE("pgkit::resolve_connection") {
  auto dir = pgkit_test::temp_dir("pgkit-config");
  auto file = dir + "/database.toml";
  std::ofstream{file} << "[connections.main]\nurl = \"postgresql://from-file/app\"\n"
                         "schema = \"infra\"\n[connections.replica]\nhost = \"replica\"\n";
  auto env = fake_env();
  pgkit::connection_request request;
  request.search = {dir + "/missing.toml", file};

  SUBCASE("--addr wins over everything") {
    request.addr = "postgresql://from-addr/app";
    request.database_url = "postgresql://from-env/app";
    auto config = pgkit::resolve_connection(request, env);
    CHECK(config.describe() == "postgresql://from-addr/app");
    CHECK(config.source == "--addr");
  }
  SUBCASE("then DATABASE_URL") {
    request.database_url = "postgresql://from-env/app";
    CHECK(pgkit::resolve_connection(request, env).source == "DATABASE_URL");
  }
  SUBCASE("then the first configuration file that exists, with the named connection") {
    auto config = pgkit::resolve_connection(request, env);
    CHECK(config.describe() == "postgresql://from-file/app");
    request.connection = "replica";
    CHECK(pgkit::resolve_connection(request, env).describe() == "postgresql://replica");
  }
  SUBCASE("then libpq's defaults") {
    request.search = {dir + "/missing.toml"};
    auto config = pgkit::resolve_connection(request, env);
    CHECK(config.source == "libpq defaults");
    CHECK(config.describe() == "libpq defaults");
  }
  SUBCASE("a named connection without any file is an error") {
    request.search = {dir + "/missing.toml"};
    request.connection = "replica";
    CHECK_THROWS_AS(pgkit::resolve_connection(request, env), pgkit::config_error);
  }
  SUBCASE("an explicit configuration file must exist") {
    request.config_file = dir + "/nope.toml";
    CHECK_THROWS_WITH_AS(pgkit::resolve_connection(request, env), doctest::Contains("no such file"),
                         pgkit::config_error);
  }
  SUBCASE("the schema: requested, else the connection's key, else pgkit") {
    auto config = pgkit::resolve_connection(request, env);
    CHECK(pgkit::resolve_schema("mine", config) == "mine");
    CHECK(pgkit::resolve_schema("", config) == "infra");
    CHECK(pgkit::resolve_schema("", pgkit::config_from_url("postgresql://h/db")) == "pgkit");
  }
}

TEST_CASE("pgkit::connection_config::describe") {
  SUBCASE("shows a password as ***, never itself") {
    auto config = pgkit::config_from_url("postgresql://app:topsecret@db:5432/app");
    CHECK(config.describe() == "postgresql://app:***@db:5432/app");
    CHECK(contains(config.conninfo(), "password='topsecret'"));
  }
  SUBCASE("a conninfo string works as a url") {
    auto config = pgkit::config_from_url("host=/run/pg dbname=app password=x");
    CHECK(config.describe() == "postgresql://:***@%2Frun%2Fpg/app");
  }
}

namespace {

// Returns the config_error that config_from_url throws for `url`, as "message\nhint".
std::string url_error(const std::string& url) {
  try {
    pgkit::config_from_url(url, "--addr");
  } catch (const pgkit::config_error& e) {
    return std::string{e.what()} + "\n" + e.hint();
  }
  FAIL("no config_error for: " << url);
  return {};
}

}  // namespace

TEST_CASE("pgkit::config_from_url refuses what libpq would read apart from its password") {
  SUBCASE("an unencoded '/' in the password") {
    auto text = url_error("postgresql://u:S3c/r3tPW@127.0.0.1:1/db");
    CHECK(contains(text, "the URL of --addr has an '@' or '/' after the '/'"));
    CHECK(contains(text, "%2F"));
    CHECK(!contains(text, "S3c"));
    CHECK(!contains(text, "r3tPW"));
  }
  SUBCASE("an unencoded '@' in the password") {
    auto text = url_error("postgresql://u:S3c@r3tPW@host/db");
    CHECK(contains(text, "more than one '@'"));
    CHECK(contains(text, "%40"));
    CHECK(!contains(text, "r3tPW"));
  }
  SUBCASE("a '/' and no '@': the password would be read as a port") {
    auto text = url_error("postgresql://u:S3cr3tPW/db");
    CHECK(contains(text, "port that is not a number"));
    CHECK(!contains(text, "S3cr3tPW"));
  }
  SUBCASE("an '@' in the query before any '/' would end a user name") {
    auto text = url_error("postgresql://host?user=me@corp");
    CHECK(contains(text, "'@' in its query"));  // After a '/' too: "read-write:S3c/r3t@PW@" would
                                                // be a query value (found by fuzz_conninfo).
    text = url_error("postgresql://h/app?target_session_attrs=read-write:S3c/r3t@PW@");
    CHECK(contains(text, "has an '@' in its query"));
    CHECK(!contains(text, "r3t"));
  }
  SUBCASE("a NUL byte, and a bad percent escape that libpq would quote") {
    auto text = url_error(std::string{"postgresql://u@h/db?password=S3cr3tPW%ZZ"} + '\0');
    CHECK(contains(text, "NUL byte"));
    CHECK(!contains(text, "S3cr3tPW"));
    text = url_error("postgresql://u@h/db?password=S3cr3tPW%ZZ");
    CHECK(contains(text, "invalid percent escape in the value of its parameter 'password'"));
    CHECK(!contains(text, "S3cr3tPW"));
    text = url_error("postgresql://u:S3cr3tPW%zz@h/db");
    CHECK(contains(text, "invalid percent escape in its password"));
    CHECK(!contains(text, "S3cr3tPW"));
  }
  SUBCASE("libpq's words stay whole whatever the password (no search and replace)") {
    auto text = url_error("postgresql://u:a@h/db?bogus=1");
    CHECK(contains(text, "has an unknown parameter 'bogus'"));
    CHECK(!contains(text, "***"));
    // The password '*' with a parameter '*': the old replace loop never returned.
    text = url_error("postgresql://u:*@h/db?*=1");
    CHECK(contains(text, "unknown parameter '*'"));
  }
  SUBCASE("conninfo errors name keywords, never values") {
    auto text = url_error("host=h password=S3c r3tPW dbname=x");
    CHECK(contains(text, "a word without '=' after the value of 'password'"));
    CHECK(!contains(text, "r3tPW"));
    text = url_error("host=h password='S3cr3tPW");
    CHECK(contains(text, "quoted value of 'password' that is not closed"));
    CHECK(!contains(text, "S3cr3tPW"));
  }
  SUBCASE("well-formed URLs with every kind of part still parse") {
    CHECK(pgkit::config_from_url("postgresql://u:p%40ss%2Fw@h:5432/db?sslmode=disable&ssl=true")
              .describe() == "postgresql://u:***@h:5432/db");
    CHECK(pgkit::config_from_url("postgresql:///db?host=/tmp").describe() ==
          "postgresql://%2Ftmp/db");
    CHECK(pgkit::config_from_url("postgresql://").describe() == "libpq defaults");
    CHECK(pgkit::config_from_url("postgresql://h/db?sslmode=disable&").describe() ==
          "postgresql://h/db");
    CHECK(pgkit::config_from_url("postgresql://h/db?user=me%40corp").describe() ==
          "postgresql://me%40corp@h/db");
  }
}

TEST_CASE("database.toml passwords never show in messages") {
  SUBCASE("a NUL inside the url") {
    auto e = config_error_of(
        "[connections.main]\nurl = \"postgresql://u@h/db?password=S3cr3tPW%ZZ\\u0000\"\n");
    CHECK(contains(e.what(), "NUL byte"));
    CHECK(!contains(e.what(), "S3cr3tPW"));
  }
  SUBCASE("a NUL inside the password key") {
    auto e = config_error_of(
        "[connections.main]\nurl = \"postgresql://u@h/db\"\npassword = \"S3c\\u0000r3tPW\"\n");
    CHECK(contains(e.what(), "the password of database.toml [connections.main] contains a NUL"));
    CHECK(!contains(e.what(), "r3tPW"));
  }
  SUBCASE("a '${' that is no variable is not quoted") {
    auto e = config_error_of("[connections.main]\npassword = \"S3c${r3t PW}x\"\n");
    CHECK(contains(e.what(), "has a '${' at character 4"));
    CHECK(!contains(e.what(), "r3t PW"));
  }
}

TEST_CASE("several servers: multi-host URLs and hosts = [...]") {
  SUBCASE("a multi-host URL shows host:port pairs and target_session_attrs") {
    auto config = pgkit::config_from_url(
        "postgresql://app:pw@127.0.0.1:5432,127.0.0.1:5433/app?target_session_attrs=read-write");
    CHECK(config.describe() ==
          "postgresql://app:***@127.0.0.1:5432,127.0.0.1:5433/app"
          "?target_session_attrs=read-write");
  }
  SUBCASE("one port for every host, and hosts without a port") {
    CHECK(pgkit::config_from_url("host=a,b port=6000 dbname=x").describe() ==
          "postgresql://a:6000,b:6000/x");
    CHECK(pgkit::config_from_url("postgresql://a,b/x").describe() == "postgresql://a,b/x");
  }
  SUBCASE("IPv6 addresses show in brackets, not percent-encoded") {
    CHECK(pgkit::config_from_url("postgresql://u@[::1]:5432/db").describe() ==
          "postgresql://u@[::1]:5432/db");
    CHECK(pgkit::config_from_url("postgresql://[::1],[fe80::1]:5433/db").describe() ==
          "postgresql://[::1],[fe80::1]:5433/db");
  }
  SUBCASE("hosts = [...] in database.toml means the same as a multi-host URL") {
    auto file = pgkit::parse_config(
        "[connections.main]\nhosts = [\"db1:5432\", \"[::1]:5433\", \"db3\"]\n"
        "port = 6432\ndatabase = \"app\"\ntarget_session_attrs = \"read-write\"\n",
        "database.toml", fake_env());
    const auto& config = file.connection("main");
    CHECK(config.describe() ==
          "postgresql://db1:5432,[::1]:5433,db3:6432/app?target_session_attrs=read-write");
    CHECK(contains(config.conninfo(), "host='db1,::1,db3'"));
    CHECK(contains(config.conninfo(), "port='5432,5433,6432'"));
    CHECK(contains(config.conninfo(), "target_session_attrs='read-write'"));
  }
  SUBCASE("hosts errors: with host, empty, bad port, not strings") {
    auto e = config_error_of("[connections.main]\nhost = \"a\"\nhosts = [\"b\"]\n");
    CHECK(contains(e.what(), "connections.main.hosts and connections.main.host are both given"));
    e = config_error_of("[connections.main]\nhosts = []\n");
    CHECK(contains(e.what(), "must be a non-empty array of strings"));
    e = config_error_of("[connections.main]\nhosts = [\"a:99999\"]\n");
    CHECK(contains(e.what(), "port is not a number in 1-65535"));
    e = config_error_of("[connections.main]\nhosts = [1]\n");
    CHECK(contains(e.what(), "must be a string"));
  }
}

TEST_CASE("toml++'s known defects stay syntax errors") {
  // docs/development.md: an assertion in parse_key on [$x], UB for U+FC9A-U+FEFE outside
  // strings. Debian's compiled toml++ reports both as syntax errors.
  auto key = config_error_of("[$x]\n");
  CHECK(contains(key.what(), "database.toml:1:2: "));
  auto arabic = config_error_of("a = 1\n\xef\xb2\x9a = 2\n");
  CHECK(contains(arabic.what(), "database.toml:2:1: "));
}
