// The CLI's shared layers through the binary: one output layer (stdout that cannot be written,
// one JSON layout, --quiet), one validator for numeric options, inputs that are not files and
// text that is not UTF-8.

#include <doctest/doctest.h>

#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <pqxx/pqxx>

#include "child_process.hpp"
#include "harness.hpp"

using pgkit_test::run_pgkit;
using pgkit_test::run_process;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Runs pgkit with `args` and its stdout on /dev/full, where every write fails with ENOSPC.
pgkit_test::process_result run_into_full_disk(const std::vector<std::string>& args,
                                              const pgkit_test::process_options& options = {}) {
  std::vector<std::string> argv{"sh", "-c", "exec \"$0\" \"$@\" >/dev/full",
                                pgkit_test::pgkit_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, options);
}

void check_full_disk_failure(const pgkit_test::process_result& result, const std::string& what) {
  CHECK_MESSAGE(result.exit_code == 1, what, ": ", result.err);
  CHECK_MESSAGE(contains(result.err,
                         "pgkit: error: cannot write to standard output: No space "
                         "left on device\n"),
                what, ": ", result.err);
}

// Waits until a backend of the database at `url` has run LISTEN on `channel`, so that a
// notification sent next reaches it.
bool listening(const std::string& url, const std::string& channel) {
  return pgkit_test::eventually([&] {
    return pgkit_test::query_value(url,
                                   "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                   "current_database() AND query LIKE 'LISTEN%" +
                                       channel + "%'") == "1";
  });
}

// An address where nothing listens: a command that gets as far as connecting exits 1.
const std::string k_nowhere = "postgresql://nobody:pw@127.0.0.1:1/x";

}  // namespace

TEST_CASE("pgkit: stdout that cannot be written is a failure (exit 1)") {
  pgkit_test::scratch_database db{"cli_full"};
  auto applied = run_pgkit({"apply", "--addr", db.url(), "cache", "session"});
  REQUIRE_MESSAGE(applied.exit_code == 0, applied.err);

  SUBCASE("print-sql, __complete and __resolve, offline") {
    check_full_disk_failure(run_into_full_disk({"print-sql", "core"}), "print-sql");
    check_full_disk_failure(run_into_full_disk({"__complete", "modules"}), "__complete");
    check_full_disk_failure(run_into_full_disk({"__resolve", "--addr", k_nowhere}), "__resolve");
    check_full_disk_failure(run_into_full_disk({"--help"}), "--help");
  }
  SUBCASE("migrate, status and status --json") {
    check_full_disk_failure(run_into_full_disk({"migrate", "--addr", db.url(), "auth"}), "migrate");
    check_full_disk_failure(run_into_full_disk({"status", "--addr", db.url()}), "status");
    check_full_disk_failure(run_into_full_disk({"status", "--json", "--addr", db.url()}),
                            "status --json");
  }
  SUBCASE("cache-gc --json, session-purge --json and notify --json") {
    check_full_disk_failure(run_into_full_disk({"cache-gc", "--json", "--addr", db.url()}),
                            "cache-gc");
    check_full_disk_failure(
        run_into_full_disk({"session-purge", "--json", "--only", "session", "--addr", db.url()}),
        "session-purge");
    check_full_disk_failure(run_into_full_disk({"notify", "--json", "--addr", db.url(), "c", "p"}),
                            "notify");
  }
  SUBCASE("listen, on its first notification") {
    pgkit_test::child_process listener{{"sh", "-c", "exec \"$0\" \"$@\" >/dev/full",
                                        pgkit_test::pgkit_binary(), "listen", "--addr", db.url(),
                                        "--timeout", "60", "full_disk"}};
    REQUIRE(listening(db.url(), "full_disk"));
    pgkit_test::query_value(db.url(), "SELECT pg_notify('full_disk', 'x')");
    pgkit_test::process_result result;
    result.exit_code = listener.wait(std::chrono::seconds{30});
    result.err = listener.err();
    check_full_disk_failure(result, "listen");
  }
}

TEST_CASE("pgkit listen: a reader that goes away ends it normally (exit 0)") {
  pgkit_test::scratch_database db{"cli_epipe"};
  pgkit_test::child_process pipeline{{"bash", "-c", "set -o pipefail; \"$0\" \"$@\" | head -n 1",
                                      pgkit_test::pgkit_binary(), "listen", "--addr", db.url(),
                                      "--timeout", "60", "closed_pipe"}};
  REQUIRE(listening(db.url(), "closed_pipe"));
  // head exits after the first line; listen sees the closed pipe on a later write.
  std::atomic<bool> done{false};
  std::thread sender{[&] {
    while (!done) {
      pgkit_test::query_value(db.url(), "SELECT pg_notify('closed_pipe', 'x')");
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
    }
  }};
  int status = pipeline.wait(std::chrono::seconds{60});
  done = true;
  sender.join();
  CHECK_MESSAGE(status == 0, pipeline.err());
  CHECK(pipeline.unread_out() == "closed_pipe\tx\n");
  CHECK(pipeline.err().empty());
}

TEST_CASE("pgkit: one output layer") {
  pgkit_test::scratch_database db{"cli_output"};
  auto applied = run_pgkit({"apply", "--addr", db.url(), "cache"});
  REQUIRE_MESSAGE(applied.exit_code == 0, applied.err);

  SUBCASE("every --json document has the same layout: indented by two spaces") {
    for (const auto& args :
         std::vector<std::vector<std::string>>{{"cache-gc", "--addr", db.url()},
                                               {"notify", "--addr", db.url(), "layout", "x"},
                                               {"status", "--addr", db.url()},
                                               {"__resolve", "--addr", db.url()}}) {
      auto argv = args;
      argv.push_back("--json");
      auto result = run_pgkit(argv);
      CHECK_MESSAGE(result.exit_code == 0, args.front(), ": ", result.err);
      CHECK_MESSAGE(result.out.rfind("{\n  \"", 0) == 0, args.front(), ": ", result.out);
      CHECK(result.out.back() == '\n');
    }
  }
  SUBCASE("status -q prints nothing; its exit code still answers") {
    auto quiet = run_pgkit({"status", "-q", "--addr", db.url()});
    CHECK(quiet.exit_code == 0);
    CHECK(quiet.out.empty());
    CHECK(quiet.err.empty());
    auto check = run_pgkit({"status", "-q", "--exit-code", "--addr", db.url(), "session"});
    CHECK(check.exit_code == 3);
    CHECK(check.out.empty());
  }
  SUBCASE("-v says where it connects once, password hidden") {
    auto url = pgkit_test::with_database(pgkit_test::sandbox_url(), db.name());
    auto result = run_pgkit({"cache-gc", "-v", "--addr", url});
    CHECK_MESSAGE(result.exit_code == 0, result.err);
    auto first = result.err.find("pgkit: connecting to ");
    CHECK(first != std::string::npos);
    CHECK(result.err.find("pgkit: connecting to ", first + 1) == std::string::npos);
  }
  SUBCASE("summaries of what a command did go to stderr, the same duration format everywhere") {
    auto gc = run_pgkit({"cache-gc", "--addr", db.url()});
    CHECK(gc.out.empty());
    CHECK(contains(gc.err, "deleted 0 expired cache entries in "));
    CHECK(std::regex_search(gc.err, std::regex{" in [0-9]+\\.[0-9][0-9] s\n$"}));
    auto apply = run_pgkit({"apply", "--addr", db.url(), "cache"});
    CHECK(apply.out.empty());
    CHECK(contains(apply.err, "nothing to apply"));
  }
}

TEST_CASE("pgkit: numeric options are finite, in range, rounded up to the server's unit") {
  struct refused_value {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<refused_value> refused{
      {{"session-purge", "--batch-size", "9223372036854775808"},
       "--batch-size must be a whole number from 1 to 1000000, not '9223372036854775808'"},
      {{"session-purge", "--max-seconds", "nan"},
       "--max-seconds must be a number of seconds from 0.001 to 2147483.647, not 'nan'"},
      {{"cache-gc", "--max-seconds", "inf"},
       "--max-seconds must be a number of seconds from 0.001 to 2147483.647, not 'inf'"},
      {{"cache-gc", "--batch-size", "1.5"},
       "--batch-size must be a whole number from 1 to 1000000, not '1.5'"},
      {{"apply", "--lock-timeout", "1e12", "cache"},
       "--lock-timeout must be a number of seconds from 0.001 to 2147483.647, not '1e12'"},
      {{"apply", "--lock-timeout", "nan", "cache"},
       "--lock-timeout must be a number of seconds from 0.001 to 2147483.647, not 'nan'"},
      {{"apply", "--lock-timeout", "0", "cache"},
       "--lock-timeout must be a number of seconds from 0.001 to 2147483.647, not '0'"},
      {{"apply", "--statement-timeout", "99999999999", "cache"},
       "--statement-timeout must be a number of seconds from 0 to 2147483.647, not "
       "'99999999999'"},
      {{"apply", "--lock-wait", "1e30", "cache"},
       "--lock-wait must be a number of seconds from 0 to 2147483.647, not '1e30'"},
      {{"status", "--wait", "-1"},
       "--wait must be a number of seconds from 0 to 2147483.647, not '-1'"},
      {{"rollback", "cache", "--steps", "0"},
       "--steps must be a whole number from 1 to 1000000, not '0'"},
      {{"listen", "--timeout", "1e300", "c"},
       "--timeout must be a number of seconds from 0 to 2147483.647, not '1e300'"},
      {{"listen", "--timeout", "nan", "c"},
       "--timeout must be a number of seconds from 0 to 2147483.647, not 'nan'"},
      {{"listen", "--heartbeat", "-0.5", "c"},
       "--heartbeat must be a number of seconds from 0 to 2147483.647, not '-0.5'"},
      {{"listen", "--count", "0", "c"},
       "--count must be a whole number from 1 to 1000000000, not '0'"},
      {{"cache-gc", "--max-seconds", std::string(400, '9')},
       "--max-seconds must be a number of seconds from 0.001 to 2147483.647, not "
       "'99999999999999999999999999999999...' (400 characters)"},
  };
  for (const auto& value : refused) {
    auto args = value.args;
    args.insert(args.end(), {"--addr", k_nowhere});
    auto result = run_pgkit(args);
    CHECK_MESSAGE(result.exit_code == 2, value.message, "\n", result.err);
    CHECK_MESSAGE(result.err.rfind("pgkit: error: " + value.message + "\n", 0) == 0, value.message,
                  "\n", result.err);
    CHECK(result.out.empty());
    CHECK(contains(result.err, "pgkit: hint: run 'pgkit " + value.args.front() + " --help'"));
  }

  SUBCASE("a positive --lock-timeout under 1 ms is 1 ms, not 0 (which is no timeout at all)") {
    pgkit_test::scratch_database db{"cli_lock_timeout"};
    auto dir = pgkit_test::temp_dir("pgkit-cli-lock");
    std::filesystem::create_directories(dir + "/app");
    std::ofstream{dir + "/app/20260301000000_alter.sql"}
        << "-- migrate:up\nALTER TABLE public.held ADD COLUMN extra int;\n-- migrate:down\n";
    pgkit_test::query_value(db.url(), "CREATE TABLE public.held (id int)");
    pqxx::connection holder{db.url()};
    pqxx::work hold{holder};
    hold.exec("LOCK TABLE public.held IN ACCESS EXCLUSIVE MODE");
    pgkit_test::process_options options;
    options.timeout = std::chrono::seconds{60};
    auto result = run_pgkit(
        {"apply", "--addr", db.url(), "--migrations-dir", dir, "--lock-timeout", "0.0004", "app"},
        options);
    CHECK_MESSAGE(result.exit_code == 1, result.err);
    CHECK(contains(result.err, "lock timeout"));
  }
}

TEST_CASE("pgkit: inputs that are not files, text that is not UTF-8") {
  SUBCASE("--config must name a regular file of at most 1 MiB (exit 2, nothing read forever)") {
    auto dir = pgkit_test::temp_dir("pgkit-cli-inputs");
    auto fifo = dir + "/fifo.toml";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    auto big = dir + "/big.toml";
    {
      std::ofstream file{big};
      file << "# " << std::string(1024 * 1024, 'x') << "\n";
    }
    pgkit_test::process_options options;
    options.timeout = std::chrono::seconds{30};
    options.unset_env = {"DATABASE_URL"};
    for (const auto& path : {std::string{"/dev/zero"}, fifo, dir, big}) {
      auto result = run_pgkit({"--config", path, "__resolve"}, options);
      CHECK_MESSAGE(result.exit_code == 2, path, ": ", result.err);
      CHECK_MESSAGE(result.err.rfind("pgkit: error: ", 0) == 0, path, ": ", result.err);
      CHECK_FALSE(contains(result.err, "internal error"));
    }
    auto result = run_pgkit({"--config", "/dev/zero", "__resolve"}, options);
    CHECK(contains(result.err, "not a regular file"));
    auto large = run_pgkit({"--config", big, "__resolve"}, options);
    CHECK(contains(large.err, "is larger than 1 MiB"));
  }
  SUBCASE("invalid UTF-8 in --resource-type, a channel or a payload: exit 2 before connecting") {
    for (const auto& args :
         std::vector<std::vector<std::string>>{{"cache-gc", "--resource-type", "ab\xff"},
                                               {"notify", "jobs\xc3\x28", "x"},
                                               {"notify", "jobs", "\xed\xa0\x80"},
                                               {"listen", "caf\xe9", "--timeout", "1"}}) {
      auto argv = args;
      argv.insert(argv.end(), {"--addr", k_nowhere});
      auto result = run_pgkit(argv);
      CHECK_MESSAGE(result.exit_code == 2, args.front(), ": ", result.err);
      CHECK_MESSAGE(contains(result.err, "is not valid UTF-8 (byte 0x"), args.front(), ": ",
                    result.err);
    }
    pgkit_test::process_options piped;
    piped.input = std::string{"ok\xc0\xaf"};
    auto result = run_pgkit({"notify", "--addr", k_nowhere, "jobs"}, piped);
    CHECK(result.exit_code == 2);
    CHECK(contains(result.err,
                   "pgkit: error: the payload is not valid UTF-8 (byte 0xc0 at offset "
                   "2)\n"));
  }
  SUBCASE("an endless stdin payload is refused after 8000 bytes, not read to its end") {
    std::vector<std::string> argv{"sh",
                                  "-c",
                                  "exec \"$0\" \"$@\" </dev/zero",
                                  pgkit_test::pgkit_binary(),
                                  "notify",
                                  "--addr",
                                  k_nowhere,
                                  "jobs"};
    pgkit_test::process_options options;
    options.timeout = std::chrono::seconds{30};
    auto result = run_process(argv, options);
    CHECK(result.exit_code == 2);
    CHECK(contains(result.err, "8000 bytes or more"));
  }
  SUBCASE("a stdin that cannot be read (a directory) is an error, not an empty payload") {
    std::vector<std::string> argv{
        "sh",      "-c",  "exec \"$0\" \"$@\" </", pgkit_test::pgkit_binary(), "notify", "--addr",
        k_nowhere, "jobs"};
    auto result = run_process(argv);
    CHECK(result.exit_code == 2);
    CHECK(contains(result.err, "pgkit: error: cannot read the payload from standard input: "));
  }
}
