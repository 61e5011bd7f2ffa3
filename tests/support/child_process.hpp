#pragma once
// A program running beside the test: its stdout and stderr are read incrementally, so a test can
// act while it runs (send notifications, restart a server) and signal it at the end. Also a
// sandbox server of the test's own, for tests that restart or stop their server.

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "harness.hpp"

#include <signal.h>

namespace pgkit_test {

/// Resumes a stopped process (SIGCONT) when it goes out of scope, whatever happened: a test that
/// freezes a backend or a server with SIGSTOP leaves nothing frozen behind.
struct resume_on_exit {
  int pid = 0;
  ~resume_on_exit() {
    if (pid > 0)
      ::kill(pid, SIGCONT);
  }
};

/// A child process with pipes on stdin, stdout and stderr. The destructor kills (SIGKILL) and
/// reaps it if it is still running.
class child_process {
 public:
  /// Starts `argv` (argv[0] looked up in PATH) with `options`' env, unset_env and cwd.
  explicit child_process(const std::vector<std::string>& argv, const process_options& options = {});
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  /// Returns the child's process id.
  pid_t pid() const { return m_pid; }
  /// Writes `text` to the child's stdin.
  void write_stdin(std::string_view text);
  /// Closes the child's stdin.
  void close_stdin();
  /// Returns the next complete stdout line (without its newline), waiting up to `timeout`;
  /// std::nullopt on timeout or end of output.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  /// Waits up to `timeout` until everything the child wrote to stderr contains `text`.
  bool wait_for_stderr(std::string_view text, std::chrono::milliseconds timeout);
  /// Returns everything the child wrote to stderr so far.
  const std::string& err() const { return m_err; }
  /// Returns what the child wrote to stdout and read_line() has not returned yet.
  const std::string& unread_out() const { return m_out; }
  /// Sends `signal` to the child.
  void send_signal(int signal);
  /// Reads the rest of its output and returns its exit status (128 + signal number when killed),
  /// killing it with SIGKILL when it has not ended within `timeout`.
  int wait(std::chrono::milliseconds timeout);

 private:
  // Reads whatever is available, waiting up to `timeout` for something to arrive.
  void pump(std::chrono::milliseconds timeout);

  pid_t m_pid = -1;
  int m_in = -1;
  int m_out_fd = -1;
  int m_err_fd = -1;
  std::string m_out;
  std::string m_err;
  std::optional<int> m_status;
};

/// A sandbox PostgreSQL server of the test's own (scripts/pg-sandbox), for tests that restart
/// or stop the server: the shared one must stay up for the tests running beside them. Owned by
/// the build directory, so scripts/test removes it if the test is killed. Stopped on destruction.
class own_sandbox {
 public:
  /// Names the running sandbox that a new one is to be a streaming standby of.
  struct standby_of {
    const own_sandbox& primary;
  };

  own_sandbox();
  /// Starts a streaming standby of `from.primary` (`pg-sandbox standby`), on its own port.
  explicit own_sandbox(standby_of from);
  ~own_sandbox();
  own_sandbox(const own_sandbox&) = delete;
  own_sandbox& operator=(const own_sandbox&) = delete;

  /// Returns the URL of its `postgres` database as superuser `postgres`.
  const std::string& url() const { return m_url; }
  /// Stops the server (fast shutdown) and starts it again on the same port.
  void restart();
  /// Stops the server and deletes its directory; the destructor then has nothing to do.
  void stop();
  /// Promotes a standby to a primary and waits until it accepts writes.
  void promote();
  /// Returns the sandbox's directory.
  const std::string& dir() const { return m_dir; }
  /// Returns "127.0.0.1:PORT", the server's address in URLs and messages.
  std::string address() const;
  /// Applies pgkit's built-in `modules` (and core) in schema pgkit, as `pgkit apply` does.
  void apply(const std::vector<std::string>& modules) const;

 private:
  std::string m_dir;
  std::string m_url;
};

/// Returns a multi-host URL naming `first` then `second`, with target_session_attrs=read-write:
/// libpq connects to whichever of them is the primary.
std::string primary_of(const own_sandbox& first, const own_sandbox& second);

}  // namespace pgkit_test
