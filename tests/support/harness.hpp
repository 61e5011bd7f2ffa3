#pragma once
// What pgkit's tests share: the sandbox server started by the CTest fixture, a fresh database
// per test, and running real programs (the pgkit binary, psql, dbmate) with their output.

#include <doctest/doctest.h>
#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "pgkit/error.hpp"

namespace pgkit_test {

/// Runs `call`, which must throw a pgkit::error, and returns that error (a test failure when it
/// throws none).
template <typename Call>
pgkit::error expect_error(Call&& call) {
  try {
    call();
  } catch (const pgkit::error& e) {
    return e;
  }
  FAIL("no pgkit::error was thrown");
  return pgkit::error{pgkit::error_kind::internal, "unreachable"};
}

/// Returns the URL of the sandbox server (database `postgres`, superuser `postgres`), read
/// from the file named by PGKIT_TEST_SANDBOX that the CTest fixture wrote. Throws when the
/// test runs outside ctest without a sandbox.
std::string sandbox_url();

/// Returns `url` with its database replaced by `database`.
std::string with_database(const std::string& url, const std::string& database);

/// A database of its own for one test, created empty and dropped (with FORCE) on destruction.
class scratch_database {
 public:
  /// Creates a database whose name starts with `label`, sanitised to a valid identifier.
  explicit scratch_database(const std::string& label = "t");
  ~scratch_database();
  scratch_database(const scratch_database&) = delete;
  scratch_database& operator=(const scratch_database&) = delete;

  /// Returns the database's name.
  const std::string& name() const { return m_name; }
  /// Returns a URL that connects to it as the superuser.
  const std::string& url() const { return m_url; }

 private:
  std::string m_name;
  std::string m_url;
};

/// What a finished program left behind.
struct process_result {
  int exit_code = -1;  ///< the exit status, or 128 + signal number when killed
  std::string out;     ///< everything written to stdout
  std::string err;     ///< everything written to stderr
};

/// How to run a program.
struct process_options {
  std::optional<std::string> input;        ///< written to stdin, then closed (else /dev/null)
  std::map<std::string, std::string> env;  ///< added to (or replacing in) the environment
  std::vector<std::string> unset_env;      ///< removed from the environment
  std::string cwd;                         ///< working directory (default: unchanged)
  std::chrono::seconds timeout{120};       ///< killed with SIGKILL after this
};

/// A started child process and the parent's ends of its pipes (non-blocking, close-on-exec).
struct spawned_child {
  pid_t pid = 0;
  int in = -1;  ///< its stdin, or -1 when it reads /dev/null
  int out = -1;
  int err = -1;
};

/// Starts `argv` (argv[0] looked up in PATH) with the environment and directory of `options`;
/// its stdin is a pipe when `with_stdin`, else /dev/null. Throws when it cannot be started.
spawned_child spawn_child(const std::vector<std::string>& argv, const process_options& options,
                          bool with_stdin);

/// Runs `argv` (argv[0] looked up in PATH) to completion and returns its status and output.
process_result run_process(const std::vector<std::string>& argv,
                           const process_options& options = {});

/// Runs the pgkit binary under test with `args`.
process_result run_pgkit(const std::vector<std::string>& args, const process_options& options = {});

/// Returns the path of the pgkit binary under test.
std::string pgkit_binary();
/// Returns the project's source directory.
std::string source_dir();
/// Returns a fresh empty temporary directory, removed at process exit.
std::string temp_dir(const std::string& label = "pgkit-test");

/// Returns the whole content of the file at `path` ("" when it cannot be read).
std::string read_file(const std::string& path);

/// Returns options that run a program in a fresh directory holding a `database.toml` whose
/// connection `main` is `url` followed by `extra_lines` (DATABASE_URL is unset, so the file
/// decides).
process_options in_app_dir(const std::string& url, const std::string& extra_lines = {});

/// Returns true when README.md shows the file `example` (relative to the source directory)
/// byte for byte as a ```cpp block.
bool readme_shows(const std::string& example);

/// Polls `condition` every 10 ms until it holds or `timeout` passes; returns its last value.
/// For what the server does asynchronously (a closed connection's backend exiting, say).
template <typename Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout = std::chrono::seconds{20}) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  return condition();
}

/// Runs one SQL statement on `url` and returns the first column of the first row as text
/// ("" when there are no rows, "NULL" for SQL NULL).
std::string query_value(const std::string& url, const std::string& sql);

}  // namespace pgkit_test
