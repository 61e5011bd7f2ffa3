// `pgkit queue ...` and `pgkit queue-prune` end to end: enqueue (argument, stdin, options,
// unique key), stats as text and JSON, work --exec with payloads on stdin and exit codes as
// outcomes, --concurrency and --until-empty, retry and cancel, prune, and bad input.

#include <doctest/doctest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "harness.hpp"

using pgkit_test::query_value;
using pgkit_test::run_pgkit;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

struct queue_database {
  queue_database() : db{"queue_cli"}, addr{"--addr=" + db.url()} {
    auto applied = run_pgkit({"apply", addr, "queue"});
    REQUIRE_MESSAGE(applied.exit_code == 0, applied.err);
  }
  std::string sql(const std::string& statement) const { return query_value(db.url(), statement); }
  pgkit_test::scratch_database db;
  std::string addr;
};

std::string enqueue(const queue_database& fx, std::vector<std::string> args,
                    const pgkit_test::process_options& options = {}) {
  args.insert(args.begin(), {"queue", "enqueue", fx.addr});
  auto result = run_pgkit(args, options);
  REQUIRE_MESSAGE(result.exit_code == 0, result.err);
  REQUIRE(!result.out.empty());
  return result.out.substr(0, result.out.size() - 1);
}

}  // namespace

TEST_CASE("pgkit queue") {
  queue_database fx;

  SUBCASE("enqueue prints the id; work --exec gets each payload on stdin") {
    auto first = enqueue(fx, {"mail", "hello"});
    pgkit_test::process_options stdin_payload;
    stdin_payload.input = std::string{"from\nstdin"};
    auto second = enqueue(fx, {"mail", "--priority", "-1"}, stdin_payload);
    CHECK(std::stoll(second) > std::stoll(first));
    CHECK(fx.sql("SELECT convert_from(payload, 'UTF8') FROM pgkit.queue_job WHERE id = " +
                 second) == "from\nstdin");
    auto out_file = pgkit_test::temp_dir("pgkit-queue") + "/out";
    auto result =
        run_pgkit({"queue", "work", fx.addr, "mail", "--until-empty", "--exec", "sh", "-c",
                   "cat >> " + out_file + "; echo \" $PGKIT_JOB_ID\" >> " + out_file});
    CHECK_MESSAGE(result.exit_code == 0, result.err);
    CHECK(contains(result.err, "ran 2 jobs of queue mail (0 failed)"));
    // Priority -1 first.
    CHECK(pgkit_test::read_file(out_file) == "from\nstdin " + second + "\nhello " + first + "\n");
    CHECK(fx.sql("SELECT count(*) FROM pgkit.queue_job WHERE state = 'completed'") == "2");
  }

  SUBCASE("a failing command fails the attempt; --max-attempts 1 discards; retry --all-discarded") {
    auto id = enqueue(fx, {"jobs", "x", "--max-attempts", "1"});
    auto result = run_pgkit({"queue", "work", fx.addr, "jobs", "--until-empty", "--concurrency",
                             "2", "--exec", "sh", "-c", "exit 7"});
    CHECK_MESSAGE(result.exit_code == 0, result.err);
    CHECK(contains(result.err, "job " + id + " failed: 'sh -c exit 7' exited with status 7"));
    CHECK(contains(result.err, "ran 1 job of queue jobs (1 failed)"));
    CHECK(fx.sql("SELECT state || ' ' || (errors -> 0 ->> 'error') FROM pgkit.queue_job") ==
          "discarded 'sh -c exit 7' exited with status 7");
    auto stats = run_pgkit({"queue", "stats", fx.addr, "--json"});
    REQUIRE(stats.exit_code == 0);
    auto document = nlohmann::json::parse(stats.out);
    CHECK(document["queues"]["jobs"]["discarded"] == 1);
    CHECK(document["queues"]["jobs"]["available"] == 0);
    auto retried = run_pgkit({"queue", "retry", fx.addr, "--all-discarded", "jobs"});
    CHECK(retried.exit_code == 0);
    CHECK(contains(retried.err, "retried 1 discarded job of queue jobs"));
    CHECK(fx.sql("SELECT state FROM pgkit.queue_job") == "available");
    // Retrying an available job changes nothing: exit 3, saying why.
    auto again = run_pgkit({"queue", "retry", fx.addr, id});
    CHECK(again.exit_code == 3);
    CHECK(contains(again.err, "job " + id + " is available, not discarded or cancelled"));
  }

  SUBCASE("unique key, delay, cancel, stats text") {
    auto first = enqueue(fx, {"reports", "r", "--unique-key", "daily", "--delay", "3600"});
    CHECK(enqueue(fx, {"reports", "r", "--unique-key", "daily"}) == first);
    CHECK(fx.sql("SELECT run_at > now() + interval '59 minutes' FROM pgkit.queue_job") == "t");
    auto stats = run_pgkit({"queue", "stats", fx.addr});
    CHECK(stats.exit_code == 0);
    CHECK(contains(stats.out, "QUEUE"));
    CHECK(contains(stats.out, "reports"));
    CHECK(run_pgkit({"queue", "cancel", fx.addr, first}).exit_code == 0);
    auto twice = run_pgkit({"queue", "cancel", fx.addr, first});
    CHECK(twice.exit_code == 3);
    CHECK(contains(twice.err, "is cancelled already"));
    CHECK(run_pgkit({"queue", "cancel", fx.addr, "999999"}).exit_code == 3);
  }

  SUBCASE("--run-at takes a time with a zone") {
    auto id = enqueue(fx, {"later", "x", "--run-at", "2030-01-02T03:04:05.5+01:00"});
    CHECK(fx.sql("SELECT run_at = '2030-01-02 02:04:05.5+00' FROM pgkit.queue_job") == "t");
    auto bad = run_pgkit({"queue", "enqueue", fx.addr, "later", "x", "--run-at", "tomorrow"});
    CHECK(bad.exit_code == 2);
    CHECK(contains(bad.err, "--run-at 'tomorrow' is not a time with a zone"));
    CHECK(fx.sql("SELECT count(*) FROM pgkit.queue_job") == "1");
    (void)id;
  }

  SUBCASE("queue-prune deletes finished jobs past the retention") {
    enqueue(fx, {"p", "x"});
    enqueue(fx, {"p", "y"});
    fx.sql(
        "UPDATE pgkit.queue_job SET state = 'completed', finished_at = now() - interval '8 days' "
        "WHERE id = (SELECT min(id) FROM pgkit.queue_job)");
    auto dry = run_pgkit({"queue-prune", fx.addr, "--dry-run"});
    CHECK(dry.exit_code == 0);
    CHECK(contains(dry.err, "would delete 1 finished job (dry run)"));
    auto pruned = run_pgkit({"queue-prune", fx.addr, "--json"});
    CHECK(pruned.exit_code == 0);
    CHECK(nlohmann::json::parse(pruned.out)["deleted"] == 1);
    CHECK(fx.sql("SELECT count(*) FROM pgkit.queue_job") == "1");
  }

  SUBCASE("bad input: exit 2 and nothing changed") {
    CHECK(run_pgkit({"queue", "enqueue", fx.addr, "q", "x", "--max-attempts", "0"}).exit_code == 2);
    CHECK(run_pgkit({"queue", "enqueue", fx.addr, "q", "x", "--priority", "1.5"}).exit_code == 2);
    auto no_exec = run_pgkit({"queue", "work", fx.addr, "q", "--until-empty"});
    CHECK(no_exec.exit_code == 2);
    CHECK(contains(no_exec.err, "queue work needs --exec CMD"));
    CHECK(run_pgkit({"queue", "retry", fx.addr}).exit_code == 2);
    CHECK(fx.sql("SELECT count(*) FROM pgkit.queue_job") == "0");
  }
}

TEST_CASE("pgkit queue without the module") {
  pgkit_test::scratch_database db{"queue_cli_missing"};
  auto result = run_pgkit({"queue", "stats", "--addr=" + db.url()});
  CHECK(result.exit_code == 1);
  CHECK(contains(result.err, "hint: run pgkit apply queue"));
}
