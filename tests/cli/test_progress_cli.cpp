// The progress line of cache-gc, session-purge and apply: shown under a real pseudo-terminal
// (util-linux's `script` runs pgkit on one), absent with --quiet, and nothing of it written
// into a pipe.

#include <doctest/doctest.h>

#include <regex>
#include <string>

#include "harness.hpp"

using pgkit_test::query_value;
using pgkit_test::run_pgkit;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Runs pgkit with `args` (words without quotes or spaces) on a pseudo-terminal and returns
// what the terminal showed (stdout and stderr together).
pgkit_test::process_result run_on_terminal(const std::string& args) {
  return pgkit_test::run_process(
      {"script", "-qefc", pgkit_test::pgkit_binary() + " " + args, "/dev/null"});
}

}  // namespace

TEST_CASE("progress line") {
  pgkit_test::scratch_database db{"progress"};
  REQUIRE(run_pgkit({"apply", "--addr", db.url(), "cache", "session"}).exit_code == 0);
  auto add_expired = [&db] {
    query_value(db.url(),
                "INSERT INTO pgkit.cache (resource_type, key, value, expires_at) SELECT 'old', "
                "'k' || i, '\\x00', now() - interval '1 minute' FROM generate_series(1, 3000) i");
  };
  const std::string erase = "\r\033[K";

  SUBCASE("cache-gc shows batches and rows on a terminal") {
    add_expired();
    auto shown = run_on_terminal("cache-gc --addr " + db.url() + " --batch-size 1000");
    CHECK_MESSAGE(shown.exit_code == 0, shown.out);
    CHECK(contains(shown.out, erase + "cache-gc: 1 batch, 1000 rows, "));
    CHECK(contains(shown.out, erase + "cache-gc: 3 batches, 3000 rows, "));
    // The line is erased before the summary, which stays.
    CHECK(std::regex_search(
        shown.out, std::regex{"\r\033\\[Kdeleted 3000 expired cache entries in [0-9.]+ s"}));
  }
  SUBCASE("nothing of it goes into a pipe") {
    add_expired();
    auto piped = run_pgkit({"cache-gc", "--addr", db.url(), "--batch-size", "1000"});
    CHECK(piped.exit_code == 0);
    CHECK(std::regex_match(
        piped.err, std::regex{"deleted 3000 expired cache entries in [0-9]+\\.[0-9][0-9] s\n"}));
    CHECK(piped.out.empty());
  }
  SUBCASE("--quiet shows nothing on a terminal") {
    add_expired();
    auto quiet = run_on_terminal("-q cache-gc --addr " + db.url() + " --batch-size 1000");
    CHECK(quiet.exit_code == 0);
    CHECK(quiet.out.empty());
  }
  SUBCASE("session-purge shows its batches on a terminal") {
    query_value(db.url(),
                "INSERT INTO pgkit.session (key_hash, expires_at) SELECT "
                "sha256(i::text::bytea), now() - interval '1 minute' FROM "
                "generate_series(1, 1500) i");
    auto shown = run_on_terminal("session-purge --addr " + db.url() + " --only session");
    CHECK_MESSAGE(shown.exit_code == 0, shown.out);
    CHECK(contains(shown.out, erase + "session-purge: 2 batches, 1500 rows, "));
    CHECK(contains(shown.out, "deleted 1500 rows from session"));
  }
  SUBCASE("apply shows the migration in progress on a terminal, and not in a pipe") {
    auto shown = run_on_terminal("apply --addr " + db.url() + " auth");
    CHECK_MESSAGE(shown.exit_code == 0, shown.out);
    CHECK(std::regex_search(
        shown.out,
        std::regex{"\r\033\\[Kapply: running auth [0-9]+_auth\\.sql \\([0-9]+\\.[0-9] s\\)"}));
    pgkit_test::scratch_database other{"progress_pipe"};
    auto piped = run_pgkit({"apply", "--addr", other.url(), "auth"});
    CHECK(piped.exit_code == 0);
    CHECK(!contains(piped.err, "apply: running"));
    CHECK(!contains(piped.err, "\r"));
  }
}
