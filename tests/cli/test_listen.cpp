// `pgkit listen` and `pgkit notify`, run as the built binary. listen runs as a child process
// whose output is read line by line while the test sends notifications.

#include <doctest/doctest.h>

#include <dirent.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "child_process.hpp"
#include "harness.hpp"
#include "pgkit/connection.hpp"
#include "pgkit/notify.hpp"

using namespace std::chrono_literals;
using pgkit_test::child_process;
using pgkit_test::run_pgkit;
using steady = std::chrono::steady_clock;

namespace {

// Starts `pgkit listen --verbose ARGS...` and waits until it is listening.
std::unique_ptr<child_process> start_listen(const std::string& url,
                                            const std::vector<std::string>& args) {
  std::vector<std::string> argv{pgkit_test::pgkit_binary(), "listen", "--addr", url, "--verbose"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto child = std::make_unique<child_process>(argv);
  REQUIRE_MESSAGE(child->wait_for_stderr("pgkit: listening on", 30s), child->err());
  return child;
}

// The processes whose parent is `parent`, zombies included.
std::vector<std::string> children_of(int parent) {
  std::vector<std::string> children;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr)
    return children;
  while (auto* entry = ::readdir(proc)) {
    std::string name = entry->d_name;
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    std::ifstream stat{"/proc/" + name + "/stat"};
    std::string line;
    std::getline(stat, line);
    auto close_paren = line.rfind(')');
    if (close_paren == std::string::npos)
      continue;
    std::istringstream fields{line.substr(close_paren + 2)};
    std::string state;
    int ppid = 0;
    fields >> state >> ppid;
    if (ppid == parent)
      children.push_back(name + " " + state);
  }
  ::closedir(proc);
  return children;
}

}  // namespace

TEST_CASE("pgkit listen") {
  pgkit_test::scratch_database db{"cli_listen"};
  auto sender = pgkit::connect(db.url());

  SUBCASE(
      "prints channel<TAB>payload per notification as it arrives, escaped, and --count ends "
      "it with 0") {
    auto listen = start_listen(db.url(), {"jobs", "Odd \"Name\"", "--count", "3"});
    pgkit::notify(*sender, "jobs", "plain");
    // Read before sending the next one: each line is flushed on its own.
    CHECK(listen->read_line(10s) == std::optional<std::string>{"jobs\tplain"});
    pgkit::notify(*sender, "Odd \"Name\"", "two\nlines\tand a tab \\ backslash");
    CHECK(listen->read_line(10s) ==
          std::optional<std::string>{"Odd \"Name\"\ttwo\\nlines\\tand a tab \\\\ backslash"});
    pgkit::notify(*sender, "jobs", "ünïcødé ✓");
    CHECK(listen->read_line(10s) == std::optional<std::string>{"jobs\tünïcødé ✓"});
    CHECK(listen->wait(30s) == 0);
    CHECK(listen->unread_out().empty());
  }

  SUBCASE("--json prints one object per line with channel, payload, pid and received_at") {
    auto listen = start_listen(db.url(), {"--json", "events", "--count", "2"});
    pgkit::notify(*sender, "events", "{\"id\": 7}");
    pgkit::notify(*sender, "events", "line\nbreak");
    std::vector<std::string> payloads;
    for (int i = 0; i < 2; ++i) {
      auto line = listen->read_line(10s);
      REQUIRE(line);
      auto object = nlohmann::json::parse(*line);
      CHECK(object.size() == 4);
      CHECK(object["channel"] == "events");
      CHECK(object["pid"] == sender->backendpid());
      std::string received_at = object["received_at"];
      CHECK(received_at.size() == std::string{"2026-01-01T00:00:00.000000Z"}.size());
      CHECK(received_at.back() == 'Z');
      payloads.push_back(object["payload"]);
    }
    CHECK(payloads == std::vector<std::string>{"{\"id\": 7}", "line\nbreak"});
    CHECK(listen->wait(30s) == 0);
  }

  SUBCASE("--timeout exits 3 after that long without a notification") {
    auto started = steady::now();
    auto result = run_pgkit({"listen", "--addr", db.url(), "quiet", "--timeout", "0.5"});
    CHECK(result.exit_code == 3);
    CHECK(result.out.empty());
    CHECK(result.err.find("pgkit: note: no notification within 0.50 s") != std::string::npos);
    CHECK(steady::now() - started >= 500ms);
  }

  SUBCASE(
      "--exec runs the command per notification: payload on stdin, channel and pid in the "
      "environment, in order, failures reported, children reaped") {
    auto dir = pgkit_test::temp_dir("pgkit-listen-exec");
    auto log = dir + "/log";
    auto listen = start_listen(
        db.url(), {"work", "--count", "4", "--exec", "sh", "-c",
                   "payload=$(cat); printf '%s|%s|%s\\n' \"$PGKIT_CHANNEL\" \"$PGKIT_PID\" "
                   "\"$payload\" >> \"$0\"; [ \"$payload\" != fail ]",
                   log});
    for (const char* payload : {"first", "fail", "third line\nsecond", "last"})
      pgkit::notify(*sender, "work", payload);
    CHECK(listen->wait(60s) == 0);
    auto pid = std::to_string(sender->backendpid());
    CHECK(pgkit_test::read_file(log) == "work|" + pid + "|first\nwork|" + pid + "|fail\nwork|" +
                                            pid + "|third line\nsecond\nwork|" + pid + "|last\n");
    CHECK(listen->err().find("exited with status 1 (notification on channel 'work' from pid " +
                             pid + ")") != std::string::npos);
    CHECK(listen->unread_out().empty());
  }

  SUBCASE("--exec leaves no zombie behind while it waits for the next notification") {
    auto log = pgkit_test::temp_dir("pgkit-listen-reap") + "/log";
    auto listen = start_listen(db.url(), {"reap", "--exec", "sh", "-c", "cat >> \"$0\"", log});
    for (const char* payload : {"a", "b", "c"})
      pgkit::notify(*sender, "reap", payload);
    auto deadline = steady::now() + 20s;
    while (pgkit_test::read_file(log) != "abc" && steady::now() < deadline)
      std::this_thread::sleep_for(50ms);
    REQUIRE(pgkit_test::read_file(log) == "abc");
    std::vector<std::string> children;
    do {
      children = children_of(listen->pid());
      if (!children.empty())
        std::this_thread::sleep_for(50ms);
    } while (!children.empty() && steady::now() < deadline);
    CHECK_MESSAGE(children.empty(), "left behind: " << children.front());
    listen->send_signal(SIGTERM);
    CHECK(listen->wait(30s) == 0);
  }

  SUBCASE("--exec with a command that cannot run reports it and keeps listening") {
    auto listen = start_listen(db.url(), {"--count", "2", "jobs", "--exec", "/nonexistent/cmd"});
    pgkit::notify(*sender, "jobs", "a");
    pgkit::notify(*sender, "jobs", "b");
    CHECK(listen->wait(30s) == 0);
    CHECK(listen->err().find("cannot run '/nonexistent/cmd'") != std::string::npos);
  }

  SUBCASE("SIGTERM and SIGINT end it cleanly with exit 0") {
    for (int signal_number : {SIGTERM, SIGINT}) {
      auto listen = start_listen(db.url(), {"jobs"});
      pgkit::notify(*sender, "jobs", "seen");
      CHECK(listen->read_line(10s) == std::optional<std::string>{"jobs\tseen"});
      listen->send_signal(signal_number);
      CHECK(listen->wait(30s) == 0);
    }
  }

  SUBCASE("an invalid channel name is a usage error (exit 2)") {
    auto result = run_pgkit({"listen", "--addr", db.url(), std::string(64, 'c')});
    CHECK(result.exit_code == 2);
    CHECK(result.err.find("at most 63") != std::string::npos);
    result = run_pgkit({"listen", "--addr", db.url(), "jobs", "--exec"});
    CHECK(result.exit_code == 2);
    CHECK(result.err.find("--exec needs a command") != std::string::npos);
  }

  SUBCASE("a connection configured for a transaction-mode pooler is refused (exit 2)") {
    auto in_dir = pgkit_test::in_app_dir(db.url(), "pooler = \"pgbouncer-transaction\"\n");
    auto result = run_pgkit({"listen", "jobs", "--timeout", "1"}, in_dir);
    CHECK(result.exit_code == 2);
    CHECK(result.err.find("transaction-mode pooler") != std::string::npos);
    CHECK(result.out.empty());
  }

  SUBCASE("a server that is not there: exit 1, password hidden") {
    auto result =
        run_pgkit({"listen", "--addr", "postgresql://app:topsecret@127.0.0.1:1/app", "jobs"});
    CHECK(result.exit_code == 1);
    CHECK(result.err.find("pgkit: error: cannot connect") != std::string::npos);
    CHECK(result.err.find("topsecret") == std::string::npos);
  }
}

TEST_CASE("pgkit listen survives a server restart") {
  pgkit_test::own_sandbox server;
  auto listen = start_listen(server.url(), {"jobs", "--heartbeat", "1"});
  server.restart();
  REQUIRE_MESSAGE(listen->wait_for_stderr("reconnected", 60s), listen->err());
  CHECK(listen->err().find("connection lost") != std::string::npos);
  auto sender = pgkit::connect(server.url());
  pgkit::notify(*sender, "jobs", "after the restart");
  CHECK(listen->read_line(10s) == std::optional<std::string>{"jobs\tafter the restart"});
  listen->send_signal(SIGTERM);
  CHECK(listen->wait(30s) == 0);
}

TEST_CASE("pgkit notify") {
  pgkit_test::scratch_database db{"cli_notify"};

  SUBCASE("sends the PAYLOAD argument, or stdin without its final newline") {
    auto listen = start_listen(db.url(), {"jobs", "--count", "3"});
    auto sent = run_pgkit({"notify", "--addr", db.url(), "jobs", "from argument"});
    CHECK(sent.exit_code == 0);
    CHECK(sent.out.empty());
    pgkit_test::process_options piped;
    piped.input = "from stdin\n";
    CHECK(run_pgkit({"notify", "--addr", db.url(), "jobs"}, piped).exit_code == 0);
    sent = run_pgkit({"notify", "--addr", db.url(), "--json", "jobs", ""});
    CHECK(sent.exit_code == 0);
    CHECK(nlohmann::json::parse(sent.out) ==
          nlohmann::json{{"channel", "jobs"}, {"payload_bytes", 0}});
    CHECK(listen->read_line(10s) == std::optional<std::string>{"jobs\tfrom argument"});
    CHECK(listen->read_line(10s) == std::optional<std::string>{"jobs\tfrom stdin"});
    CHECK(listen->read_line(10s) == std::optional<std::string>{"jobs\t"});
    CHECK(listen->wait(30s) == 0);
  }

  SUBCASE("an oversized payload exits 2 before connecting") {
    // Port 1 refuses connections: exit 2, not 1, proves nothing was attempted.
    auto result = run_pgkit(
        {"notify", "--addr", "postgresql://127.0.0.1:1/none", "jobs", std::string(8000, 'p')});
    CHECK(result.exit_code == 2);
    CHECK(result.err.find("8000 bytes or more") != std::string::npos);
    pgkit_test::process_options piped;
    piped.input = std::string(9000, 'p');
    result = run_pgkit({"notify", "--addr", "postgresql://127.0.0.1:1/none", "jobs"}, piped);
    CHECK(result.exit_code == 2);
  }

  SUBCASE("an invalid channel exits 2") {
    auto result = run_pgkit({"notify", "--addr", db.url(), "", "x"});
    CHECK(result.exit_code == 2);
    CHECK(result.err.find("cannot be empty") != std::string::npos);
  }
}
