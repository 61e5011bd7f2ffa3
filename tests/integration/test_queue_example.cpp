// docs/queue.md's example compiles, runs against the sandbox, and says what to do when the queue
// module is missing.

#include <doctest/doctest.h>

#include <pqxx/pqxx>

#include "harness.hpp"
#include "pgkit/migration.hpp"

TEST_CASE("docs/queue.md example: pgkit::queue_store and queue_worker") {
  pgkit_test::scratch_database db{"queue_example"};
  auto options = pgkit_test::in_app_dir(db.url());

  SUBCASE("enqueues in a transaction, keeps one unique job and runs both") {
    pqxx::connection connection{db.url()};
    pgkit::apply_modules(connection, {"queue"});
    auto result = pgkit_test::run_process({PGKIT_EXAMPLE_QUEUE}, options);
    CHECK(result.err == "");
    CHECK(result.exit_code == 0);
    CHECK(result.out ==
          "one report job\n"
          "mail {\"to\": \"ada@example.com\", \"template\": \"welcome\"}\n"
          "report 2026-12-06\n"
          "ran 2 jobs\n"
          "thumbnail img-1\n"
          "thumbnail img-2\n"
          "mail completed 1\n"
          "reports completed 1\n"
          "thumbnails completed 2\n");
  }
  SUBCASE("without the queue module it says what to apply") {
    auto result = pgkit_test::run_process({PGKIT_EXAMPLE_QUEUE}, options);
    CHECK(result.exit_code == 1);
    CHECK(result.err.find("app: hint: run pgkit apply queue\n") != std::string::npos);
  }
}
