// A server restarted under an idle pool. The test starts a sandbox server of its own (never
// the shared fixture server, which other tests use in parallel) and stops it at the end.

#include <doctest/doctest.h>

#include <pqxx/pqxx>

#include <unistd.h>

#include <thread>
#include <vector>

#include "harness.hpp"
#include "pgkit/pool.hpp"

using namespace std::chrono_literals;

namespace {

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.pop_back();
  return text;
}

// A sandbox server owned by this test.
class own_sandbox {
 public:
  own_sandbox() {
    auto started = pgkit_test::run_process(
        {m_script, "start", "--owner", "pgkit-test-restart-" + std::to_string(::getpid())});
    REQUIRE_MESSAGE(started.exit_code == 0, started.err);
    m_dir = trimmed(started.out);
    auto url = pgkit_test::run_process({m_script, "url", m_dir});
    REQUIRE(url.exit_code == 0);
    m_url = trimmed(url.out);
  }
  ~own_sandbox() { pgkit_test::run_process({m_script, "stop", m_dir}); }
  own_sandbox(const own_sandbox&) = delete;
  own_sandbox& operator=(const own_sandbox&) = delete;

  const std::string& url() const { return m_url; }
  void restart() {
    auto restarted = pgkit_test::run_process({m_script, "restart", m_dir});
    REQUIRE_MESSAGE(restarted.exit_code == 0, restarted.err);
  }

 private:
  std::string m_script = pgkit_test::source_dir() + "/scripts/pg-sandbox";
  std::string m_dir;
  std::string m_url;
};

}  // namespace

TEST_CASE("pgkit::pool across a server restart") {
  own_sandbox server;
  auto config = pgkit::config_from_url(server.url(), "test");
  config.pool_size = 3;
  config.validate_after_idle = 100ms;
  pgkit::pool pool{config};
  {
    std::vector<pgkit::lease> leases;
    for (int i = 0; i < 3; ++i)
      leases.push_back(pool.acquire());
  }
  REQUIRE(pool.stats().idle == 3);

  server.restart();
  std::this_thread::sleep_for(200ms);  // past validate_after_idle

  // Every idle connection is dead now; callers must not notice.
  std::vector<pgkit::lease> leases;
  for (int i = 0; i < 3; ++i) {
    leases.push_back(pool.acquire());
    pqxx::nontransaction tx{*leases.back()};
    CHECK(tx.exec("SELECT 40 + 2")[0][0].as<int>() == 42);
  }
  auto stats = pool.stats();
  CHECK(stats.destroyed_failed_validation == 3);
  CHECK(stats.created == 6);
}
