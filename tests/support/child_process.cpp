#include "child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "pgkit/connection.hpp"
#include "pgkit/migration.hpp"

namespace pgkit_test {
namespace {

using steady = std::chrono::steady_clock;

int decode_status(int status) {
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return -1;
}

std::string trim_newline(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
    text.pop_back();
  return text;
}

}  // namespace

child_process::child_process(const std::vector<std::string>& argv, const process_options& options) {
  auto child = spawn_child(argv, options, true);
  m_pid = child.pid;
  m_in = child.in;
  m_out_fd = child.out;
  m_err_fd = child.err;
}

child_process::~child_process() {
  if (!m_status) {
    ::kill(m_pid, SIGKILL);
    int status = 0;
    while (::waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  for (int fd : {m_in, m_out_fd, m_err_fd}) {
    if (fd >= 0)
      ::close(fd);
  }
}

void child_process::write_stdin(std::string_view text) {
  while (!text.empty() && m_in >= 0) {
    auto written = ::write(m_in, text.data(), text.size());
    if (written > 0) {
      text.remove_prefix(static_cast<std::size_t>(written));
    } else if (errno == EAGAIN || errno == EINTR) {
      pollfd out{m_in, POLLOUT, 0};
      ::poll(&out, 1, 100);
    } else {
      throw std::runtime_error(std::string{"writing to the child: "} + std::strerror(errno));
    }
  }
}

void child_process::close_stdin() {
  if (m_in >= 0)
    ::close(m_in);
  m_in = -1;
}

void child_process::pump(std::chrono::milliseconds timeout) {
  std::vector<pollfd> fds;
  if (m_out_fd >= 0)
    fds.push_back({m_out_fd, POLLIN, 0});
  if (m_err_fd >= 0)
    fds.push_back({m_err_fd, POLLIN, 0});
  if (fds.empty())
    return;
  if (::poll(fds.data(), fds.size(), static_cast<int>(timeout.count())) <= 0)
    return;
  char buffer[65536];
  for (const auto& entry : fds) {
    if (entry.revents == 0)
      continue;
    bool is_out = entry.fd == m_out_fd;
    for (;;) {
      auto n = ::read(entry.fd, buffer, sizeof buffer);
      if (n > 0) {
        (is_out ? m_out : m_err).append(buffer, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n == 0 || errno != EAGAIN) {
        ::close(entry.fd);
        (is_out ? m_out_fd : m_err_fd) = -1;
      }
      break;
    }
  }
}

std::optional<std::string> child_process::read_line(std::chrono::milliseconds timeout) {
  auto deadline = steady::now() + timeout;
  for (;;) {
    auto newline = m_out.find('\n');
    if (newline != std::string::npos) {
      std::string line = m_out.substr(0, newline);
      m_out.erase(0, newline + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    if (left.count() <= 0 || (m_out_fd < 0 && m_err_fd < 0))
      return std::nullopt;
    pump(std::min(left, std::chrono::milliseconds{100}));
  }
}

bool child_process::wait_for_stderr(std::string_view text, std::chrono::milliseconds timeout) {
  auto deadline = steady::now() + timeout;
  for (;;) {
    if (m_err.find(text) != std::string::npos)
      return true;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    if (left.count() <= 0 || (m_out_fd < 0 && m_err_fd < 0))
      return false;
    pump(std::min(left, std::chrono::milliseconds{100}));
  }
}

void child_process::send_signal(int signal) {
  if (!m_status)
    ::kill(m_pid, signal);
}

int child_process::wait(std::chrono::milliseconds timeout) {
  if (m_status)
    return *m_status;
  close_stdin();
  auto deadline = steady::now() + timeout;
  for (;;) {
    int status = 0;
    auto done = ::waitpid(m_pid, &status, WNOHANG);
    if (done == m_pid) {
      m_status = decode_status(status);
      while (m_out_fd >= 0 || m_err_fd >= 0)
        pump(std::chrono::milliseconds{100});
      return *m_status;
    }
    if (steady::now() >= deadline) {
      ::kill(m_pid, SIGKILL);
      while (::waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
      }
      m_status = decode_status(status);
      return *m_status;
    }
    pump(std::chrono::milliseconds{50});
  }
}

namespace {

// Runs `pg-sandbox COMMAND ARGS...`, which prints the directory of the sandbox it started.
// Returns that directory and the sandbox's URL.
std::pair<std::string, std::string> start_sandbox(const std::vector<std::string>& command) {
  auto script = source_dir() + "/scripts/pg-sandbox";
  std::vector<std::string> argv{script};
  argv.insert(argv.end(), command.begin(), command.end());
  auto started = run_process(argv);
  if (started.exit_code != 0)
    throw std::runtime_error("pg-sandbox " + command.front() + " failed: " + started.err);
  auto dir = trim_newline(started.out);
  auto url = run_process({script, "url", dir});
  if (url.exit_code != 0)
    throw std::runtime_error("pg-sandbox url failed: " + url.err);
  return {dir, trim_newline(url.out)};
}

}  // namespace

own_sandbox::own_sandbox() {
  // The fixture's state file lives in the build directory, which scripts/test uses as the
  // owner tag when it cleans up after a killed run.
  const char* state = std::getenv("PGKIT_TEST_SANDBOX");
  std::string owner = state == nullptr ? std::string{"pgkit-test"}
                                       : std::filesystem::path{state}.parent_path().string();
  std::tie(m_dir, m_url) = start_sandbox({"start", "--owner", owner});
}

own_sandbox::own_sandbox(standby_of from) {
  // The standby gets its primary's owner tag.
  std::tie(m_dir, m_url) = start_sandbox({"standby", from.primary.m_dir});
}

own_sandbox::~own_sandbox() {
  try {
    stop();
  } catch (...) {
    // scripts/test removes what is left, by owner.
  }
}

void own_sandbox::restart() {
  auto restarted = run_process({source_dir() + "/scripts/pg-sandbox", "restart", m_dir});
  if (restarted.exit_code != 0)
    throw std::runtime_error("pg-sandbox restart failed: " + restarted.err);
}

void own_sandbox::promote() {
  auto promoted = run_process({source_dir() + "/scripts/pg-sandbox", "promote", m_dir});
  if (promoted.exit_code != 0)
    throw std::runtime_error("pg-sandbox promote failed: " + promoted.err);
}

std::string own_sandbox::address() const {
  // A sandbox URL is postgresql://postgres@127.0.0.1:PORT/postgres.
  auto at = m_url.find('@') + 1;
  return m_url.substr(at, m_url.find('/', at) - at);
}

void own_sandbox::apply(const std::vector<std::string>& modules) const {
  auto connection = pgkit::connect(m_url);
  pgkit::apply_modules(*connection, modules);
}

std::string primary_of(const own_sandbox& first, const own_sandbox& second) {
  return "postgresql://postgres@" + first.address() + "," + second.address() +
         "/postgres?target_session_attrs=read-write";
}

void own_sandbox::stop() {
  if (m_dir.empty())
    return;
  run_process({source_dir() + "/scripts/pg-sandbox", "stop", m_dir});
  m_dir.clear();
}

}  // namespace pgkit_test
