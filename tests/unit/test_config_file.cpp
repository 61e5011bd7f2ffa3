// The database.toml key table (every key it accepts is read into the connection) and the one
// search for the configuration file that pgkit::start, resolve_connection (the CLI's
// connection) and the CLI's completion share.

#include <doctest/doctest.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config_file.hpp"
#include "config/toml_reader.hpp"
#include "harness.hpp"
#include "pgkit/config.hpp"
#include "pgkit/error.hpp"
#include "pgkit/pool.hpp"

namespace {

using namespace std::chrono_literals;

// A value for one key and how to see it in the parsed connection.
struct key_sample {
  std::string toml;  // the value as TOML text
  std::function<bool(const pgkit::connection_config&)> applied;
};

// One sample per key of the table, each different from the key's default. A key added to the
// table fails the test below until it gets a sample here.
const std::map<std::string, key_sample>& key_samples() {
  using config = pgkit::connection_config;
  static const std::map<std::string, key_sample> samples{
      {"url",
       {R"("postgresql://sample-host/sample")",
        [](const config& c) { return c.url == "postgresql://sample-host/sample"; }}},
      {"host", {R"("sample-host")", [](const config& c) { return c.host == "sample-host"; }}},
      {"hosts",
       {R"(["h1:5433", "h2"])",
        [](const config& c) {
          return c.hosts == std::vector<std::string>{"h1:5433", "h2"};
        }}},
      {"target_session_attrs",
       {R"("read-write")", [](const config& c) { return c.target_session_attrs == "read-write"; }}},
      {"port", {"6543", [](const config& c) { return c.port == 6543; }}},
      {"database", {R"("sample_db")", [](const config& c) { return c.database == "sample_db"; }}},
      {"username",
       {R"("sample_user")", [](const config& c) { return c.username == "sample_user"; }}},
      {"password", {R"("sample_pw")", [](const config& c) { return c.password == "sample_pw"; }}},
      {"sslmode", {R"("require")", [](const config& c) { return c.sslmode == "require"; }}},
      {"application_name",
       {R"("sample-app")", [](const config& c) { return c.application_name == "sample-app"; }}},
      {"schema",
       {R"("sample_schema")", [](const config& c) { return c.schema == "sample_schema"; }}},
      {"schema_file",
       {R"("db/structure.sql")",
        [](const config& c) { return c.schema_file == "db/structure.sql"; }}},
      {"pooler",
       {R"("pgbouncer-transaction")",
        [](const config& c) { return c.pooler == pgkit::pooler_mode::pgbouncer_transaction; }}},
      {"replica", {R"("standby")", [](const config& c) { return c.replica == "standby"; }}},
      {"pool_size", {"42", [](const config& c) { return c.pool_size == 42; }}},
      {"min_idle", {"3", [](const config& c) { return c.min_idle == 3; }}},
      {"acquire_timeout_ms", {"1234", [](const config& c) { return c.acquire_timeout == 1234ms; }}},
      {"max_lifetime_s", {"77", [](const config& c) { return c.max_lifetime == 77s; }}},
      {"idle_timeout_s", {"88", [](const config& c) { return c.idle_timeout == 88s; }}},
      {"connect_timeout_s", {"9", [](const config& c) { return c.connect_timeout == 9s; }}},
  };
  return samples;
}

// glimr's `driver` is checked, not kept: "postgres_url" without a url is refused.
const std::string k_driver_sample = R"("postgres_url")";

// Whether `toml` is written as a value of `type`.
bool written_as(const std::string& toml, pgkit::detail::value_type type) {
  switch (type) {
    case pgkit::detail::value_type::string:
      return toml.front() == '"';
    case pgkit::detail::value_type::integer:
      return std::isdigit(static_cast<unsigned char>(toml.front())) != 0;
    case pgkit::detail::value_type::string_array:
      return toml.front() == '[';
  }
  return false;
}

// The connection `main` of a file that sets `key` to `value` (with a connection `standby`
// for replica to name).
pgkit::connection_config parse_one_key(const std::string& key, const std::string& value) {
  auto text = "[connections.main]\n" + key + " = " + value + "\n[connections.standby]\n";
  return pgkit::parse_config(text, "database.toml", pgkit::env_lookup{}).connection("main");
}

// Makes `dir` the current directory until the end of the scope.
struct current_directory {
  explicit current_directory(const std::string& dir) { std::filesystem::current_path(dir); }
  ~current_directory() { std::filesystem::current_path(saved); }
  current_directory(const current_directory&) = delete;
  current_directory& operator=(const current_directory&) = delete;
  std::filesystem::path saved = std::filesystem::current_path();
};

void write_file(const std::string& path, const std::string& text) {
  if (auto parent = std::filesystem::path{path}.parent_path(); !parent.empty())
    std::filesystem::create_directories(parent);
  std::ofstream{path} << text;
}

}  // namespace

TEST_CASE("database.toml: every key of the key table is read into the connection") {
  const auto& samples = key_samples();
  std::size_t keys = 0;
  for (const auto& key : pgkit::detail::connection_keys()) {
    std::string name{key.name()};
    CAPTURE(name);
    ++keys;
    if (name == "driver") {
      CHECK(written_as(k_driver_sample, key.type()));
      CHECK_THROWS_WITH_AS(parse_one_key(name, k_driver_sample),
                           doctest::Contains("has driver = \"postgres_url\" but no url"),
                           pgkit::config_error);
      continue;
    }
    auto sample = samples.find(name);
    REQUIRE_MESSAGE(sample != samples.end(), "add a sample for the key '" << name << "'");
    CHECK(written_as(sample->second.toml, key.type()));
    CHECK_FALSE(sample->second.applied(pgkit::connection_config{}));  // not the default
    CHECK(sample->second.applied(parse_one_key(name, sample->second.toml)));
  }
  // Every sample is a key of the table (plus driver), and the table has no key twice.
  CHECK(keys == samples.size() + 1);
  for (const auto& [name, sample] : samples) {
    std::size_t found = 0;
    for (const auto& key : pgkit::detail::connection_keys())
      found += key.name() == name ? 1U : 0U;
    CHECK_MESSAGE(found == 1, name);
  }
}

TEST_CASE("the configuration file search: --config, else database.toml, else config/...") {
  CHECK(pgkit::default_config_files() ==
        std::vector<std::string>{"database.toml", "config/database.toml"});
  auto dir = pgkit_test::temp_dir("pgkit-config-search");
  current_directory in_dir{dir};
  const std::string main_url = "[connections.main]\nurl = \"postgresql://";
  auto resolved = [] {
    pgkit::connection_request request;
    request.search = pgkit::default_config_files();  // as the CLI asks
    return pgkit::resolve_connection(request, pgkit::env_lookup{}).describe();
  };
  // pgkit::start reads the file it finds: without a connection `main` in it, it says which (the
  // first line of what(); start's errors end with their hint, for programs that never catch).
  auto start_error = [] {
    try {
      pgkit::start("main");
    } catch (const pgkit::config_error& e) {
      std::string what = e.what();
      CHECK(what.find("\nhint: ") != std::string::npos);
      return what.substr(0, what.find('\n'));
    }
    return std::string{"no config_error"};
  };

  SUBCASE("no file: nothing is found, start says where it looked") {
    CHECK(pgkit::detail::find_config_file("") == std::nullopt);
    CHECK(resolved() == "libpq defaults");
    CHECK(start_error() ==
          "pgkit::start(\"main\") found no configuration file (looked for "
          "database.toml and config/database.toml in " +
              std::filesystem::current_path().string() + ")");
  }
  SUBCASE("config/database.toml when it is the only one") {
    write_file("config/database.toml", main_url + "second/app\"\n");
    CHECK(pgkit::detail::find_config_file("") == "config/database.toml");
    CHECK(resolved() == "postgresql://second/app");
    write_file("config/database.toml", "[connections.other]\n");
    CHECK(start_error() == "config/database.toml has no connection 'main'; it defines: other");
  }
  SUBCASE("database.toml before config/database.toml") {
    write_file("config/database.toml", main_url + "second/app\"\n");
    write_file("database.toml", main_url + "first/app\"\n");
    CHECK(pgkit::detail::find_config_file("") == "database.toml");
    CHECK(resolved() == "postgresql://first/app");
    write_file("database.toml", "[connections.other]\n");
    CHECK(start_error() == "database.toml has no connection 'main'; it defines: other");
  }
  SUBCASE("a named file wins, and is returned even when it is missing") {
    write_file("database.toml", main_url + "first/app\"\n");
    CHECK(pgkit::detail::find_config_file("elsewhere.toml") == "elsewhere.toml");
    CHECK(pgkit::detail::find_config_file("", {"missing.toml"}) == std::nullopt);
    CHECK(pgkit::detail::find_config_file("", {"missing.toml", "database.toml"}) ==
          "database.toml");
  }
}
