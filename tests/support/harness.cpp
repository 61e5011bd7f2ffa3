#include "harness.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

#define PQXX_HAVE_OPTIONAL 1
#include <pqxx/pqxx>

extern char** environ;

namespace pgkit_test {
namespace {

std::string read_state_value(const std::string& key) {
  const char* file = std::getenv("PGKIT_TEST_SANDBOX");
  if (file == nullptr || *file == '\0') {
    throw std::runtime_error(
        "PGKIT_TEST_SANDBOX is not set: run the tests through ctest, which starts the sandbox");
  }
  std::ifstream in{file};
  if (!in)
    throw std::runtime_error(std::string{"cannot read sandbox state file "} + file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + "=", 0) == 0)
      return line.substr(key.size() + 1);
  }
  throw std::runtime_error(std::string{"sandbox state file "} + file + " has no " + key);
}

std::string random_suffix() {
  static std::atomic<unsigned> counter{0};
  std::random_device device;
  return std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
         std::to_string(device() % 100000);
}

void set_cloexec_nonblock(int fd) {
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

std::vector<std::string> build_environment(const process_options& options) {
  std::map<std::string, std::string> merged;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string pair = *entry;
    auto equals = pair.find('=');
    if (equals == std::string::npos)
      continue;
    merged[pair.substr(0, equals)] = pair.substr(equals + 1);
  }
  for (const auto& name : options.unset_env)
    merged.erase(name);
  for (const auto& [name, value] : options.env)
    merged[name] = value;
  std::vector<std::string> result;
  for (const auto& [name, value] : merged)
    result.push_back(name + "=" + value);
  return result;
}

}  // namespace

std::string sandbox_url() {
  return read_state_value("PGKIT_SANDBOX_URL");
}

std::string with_database(const std::string& url, const std::string& database) {
  auto scheme = url.find("://");
  auto slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  auto query = url.find('?');
  std::string base = url.substr(0, slash == std::string::npos ? query : slash);
  std::string rest = query == std::string::npos ? "" : url.substr(query);
  return base + "/" + database + rest;
}

scratch_database::scratch_database(const std::string& label) {
  std::string clean;
  for (char c : label) {
    clean += (std::isalnum(static_cast<unsigned char>(c)) != 0)
                 ? static_cast<char>(std::tolower(static_cast<unsigned char>(c)))
                 : '_';
  }
  if (clean.size() > 30)
    clean.resize(30);
  m_name = "pgkit_" + clean + "_" + random_suffix();
  pqxx::connection admin{sandbox_url()};
  pqxx::nontransaction tx{admin};
  tx.exec("CREATE DATABASE " + admin.quote_name(m_name));
  m_url = with_database(sandbox_url(), m_name);
}

scratch_database::~scratch_database() {
  try {
    pqxx::connection admin{sandbox_url()};
    pqxx::nontransaction tx{admin};
    tx.exec("DROP DATABASE IF EXISTS " + admin.quote_name(m_name) + " WITH (FORCE)");
  } catch (...) {
    // The sandbox is thrown away at the end of the run anyway.
  }
}

spawned_child spawn_child(const std::vector<std::string>& argv, const process_options& options,
                          bool with_stdin) {
  if (argv.empty())
    throw std::invalid_argument("spawn_child: empty argv");
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (::pipe(in_pipe) != 0 || ::pipe(out_pipe) != 0 || ::pipe(err_pipe) != 0) {
    throw std::runtime_error(std::string{"pipe: "} + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (with_stdin) {
    posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
  } else {
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  }
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) {
    posix_spawn_file_actions_addclose(&actions, fd);
  }
  if (!options.cwd.empty())
    posix_spawn_file_actions_addchdir_np(&actions, options.cwd.c_str());

  std::vector<char*> args;
  for (const auto& arg : argv)
    args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  auto env_strings = build_environment(options);
  std::vector<char*> env;
  for (auto& entry : env_strings)
    env.push_back(entry.data());
  env.push_back(nullptr);

  spawned_child child;
  int spawn_error = ::posix_spawnp(&child.pid, args[0], &actions, nullptr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (spawn_error != 0) {
    ::close(in_pipe[1]);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    throw std::runtime_error("cannot run " + argv[0] + ": " + std::strerror(spawn_error));
  }
  if (with_stdin) {
    child.in = in_pipe[1];
    set_cloexec_nonblock(child.in);
  } else {
    ::close(in_pipe[1]);
  }
  child.out = out_pipe[0];
  child.err = err_pipe[0];
  set_cloexec_nonblock(child.out);
  set_cloexec_nonblock(child.err);
  return child;
}

process_result run_process(const std::vector<std::string>& argv, const process_options& options) {
  auto child = spawn_child(argv, options, options.input.has_value());
  pid_t pid = child.pid;
  process_result result;
  std::string pending_input = options.input.value_or("");
  std::size_t written = 0;
  int in_fd = child.in;
  if (in_fd >= 0 && pending_input.empty()) {
    ::close(in_fd);
    in_fd = -1;
  }
  int out_fd = child.out, err_fd = child.err;
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  bool killed = false;
  char buffer[65536];
  while (out_fd >= 0 || err_fd >= 0) {
    std::vector<pollfd> fds;
    if (out_fd >= 0)
      fds.push_back({out_fd, POLLIN, 0});
    if (err_fd >= 0)
      fds.push_back({err_fd, POLLIN, 0});
    if (in_fd >= 0)
      fds.push_back({in_fd, POLLOUT, 0});
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 && !killed) {
      ::kill(pid, SIGKILL);
      killed = true;
    }
    ::poll(fds.data(), fds.size(),
           killed ? 1000 : static_cast<int>(std::min<long>(left.count(), 1000)));
    for (const auto& p : fds) {
      if (p.revents == 0)
        continue;
      if (p.fd == in_fd) {
        auto n = ::write(in_fd, pending_input.data() + written, pending_input.size() - written);
        if (n > 0)
          written += static_cast<std::size_t>(n);
        if (n < 0 || written == pending_input.size()) {
          ::close(in_fd);
          in_fd = -1;
        }
        continue;
      }
      auto n = ::read(p.fd, buffer, sizeof buffer);
      if (n > 0) {
        (p.fd == out_fd ? result.out : result.err).append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        ::close(p.fd);
        (p.fd == out_fd ? out_fd : err_fd) = -1;
      }
    }
  }
  if (in_fd >= 0)
    ::close(in_fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status))
    result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    result.exit_code = 128 + WTERMSIG(status);
  return result;
}

std::string pgkit_binary() {
  return PGKIT_TEST_BINARY;
}

std::string source_dir() {
  return PGKIT_TEST_SOURCE_DIR;
}

process_result run_pgkit(const std::vector<std::string>& args, const process_options& options) {
  std::vector<std::string> argv{pgkit_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, options);
}

std::string temp_dir(const std::string& label) {
  static std::mutex mutex;
  static std::vector<std::string> created;
  static struct cleaner {
    ~cleaner() {
      std::error_code ignored;
      for (const auto& dir : created)
        std::filesystem::remove_all(dir, ignored);
    }
  } cleanup;
  std::string pattern = (std::filesystem::temp_directory_path() / (label + ".XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error(std::string{"mkdtemp: "} + std::strerror(errno));
  }
  std::lock_guard lock{mutex};
  created.push_back(pattern);
  return pattern;
}

std::string query_value(const std::string& url, const std::string& sql) {
  pqxx::connection connection{url};
  pqxx::nontransaction tx{connection};
  auto result = tx.exec(sql);
  if (result.empty())
    return "";
  if (result[0][0].is_null())
    return "NULL";
  return result[0][0].c_str();
}

std::string read_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

process_options in_app_dir(const std::string& url, const std::string& extra_lines) {
  process_options options;
  options.cwd = temp_dir("pgkit-app");
  std::ofstream{options.cwd + "/database.toml"} << "[connections.main]\nurl = \"" << url << "\"\n"
                                                << extra_lines;
  options.unset_env = {"DATABASE_URL"};
  return options;
}

bool readme_shows(const std::string& example) {
  auto readme = read_file(source_dir() + "/README.md");
  auto text = read_file(source_dir() + "/" + example);
  return !text.empty() && readme.find("```cpp\n" + text + "```") != std::string::npos;
}

}  // namespace pgkit_test
