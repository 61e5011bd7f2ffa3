#include <doctest/doctest.h>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/pqxx_compat.hpp"
#include "harness.hpp"
#include "pgkit/connection.hpp"
#include "pgkit/error.hpp"
#include "pgkit/listener.hpp"
#include "pgkit/pool.hpp"

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Runs `sql` and returns the pgkit::error it turns into.
pgkit::error error_of(pqxx::connection& connection, const std::string& sql) {
  try {
    pqxx::work tx{connection};
    tx.exec(sql);
    tx.commit();
  } catch (...) {
    try {
      pgkit::detail::rethrow_as_pgkit("running the test statement");
    } catch (const pgkit::error& e) {
      return e;
    }
  }
  FAIL("the statement did not fail: " << sql);
  return pgkit::error{pgkit::error_kind::internal, "unreachable"};
}

}  // namespace

TEST_CASE("pgkit::connect") {
  pgkit_test::scratch_database db{"connect"};

  SUBCASE("opens a connection to the scratch database") {
    auto connection = pgkit::connect(db.url());
    pqxx::nontransaction tx{*connection};
    CHECK(tx.exec("SELECT current_database()")[0][0].as<std::string>() == db.name());
  }
  SUBCASE("a refused connection names the redacted address and what to do") {
    try {
      pgkit::connect("postgresql://app:topsecret@127.0.0.1:1/app?connect_timeout=2");
      FAIL("connect succeeded on port 1");
    } catch (const pgkit::error& e) {
      std::string message = e.what();
      CHECK(e.kind() == pgkit::error_kind::connection);
      CHECK(message.find("postgresql://app:***@127.0.0.1:1/app") != std::string::npos);
      CHECK(message.find("topsecret") == std::string::npos);
      CHECK(message.find("refused") != std::string::npos);
      CHECK(e.hint().find("server is running") != std::string::npos);
    }
  }
  SUBCASE("a wrong password in a conninfo string stays hidden") {
    try {
      pgkit::connect("host=127.0.0.1 port=1 password=topsecret connect_timeout=2");
      FAIL("connect succeeded on port 1");
    } catch (const pgkit::error& e) {
      CHECK(std::string{e.what()}.find("topsecret") == std::string::npos);
      CHECK(std::string{e.what()}.find("postgresql://:***@127.0.0.1:1") != std::string::npos);
    }
  }
}

TEST_CASE("glimr seeds: start and connect failures carry their hints") {
  SUBCASE("glimr: a missing database gets its own hint, from pgkit::start and the listener") {
    pgkit_test::scratch_database db{"glimr_missing"};
    // The scratch database's address with a database name the server does not have.
    auto url = db.url();
    url.replace(url.rfind(db.name()), db.name().size(), db.name() + "_nowhere");
    auto hint_of = [](const auto& attempt) {
      try {
        attempt();
      } catch (const pgkit::error& e) {
        CHECK(e.kind() == pgkit::error_kind::connection);
        return e.hint();
      }
      FAIL("connected to a database that does not exist");
      return std::string{};
    };
    for (const auto& hint :
         {hint_of([&] { pgkit::connect(url); }),
          hint_of([&] { pgkit::start(pgkit::config_from_url(url, "glimr")); }),
          hint_of([&] { pgkit::listener{pgkit::config_from_url(url, "glimr").conninfo()}; })}) {
      CHECK(hint.find("no database of that name") != std::string::npos);
      CHECK(hint.find("createdb") != std::string::npos);
      CHECK(hint.find("server is running") == std::string::npos);
    }
  }
}

TEST_CASE("pgkit::detail::rethrow_as_pgkit") {
  pgkit_test::scratch_database db{"errors"};
  auto connection = pgkit::connect(db.url());
  {
    pqxx::work tx{*connection};
    tx.exec("CREATE TABLE parent (id int PRIMARY KEY, n int CHECK (n > 0))");
    tx.exec("CREATE TABLE child (parent_id int REFERENCES parent (id))");
    tx.exec("INSERT INTO parent VALUES (1, 1)");
    tx.commit();
  }

  SUBCASE("server errors keep their SQLSTATE, kind and statement") {
    auto unique = error_of(*connection, "INSERT INTO parent VALUES (1, 1)");
    CHECK(unique.kind() == pgkit::error_kind::unique_violation);
    CHECK(unique.sqlstate() == "23505");
    CHECK(std::string{unique.what()}.rfind("running the test statement: ", 0) == 0);
    CHECK(error_of(*connection, "INSERT INTO child VALUES (2)").kind() ==
          pgkit::error_kind::foreign_key_violation);
    CHECK(error_of(*connection, "INSERT INTO parent VALUES (2, 0)").kind() ==
          pgkit::error_kind::check_violation);
    CHECK(error_of(*connection, "SELECT * FROM missing_table").kind() ==
          pgkit::error_kind::undefined_object);
    CHECK(error_of(*connection, "SET LOCAL statement_timeout = 50; SELECT pg_sleep(2)").kind() ==
          pgkit::error_kind::canceled);
  }
  SUBCASE("a backend terminated under the caller is a lost connection") {
    auto victim = pgkit::connect(db.url());
    auto pid = victim->backendpid();
    {
      pqxx::nontransaction tx{*connection};
      tx.exec("SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
    }
    auto lost = error_of(*victim, "SELECT 1");
    CHECK(lost.kind() == pgkit::error_kind::connection_lost);
    CHECK(contains(lost.what(), "terminating connection due to administrator command"));
    CHECK(contains(lost.hint(), "pg_terminate_backend"));
  }
  SUBCASE("a statement cut off by pg_terminate_backend carries the server's reason") {
    auto victim = pgkit::connect(db.url());
    auto pid = std::to_string(victim->backendpid());
    std::thread terminator{[&] {
      pgkit_test::eventually([&] {
        return pgkit_test::query_value(
                   db.url(), "SELECT state FROM pg_stat_activity WHERE pid = " + pid) == "active";
      });
      pgkit_test::query_value(db.url(), "SELECT pg_terminate_backend(" + pid + ")");
    }};
    auto lost = error_of(*victim, "SELECT pg_sleep(60)");
    terminator.join();
    CHECK(lost.kind() == pgkit::error_kind::connection_lost);
    CHECK(std::string{lost.what()} ==
          "running the test statement: the server ended the session: terminating connection due "
          "to administrator command");
    CHECK(contains(lost.hint(), "run it again"));
  }
}

TEST_CASE("several servers: the first that answers is used") {
  pgkit_test::scratch_database db{"multi_host"};
  // The sandbox's URL is postgresql://postgres@127.0.0.1:PORT/NAME; port 1 is closed.
  auto at = db.url().find("@127.0.0.1:");
  REQUIRE(at != std::string::npos);
  auto port_begin = at + std::string{"@127.0.0.1:"}.size();
  auto port = db.url().substr(port_begin, db.url().find('/', port_begin) - port_begin);
  auto current_database = [](pqxx::connection& connection) {
    return pqxx::nontransaction{connection}
        .exec("SELECT current_database()")[0][0]
        .as<std::string>();
  };

  SUBCASE("a multi-host URL") {
    auto url = "postgresql://postgres@127.0.0.1:1,127.0.0.1:" + port + "/" + db.name() +
               "?target_session_attrs=read-write";
    auto config = pgkit::config_from_url(url, "test");
    CHECK(config.describe() == "postgresql://postgres@127.0.0.1:1,127.0.0.1:" + port + "/" +
                                   db.name() + "?target_session_attrs=read-write");
    auto connection = pgkit::connect(config);
    CHECK(current_database(*connection) == db.name());
    pgkit::listener listener{url};
    CHECK(listener.connected());
  }
  SUBCASE("hosts = [...] in database.toml, through a pool") {
    auto file =
        pgkit::parse_config("[connections.main]\nhosts = [\"127.0.0.1:1\", \"127.0.0.1:" + port +
                                "\"]\nusername = \"postgres\"\ndatabase = \"" + db.name() + "\"\n",
                            "database.toml", {});
    pgkit::pool pool{file.connection("main")};
    auto lease = pool.acquire();
    CHECK(current_database(lease.connection()) == db.name());
  }
}

TEST_CASE("pgkit::set_notice_handler") {
  pgkit_test::scratch_database db{"notices"};
  std::mutex mutex;
  std::vector<pgkit::server_notice> received;
  pgkit::set_notice_handler([&](const pgkit::server_notice& notice) {
    std::lock_guard<std::mutex> lock{mutex};
    received.push_back(notice);
  });
  const std::string raise = "DO $$ BEGIN RAISE NOTICE 'hello from %', 'pgkit'; END $$";

  SUBCASE("a connection from connect() sends its notices to the handler") {
    auto connection = pgkit::connect(db.url());
    pqxx::nontransaction{*connection}.exec(raise);
    REQUIRE(received.size() == 1);
    CHECK(received[0].severity == "NOTICE");
    CHECK(received[0].sqlstate == "00000");
    CHECK(received[0].message == "hello from pgkit");
  }
  SUBCASE("so does every pooled connection") {
    pgkit::pool pool{pgkit::config_from_url(db.url(), "test")};
    auto lease = pool.acquire();
    pqxx::nontransaction{lease.connection()}.exec(raise + "; CREATE TABLE IF NOT EXISTS t ()");
    pqxx::nontransaction{lease.connection()}.exec("CREATE TABLE IF NOT EXISTS t ()");
    REQUIRE(received.size() == 2);
    CHECK(received[1].message == "relation \"t\" already exists, skipping");
  }
  SUBCASE("an empty handler discards them; a handler set later applies at once") {
    auto connection = pgkit::connect(db.url());
    pgkit::set_notice_handler({});
    pqxx::nontransaction{*connection}.exec(raise);
    CHECK(received.empty());
    int counted = 0;
    pgkit::set_notice_handler([&](const pgkit::server_notice&) { ++counted; });
    pqxx::nontransaction{*connection}.exec(raise);
    CHECK(counted == 1);
  }
  pgkit::set_notice_handler({});
}
