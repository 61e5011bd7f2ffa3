#include <chrono>
#include <iostream>

#include <pgkit/pgkit.hpp>

int main(int argc, char** argv) {
  try {
    auto conn = pgkit::connect(argc > 1 ? argv[1] : "");
    pgkit::execute_no_data(*conn, "CREATE TEMP TABLE note (id int PRIMARY KEY, body text)");

    // COPY FROM STDIN from rows: tabs, newlines and backslashes are escaped, NULL is \N.
    pgkit::copy_in copy{*conn, "note", {"id", "body"}};
    copy.write_row({"1", "first\tline"});
    copy.write_row({"2", std::nullopt});
    std::cout << "copied " << copy.finish() << " rows\n";

    // Rows stream to a callback, one at a time, columns first.
    pgkit::stream_query(
        *conn, "SELECT id, body FROM note WHERE id >= $1 ORDER BY id", {"1"},
        [](const std::vector<pgkit::column_info>& columns) {
          std::cout << columns.size() << " columns, the first is " << columns[0].name << '\n';
        },
        [](const pgkit::row_view& row) {
          std::cout << *row.get(0) << ": " << row.get(1).value_or("(null)") << '\n';
          return pgkit::row_action::next;
        });

    // Savepoints nest; an error inside rolls back to the savepoint and arrives as its kind.
    pqxx::work tx{*conn};
    try {
      pgkit::with_savepoint(tx, [](pqxx::transaction_base& inner) {
        pgkit::execute_no_data(inner, "INSERT INTO note VALUES (1, 'again')");
      });
    } catch (const pgkit::error& e) {
      std::cout << "savepoint: " << pgkit::to_string(e.kind()) << '\n';
    }
    std::cout << "inserted " << pgkit::execute_no_data(tx, "INSERT INTO note VALUES (3, 'x')")
              << " row\n";
    tx.commit();

    // A client-side deadline: the server is asked to cancel, kind canceled.
    pgkit::query_options options;
    options.timeout = std::chrono::milliseconds{100};
    try {
      pgkit::execute_no_data(*conn, "DO $$ BEGIN PERFORM pg_sleep(10); END $$", {}, options);
    } catch (const pgkit::error& e) {
      std::cout << "deadline: " << pgkit::to_string(e.kind()) << '\n';
    }
    std::cout << (pgkit::status(*conn) == pgkit::connection_state::open ? "open" : "not open")
              << '\n';
    pgkit::close(*conn);
  } catch (const pgkit::error& e) {
    std::cerr << "app: " << e.what() << '\n';
    return 1;
  }
}
