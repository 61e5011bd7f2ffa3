// The `replica` key of database.toml: a connection naming the connection that serves its
// stale-tolerant reads.

#include <doctest/doctest.h>

#include <optional>
#include <string>

#include "pgkit/config.hpp"
#include "pgkit/error.hpp"

namespace {

pgkit::config_file parse(const std::string& text) {
  return pgkit::parse_config(
      text, "database.toml",
      [](const std::string&) -> std::optional<std::string> { return std::nullopt; });
}

// The message and hint of the config_error that parsing `text` throws.
std::string refusal(const std::string& text) {
  try {
    parse(text);
  } catch (const pgkit::config_error& e) {
    return std::string{e.what()} + " | " + e.hint();
  }
  return "(accepted)";
}

}  // namespace

TEST_CASE("database.toml replica") {
  SUBCASE("names the connection that serves the reads") {
    auto file = parse(
        "[connections.main]\nurl = \"postgresql://db1,db2/app?target_session_attrs=read-write\"\n"
        "replica = \"reader\"\n\n[connections.reader]\nurl = \"postgresql://db2/app\"\n");
    CHECK(file.connection("main").replica == "reader");
    CHECK(file.connection("reader").replica.empty());
  }
  SUBCASE("a name that is not in the file is refused, listing the known ones") {
    auto message = refusal("[connections.main]\nreplica = \"raeder\"\n[connections.reader]\n");
    CHECK(message.find("replica = \"raeder\" names no connection in this file") !=
          std::string::npos);
    CHECK(message.find("known: main, reader") != std::string::npos);
  }
  SUBCASE("a connection cannot be its own replica") {
    auto message = refusal("[connections.main]\nreplica = \"main\"\n");
    CHECK(message.find("replica must name another connection") != std::string::npos);
  }
  SUBCASE("it must be a string") {
    CHECK(refusal("[connections.main]\nreplica = 2\n").find("replica") != std::string::npos);
  }
}
