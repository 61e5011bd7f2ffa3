// The pool's statements through a real PgBouncer in transaction pooling mode. The test starts
// its own PgBouncer (Debian's `pgbouncer`) on a free loopback port, in front of the sandbox
// server, and stops it at the end.

#include <doctest/doctest.h>

#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "pgkit/connection.hpp"
#include "pgkit/error.hpp"
#include "pgkit/pool.hpp"
#include "pgkit/query.hpp"
#include "pgkit/transaction.hpp"
#include "stores/statements.hpp"

using namespace std::chrono_literals;

namespace {

int free_loopback_port() {
  int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(probe, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(probe);
  return ntohs(address.sin_port);
}

std::string port_of(const std::string& url) {
  auto colon = url.rfind(':');
  auto slash = url.find('/', colon);
  return url.substr(colon + 1, slash - colon - 1);
}

// A PgBouncer in transaction mode in front of the sandbox, with at most 2 server connections,
// so that consecutive transactions of one client run on different server sessions.
class pgbouncer {
 public:
  pgbouncer() {
    m_dir = pgkit_test::temp_dir("pgkit-pgbouncer");
    m_port = free_loopback_port();
    std::ofstream{m_dir + "/users.txt"} << "\"postgres\" \"\"\n";
    std::ofstream{m_dir + "/pgbouncer.ini"}
        << "[databases]\n"
        << "* = host=127.0.0.1 port=" << port_of(pgkit_test::sandbox_url()) << "\n"
        << "[pgbouncer]\n"
        << "listen_addr = 127.0.0.1\n"
        << "listen_port = " << m_port << "\n"
        << "unix_socket_dir =\n"
        << "auth_type = trust\n"
        << "auth_file = " << m_dir << "/users.txt\n"
        << "pool_mode = transaction\n"
        << "default_pool_size = 2\n"
        << "max_client_conn = 50\n"
        << "logfile = " << m_dir << "/pgbouncer.log\n"
        << "pidfile = " << m_dir << "/pgbouncer.pid\n";
    std::vector<std::string> argv{"pgbouncer", "-d"};
    if (::geteuid() == 0) {
      // PgBouncer refuses to run as root: it switches to the server's user, which must be
      // able to write its log and pid file.
      auto* user = ::getpwnam("postgres");
      REQUIRE(user != nullptr);
      for (const char* file : {"", "/users.txt", "/pgbouncer.ini"})
        REQUIRE(::chown((m_dir + file).c_str(), user->pw_uid, user->pw_gid) == 0);
      argv.insert(argv.end(), {"-u", "postgres"});
    }
    argv.push_back(m_dir + "/pgbouncer.ini");
    auto started = pgkit_test::run_process(argv);
    REQUIRE_MESSAGE(started.exit_code == 0, started.err);
    for (int i = 0; i < 200 && m_pid <= 0; ++i) {
      std::ifstream pidfile{m_dir + "/pgbouncer.pid"};
      pidfile >> m_pid;
      if (m_pid <= 0)
        std::this_thread::sleep_for(50ms);
    }
    REQUIRE_MESSAGE(m_pid > 0, "pgbouncer wrote no pid file");
  }
  ~pgbouncer() {
    if (m_pid <= 0)
      return;
    ::kill(m_pid, SIGTERM);
    for (int i = 0; i < 200 && ::kill(m_pid, 0) == 0; ++i)
      std::this_thread::sleep_for(50ms);
  }
  pgbouncer(const pgbouncer&) = delete;
  pgbouncer& operator=(const pgbouncer&) = delete;

  std::string url(const std::string& database) const {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(m_port) + "/" + database;
  }

 private:
  std::string m_dir;
  int m_port = 0;
  pid_t m_pid = 0;
};

}  // namespace

TEST_CASE("pgkit::pool through PgBouncer in transaction mode") {
  pgkit_test::scratch_database db{"pgbouncer"};
  pgkit_test::query_value(db.url(), "CREATE TABLE item (id int PRIMARY KEY, label text)");
  pgbouncer bouncer;

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
            pgkit::detail::exec_statement(lease, tx, "pgkit_item_put",
                                          "INSERT INTO item VALUES ($1, $2)", id,
                                          "item " + std::to_string(id));
            auto label = pgkit::detail::exec_statement(lease, tx, "pgkit_item_get",
                                                       "SELECT label FROM item WHERE id = $1", id);
            if (label[0][0].as<std::string>() != "item " + std::to_string(id))
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
  pgbouncer bouncer;
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
