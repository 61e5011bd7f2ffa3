// The wire layer's promises, each a defect an outside probe found in the seams between the
// statement paths it replaced: an aborted transaction never looks committed, a stopped DML
// statement says it ran, every wait honours its deadline (a SIGSTOPped backend), a NUL byte is
// refused before anything is sent, 08P01 is not a lost connection, a triggered interrupt stops
// a statement before it is sent, a busy connection is the caller's mistake.

#include <doctest/doctest.h>

#include <signal.h>

#include <chrono>
#include <memory>
#include <string>

#include "child_process.hpp"
#include "harness.hpp"
#include "pgkit/config.hpp"
#include "pgkit/connection.hpp"
#include "pgkit/error.hpp"
#include "pgkit/pool.hpp"
#include "pgkit/query.hpp"
#include "pgkit/transaction.hpp"
#include "wire/wire.hpp"

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

// The first field of the first row of `sql`.
std::string value_of(pqxx::connection& conn, const std::string& sql) {
  std::string value;
  pgkit::stream_query(conn, sql, {}, {}, [&](const pgkit::row_view& row) {
    value = std::string{row.get(0).value_or("NULL")};
    return pgkit::row_action::stop;
  });
  return value;
}

pgkit::row_action stop_at_once(const pgkit::row_view&) {
  return pgkit::row_action::stop;
}

}  // namespace

TEST_CASE("an aborted transaction is never reported as committed") {
  pgkit_test::scratch_database db{"wire_abort"};
  auto conn = pgkit::connect(db.url());
  pgkit::execute_no_data(*conn, "CREATE TABLE kept (n int)");

  SUBCASE("stream_query stopped inside a transaction throws a later row's error") {
    {
      pqxx::work tx{*conn};
      pgkit::execute_no_data(tx, "INSERT INTO kept VALUES (1)");
      auto e = pgkit_test::expect_error([&] {
        pgkit::stream_query(tx, "SELECT 1 / (g - 5000) FROM generate_series(1, 10000) g", {}, {},
                            stop_at_once);
      });
      CHECK(e.sqlstate() == "22012");
      CHECK(std::string{e.what()}.find("the transaction is aborted") != std::string::npos);
    }
    CHECK(value_of(*conn, "SELECT count(*) FROM kept") == "0");
  }

  SUBCASE("run_transaction whose body caught a toolkit error commits nothing") {
    auto pool = std::make_shared<pgkit::pool>(pgkit::config_from_url(db.url(), "test"));
    auto e = pgkit_test::expect_error([&] {
      pgkit::run_transaction(*pool, [&](pqxx::work& tx) {
        pgkit::execute_no_data(tx, "INSERT INTO kept VALUES (2)");
        try {
          pgkit::execute_no_data(tx, "SELECT 1 / 0");
        } catch (const pgkit::error&) {
          // The body goes on as if nothing happened.
        }
      });
    });
    CHECK(e.sqlstate() == "25P02");
    CHECK(value_of(*conn, "SELECT count(*) FROM kept") == "0");
  }

  SUBCASE("a libpqxx failure inside with_savepoint: nothing runs outside the transaction") {
    auto pool = std::make_shared<pgkit::pool>(pgkit::config_from_url(db.url(), "test"));
    bool savepoint_failed = false;
    try {
      pgkit::run_transaction(*pool, [&](pqxx::work& tx) {
        pgkit::execute_no_data(tx, "INSERT INTO kept VALUES (3)");
        try {
          pgkit::with_savepoint(tx, [](pqxx::transaction_base& inner) {
            inner.exec("INSERT INTO kept VALUES (1 / 0)");
          });
        } catch (const pgkit::error& e) {
          savepoint_failed = true;
          CHECK(e.sqlstate() == "22012");
        }
        pgkit::execute_no_data(tx, "INSERT INTO kept VALUES (4)");
      });
    } catch (const pgkit::error&) {
      // Whatever the kind, it is a pgkit error (never a libpqxx exception).
    }
    CHECK(savepoint_failed);
    // libpqxx 7 keeps the transaction after a failed statement, so the savepoint saves it and
    // both rows commit together; libpqxx 6.4 rolls the whole transaction back, so neither may
    // (the bug was the second row running, and committing, outside the transaction).
    const auto kept = value_of(*conn, "SELECT string_agg(n::text, ',' ORDER BY n) FROM kept");
    CHECK((kept == "NULL" || kept == "3,4"));
  }
}

TEST_CASE("stopping a statement that changes rows") {
  pgkit_test::scratch_database db{"wire_dml"};
  auto conn = pgkit::connect(db.url());
  pgkit::execute_no_data(*conn,
                         "CREATE TABLE doomed AS SELECT g AS n FROM generate_series(1, 1000) g");

  SUBCASE("a DELETE ... RETURNING stopped after one row reports that it completed") {
    auto result =
        pgkit::stream_query(*conn, "DELETE FROM doomed RETURNING n", {}, {}, stop_at_once);
    CHECK(result.rows == 1);
    CHECK(result.stopped);
    CHECK(result.completed);
    CHECK(result.command_tag == "DELETE 1000");
    CHECK(value_of(*conn, "SELECT count(*) FROM doomed") == "0");
  }
  SUBCASE("a long SELECT stopped early is canceled: not completed") {
    auto result =
        pgkit::stream_query(*conn, "SELECT generate_series(1, 50000000)", {}, {}, stop_at_once);
    CHECK(result.stopped);
    CHECK_FALSE(result.completed);
    CHECK(result.command_tag.empty());
    CHECK(value_of(*conn, "SELECT 1") == "1");
  }
  SUBCASE("a statement run to its end says so") {
    auto result =
        pgkit::stream_query(*conn, "SELECT n FROM doomed", {}, {},
                            [](const pgkit::row_view&) { return pgkit::row_action::next; });
    CHECK(result.completed);
    CHECK(result.command_tag == "SELECT 1000");
  }
}

TEST_CASE("every wait honours its deadline against a SIGSTOPped backend") {
  pgkit_test::own_sandbox server;
  pgkit::query_options options;
  options.timeout = 500ms;
  options.cancel_grace = 300ms;

  auto frozen = [&](pqxx::connection& conn) {
    return pgkit_test::resume_on_exit{std::stoi(value_of(conn, "SELECT pg_backend_pid()"))};
  };

  SUBCASE("the rest of a stopped stream inside a transaction") {
    auto conn = pgkit::connect(server.url());
    pgkit_test::resume_on_exit resume = frozen(*conn);
    pqxx::work tx{*conn};
    auto started = steady::now();
    auto e = pgkit_test::expect_error([&] {
      pgkit::stream_query(
          tx, "SELECT generate_series(1, 20000000), repeat('x', 500)", {}, {},
          [&](const pgkit::row_view&) {
            ::kill(resume.pid, SIGSTOP);
            return pgkit::row_action::stop;
          },
          options);
    });
    INFO(std::string{e.what()});
    CHECK(e.kind() == pgkit::error_kind::canceled);
    CHECK(steady::now() - started < 15s);
    CHECK(pgkit::status(*conn) == pgkit::connection_state::failed);
  }

  SUBCASE("copy_in, copy_in_raw and copy_out take query_options") {
    for (const char* call : {"copy_in", "copy_in_raw", "copy_out", "copy_in rows"}) {
      CAPTURE(call);
      auto conn = pgkit::connect(server.url());
      pgkit::execute_no_data(*conn, "CREATE TABLE IF NOT EXISTS sink (line text)");
      pgkit_test::resume_on_exit resume = frozen(*conn);
      const std::string_view which{call};
      std::unique_ptr<pgkit::copy_in> rows;
      if (which == "copy_in rows")
        rows = std::make_unique<pgkit::copy_in>(*conn, "sink", std::vector<std::string>{"line"}, "",
                                                options);
      REQUIRE(::kill(resume.pid, SIGSTOP) == 0);
      auto started = steady::now();
      auto e = pgkit_test::expect_error([&] {
        if (which == "copy_in") {
          pgkit::copy_in copy{*conn, "sink", {"line"}, "", options};
          copy.finish();
        } else if (which == "copy_in_raw") {
          pgkit::copy_in_raw copy{*conn, "COPY sink FROM STDIN", options};
          copy.finish();
        } else if (which == "copy_out") {
          pgkit::copy_out(
              *conn, "COPY sink TO STDOUT", [](std::string_view) {}, options);
        } else {
          // Enough data to fill the socket's buffers: the write itself must give up in time.
          const std::string line(1000, 'x');
          for (int i = 0; i < 200000; ++i)
            rows->write_row({line});
          rows->finish();
        }
      });
      CHECK(e.kind() == pgkit::error_kind::canceled);
      CHECK(steady::now() - started < 15s);
      CHECK(pgkit::status(*conn) == pgkit::connection_state::failed);
      rows.reset();
    }
  }

  SUBCASE("the pool's validation ping of a frozen idle connection") {
    auto config = pgkit::config_from_url(server.url(), "test");
    config.pool_size = 1;
    config.validate_after_idle = 0ms;
    pgkit::pool pool{config};
    int pid = 0;
    {
      auto lease = pool.acquire();
      pid = std::stoi(value_of(lease.connection(), "SELECT pg_backend_pid()"));
    }
    pgkit_test::resume_on_exit resume{pid};
    REQUIRE(::kill(pid, SIGSTOP) == 0);
    auto started = steady::now();
    auto lease = pool.acquire(500ms);
    CHECK(steady::now() - started < 10s);
    // The frozen connection was replaced by a working one.
    CHECK(value_of(lease.connection(), "SELECT pg_backend_pid()") != std::to_string(pid));
  }
}

TEST_CASE("what the wire refuses before anything is sent") {
  pgkit_test::scratch_database db{"wire_refuse"};
  auto conn = pgkit::connect(db.url());
  pgkit::execute_no_data(*conn, "CREATE TABLE kept (n int, label text)");

  SUBCASE("a NUL byte in a text parameter or a statement is a usage error") {
    const std::string with_nul{"a\0b", 3};
    CHECK(pgkit_test::expect_error([&] {
            pgkit::execute_no_data(*conn, "INSERT INTO kept VALUES (1, $1)", {with_nul});
          }).kind() == pgkit::error_kind::usage);
    CHECK(pgkit_test::expect_error([&] {
            pgkit::stream_query(*conn, "SELECT $1::text", {with_nul}, {}, stop_at_once);
          }).kind() == pgkit::error_kind::usage);
    CHECK(pgkit_test::expect_error([&] {
            pgkit::execute_no_data(*conn, "INSERT INTO kept VALUES (2, 'x')" + with_nul);
          }).kind() == pgkit::error_kind::usage);
    {
      pgkit::copy_in copy{*conn, "kept", {"n", "label"}};
      CHECK(pgkit_test::expect_error([&] {
              copy.write_row({std::string{"3"}, with_nul});
            }).kind() == pgkit::error_kind::usage);
      copy.write_row({std::string{"4"}, std::string{"fine"}});
      CHECK(copy.finish() == 1);
    }
    CHECK(value_of(*conn, "SELECT string_agg(n::text, ',') FROM kept") == "4");
  }

  SUBCASE("a wrong number of parameters (08P01) is not a lost connection") {
    auto e = pgkit_test::expect_error(
        [&] { pgkit::execute_no_data(*conn, "SELECT $1::int, $2::int", {std::string{"1"}}); });
    CHECK(e.sqlstate() == "08P01");
    CHECK(e.kind() == pgkit::error_kind::usage);
    CHECK(pgkit::status(*conn) == pgkit::connection_state::open);
    CHECK(value_of(*conn, "SELECT 1") == "1");
  }

  SUBCASE("an interrupt triggered before the call stops the statement before it is sent") {
    pgkit::interrupt stop;
    stop.trigger();
    pgkit::query_options options;
    options.stop = &stop;
    CHECK(pgkit_test::expect_error([&] {
            pgkit::execute_no_data(*conn, "INSERT INTO kept VALUES (9, 'sent')", {}, options);
          }).kind() == pgkit::error_kind::canceled);
    CHECK(value_of(*conn, "SELECT count(*) FROM kept") == "0");
  }

  SUBCASE("a statement on a busy connection is the caller's mistake") {
    auto inside_callback = pgkit_test::expect_error([&] {
      pgkit::stream_query(*conn, "SELECT g FROM generate_series(1, 10) g", {}, {},
                          [&](const pgkit::row_view&) {
                            pgkit::execute_no_data(*conn, "SELECT 1");
                            return pgkit::row_action::next;
                          });
    });
    CHECK(inside_callback.kind() == pgkit::error_kind::usage);
    {
      pgkit::copy_in copy{*conn, "kept", {"n", "label"}};
      CHECK(pgkit_test::expect_error([&] { pgkit::execute_no_data(*conn, "SELECT 1"); }).kind() ==
            pgkit::error_kind::usage);
    }
    CHECK(value_of(*conn, "SELECT 1") == "1");
  }
}

TEST_CASE("a script's answer is its last statement's, and its first failure is thrown") {
  pgkit_test::scratch_database db{"wire_script"};
  auto conn = pgkit::connect(db.url());
  const auto on = pgkit::detail::wire::of(*conn);
  // It returned the first statement's result before (the migration engine reads the last).
  CHECK(on.script("SELECT 'first'; SELECT 'second'; SELECT 'last'", "a script").bytes(0, 0) ==
        "last");
  auto e = pgkit_test::expect_error(
      [&] { on.script("SELECT 1; SELECT 1 / 0; SELECT 'after'", "a failing script"); });
  CHECK(e.sqlstate() == "22012");
  CHECK(value_of(*conn, "SELECT 'usable'") == "usable");
}

TEST_CASE("a store statement planned each time is never prepared on the connection") {
  pgkit_test::scratch_database db{"wire_planning"};
  auto conn = pgkit::connect(db.url());
  pgkit::detail::prepared_statements prepared;
  const pgkit::detail::wire on{pgkit::detail::wire::of(*conn).handle(), &prepared};
  const pgkit::detail::statement_text cached_text{"cached", "SELECT $1::int + 1"};
  const pgkit::detail::statement_text each_time_text{"each_time", "SELECT $1::int + 2",
                                                     pgkit::detail::planning::each_time};
  const auto cached = pgkit::detail::make_statement("test", cached_text, "public");
  const auto each_time = pgkit::detail::make_statement("test", each_time_text, "public");
  for (int run = 0; run < 2; ++run) {
    CHECK(
        on.run(cached, {pgkit::detail::int_param(1)}, pgkit::detail::result_format::text, "cached")
            .bytes(0, 0) == "2");
    CHECK(on.run(each_time, {pgkit::detail::int_param(1)}, pgkit::detail::result_format::text,
                 "each time")
              .bytes(0, 0) == "3");
  }
  const auto count_prepared = [&](const std::string& name) {
    return on
        .run("SELECT count(*) FROM pg_prepared_statements WHERE name = $1", {name},
             pgkit::detail::result_format::text, "counting")
        .bytes(0, 0);
  };
  CHECK(count_prepared(cached.name) == "1");
  CHECK(count_prepared(each_time.name) == "0");
  CHECK(prepared.count(each_time.name) == 0);
}
