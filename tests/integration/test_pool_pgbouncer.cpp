// The pool's statements through a real PgBouncer in transaction pooling mode. The test starts
// its own PgBouncer (Debian's `pgbouncer`) on a free loopback port, in front of the sandbox
// server, and stops it at the end.

#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "pgbouncer.hpp"
#include "pgkit/connection.hpp"
#include "pgkit/error.hpp"
#include "pgkit/pool.hpp"
#include "pgkit/query.hpp"
#include "pgkit/transaction.hpp"
#include "stores/statements.hpp"

using namespace std::chrono_literals;

TEST_CASE("pgkit::pool through PgBouncer in transaction mode") {
  pgkit_test::scratch_database db{"pgbouncer"};
  pgkit_test::query_value(db.url(), "CREATE TABLE item (id int PRIMARY KEY, label text)");
  pgkit_test::pgbouncer bouncer{pgkit_test::port_of(pgkit_test::sandbox_url())};

  auto config = pgkit::config_from_url(bouncer.url(db.name()), "test");
  config.pool_size = 4;
  config.pooler = pgkit::pooler_mode::pgbouncer_transaction;
  auto pool = pgkit::start(config);

  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        try {
          auto lease = pool->acquire(30s);
          int id = t * 1000 + i;
          pgkit::run_transaction(lease, [&](pqxx::work& tx) {
            // The stores' path: named statements, sent unnamed in transaction mode.
            const pgkit::detail::wire on{pgkit::detail::libpq_handle(tx),
                                         pgkit::detail::prepared_on(lease),
                                         pgkit::detail::wire::scope::transaction};
            on.run({"pgkit_item_put", "INSERT INTO item VALUES ($1, $2)"},
                   {pgkit::detail::int_param(id),
                    pgkit::detail::text_param("item " + std::to_string(id))},
                   pgkit::detail::result_format::text, "putting an item");
            auto label = on.run({"pgkit_item_get", "SELECT label FROM item WHERE id = $1"},
                                {pgkit::detail::int_param(id)}, pgkit::detail::result_format::text,
                                "getting an item");
            if (label.bytes(0, 0) != "item " + std::to_string(id))
              ++errors;
          });
        } catch (const std::exception& e) {
          if (errors++ < 3)
            MESSAGE("through pgbouncer: " << e.what());
        }
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  CHECK(errors == 0);
  CHECK(pgkit_test::query_value(db.url(), "SELECT count(*) FROM item") == "200");
  CHECK(pool->stats().destroyed() == 0);
  pool->close();
}

TEST_CASE("the query toolkit through PgBouncer in transaction mode") {
  pgkit_test::scratch_database db{"pgbouncer_query"};
  pgkit_test::query_value(db.url(), "CREATE TABLE item (id int PRIMARY KEY, label text)");
  pgkit_test::pgbouncer bouncer{pgkit_test::port_of(pgkit_test::sandbox_url())};
  auto conn = pgkit::connect(bouncer.url(db.name()));
  // Unnamed statements only: each may run on another server connection.
  for (int i = 0; i < 20; ++i) {
    pgkit::execute_no_data(*conn, "INSERT INTO item VALUES ($1, $2)",
                           {std::to_string(i), "item " + std::to_string(i)});
  }
  pgkit::copy_in copy{*conn, "item", {"id", "label"}};
  copy.write_row({"100", "copied"});
  CHECK(copy.finish() == 1);
  std::uint64_t total = 0;
  auto outcome = pgkit::stream_query(*conn, "SELECT id FROM item WHERE id >= $1", {"0"}, {},
                                     [&](const pgkit::row_view& row) {
                                       total += std::stoull(std::string{*row.get(0)});
                                       return pgkit::row_action::next;
                                     });
  CHECK(outcome.rows == 21);
  CHECK(total == 190 + 100);
  pqxx::work tx{*conn};
  CHECK_THROWS_AS(pgkit::with_savepoint(tx,
                                        [](pqxx::transaction_base& inner) {
                                          pgkit::execute_no_data(
                                              inner, "INSERT INTO item VALUES (1, 'again')");
                                        }),
                  pgkit::error);
  CHECK(pgkit::execute_no_data(tx, "UPDATE item SET label = 'x' WHERE id = 1") == 1);
  tx.commit();
  CHECK(pgkit_test::query_value(db.url(), "SELECT label FROM item WHERE id = 1") == "x");
}
