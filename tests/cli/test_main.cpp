#include <doctest/doctest.h>

#include "harness.hpp"
#include "pgkit/version.hpp"

using pgkit_test::run_pgkit;

TEST_CASE("pgkit (the binary)") {
  SUBCASE("--version prints the version on stdout and exits 0") {
    auto result = run_pgkit({"--version"});
    CHECK(result.exit_code == 0);
    CHECK(result.out.rfind(std::string{"pgkit "} + PGKIT_VERSION_STRING, 0) == 0);
  }
  SUBCASE("--help lists the global options and the exit codes") {
    auto result = run_pgkit({"--help"});
    CHECK(result.exit_code == 0);
    for (const char* text : {"--addr", "--config", "--connection", "--schema", "--json", "--quiet",
                             "Exit codes:", "3  a check failed"}) {
      CHECK_MESSAGE(result.out.find(text) != std::string::npos, text);
    }
    CHECK(result.out.find("__complete") == std::string::npos);
  }
  SUBCASE("no command is a usage error") {
    auto result = run_pgkit({});
    CHECK(result.exit_code == 2);
    CHECK(result.err.find("pgkit: error: no command given") != std::string::npos);
  }
  SUBCASE("an unknown command is refused with exit 2") {
    auto result = run_pgkit({"frobnicate"});
    CHECK(result.exit_code == 2);
    CHECK(result.err.find("pgkit: error: unknown command 'frobnicate'") != std::string::npos);
    CHECK(result.out.empty());
  }
  SUBCASE("a mistyped command gets the nearest one as a hint") {
    auto result = run_pgkit({"migrat", "cache"});
    CHECK(result.exit_code == 2);
    CHECK(result.err.find("pgkit: hint: did you mean 'migrate'?") != std::string::npos);
  }
  SUBCASE("a mistyped module gets the nearest one as a hint") {
    auto result = run_pgkit({"print-sql", "cahce"});
    CHECK(result.exit_code == 2);
    CHECK(result.err.find("unknown module cahce") != std::string::npos);
    CHECK(result.err.find("pgkit: hint: did you mean 'cache'?") != std::string::npos);
  }
  SUBCASE("an unknown option is refused with exit 2") {
    auto result = run_pgkit({"--frobnicate", "__complete", "modules"});
    CHECK(result.exit_code == 2);
    CHECK(result.err.rfind("pgkit: error: ", 0) == 0);
  }
  SUBCASE("__complete modules lists the built-in modules for the shell completions") {
    auto result = run_pgkit({"__complete", "modules"});
    CHECK(result.exit_code == 0);
    CHECK(result.out.find("core\n") != std::string::npos);
  }
}
