// bench/migrate: how long `pgkit apply` of every built-in module takes on an empty database,
// side by side with `psql -f` of the same SQL (`pgkit print-sql --format plain`), and how long
// `pgkit print-sql` takes to start, side by side with `pgkit --version` and /bin/true.
//
//   pgkit_bench_migrate [--rounds N] [URL]
//
// URL is a server where the user may create databases; without it a throwaway sandbox is
// started with scripts/pg-sandbox and stopped at the end.

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "pgkit/migration.hpp"

extern char** environ;

namespace {

using clock_type = std::chrono::steady_clock;

// Runs argv with stdout to `out_file` (or /dev/null) and stdin from `in_file` (or /dev/null);
// returns the wall time. Throws on a non-zero exit.
double run_timed(const std::vector<std::string>& argv, const std::string& in_file = "/dev/null",
                 const std::string& out_file = "/dev/null") {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, in_file.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  std::vector<char*> args;
  for (const auto& arg : argv)
    args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  auto start = clock_type::now();
  pid_t pid = 0;
  int spawn_error = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawn_error != 0)
    throw std::runtime_error("cannot run " + argv[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  double elapsed = std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(argv[0] + " " + argv[1] + " failed");
  return elapsed;
}

std::string capture(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr)
    throw std::runtime_error("cannot run " + command);
  char buffer[4096];
  while (auto n = fread(buffer, 1, sizeof buffer, pipe))
    out.append(buffer, n);
  if (pclose(pipe) != 0)
    throw std::runtime_error(command + " failed");
  while (!out.empty() && out.back() == '\n')
    out.pop_back();
  return out;
}

std::string with_database(const std::string& url, const std::string& database) {
  auto scheme = url.find("://");
  auto slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  auto query = url.find('?');
  std::string base = url.substr(0, slash == std::string::npos ? query : slash);
  std::string rest = query == std::string::npos ? "" : url.substr(query);
  return base + "/" + database + rest;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

void row(const std::string& what, double ms, double baseline_ms) {
  std::printf("  %-44s %9.2f ms   %5.2fx\n", what.c_str(), ms, ms / baseline_ms);
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 15;
  std::string url;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--rounds" && i + 1 < argc)
      rounds = std::max(1, std::atoi(argv[++i]));
    else
      url = arg;
  }
  const std::string pgkit = PGKIT_BENCH_BINARY;
  const std::string sandbox = std::string{PGKIT_BENCH_SOURCE_DIR} + "/scripts/pg-sandbox";
  std::string sandbox_dir;
  try {
    if (url.empty()) {
      sandbox_dir = capture(sandbox + " start");
      url = capture(sandbox + " url " + sandbox_dir);
    }
    const std::vector<std::string> modules{"auth", "cache", "session"};
    char script_path[] = "/tmp/pgkit-bench-XXXXXX";
    int fd = mkstemp(script_path);
    close(fd);
    std::vector<std::string> print{pgkit, "print-sql"};
    print.insert(print.end(), modules.begin(), modules.end());
    run_timed(print, "/dev/null", script_path);

    pqxx::connection admin{url};
    auto fresh = [&](int round, const char* label) {
      std::string name = "pgkit_bench_" + std::string{label} + "_" + std::to_string(round);
      pqxx::nontransaction tx{admin};
      tx.exec("DROP DATABASE IF EXISTS " + name);
      tx.exec("CREATE DATABASE " + name);
      return name;
    };
    auto drop = [&](const std::string& name) {
      pqxx::nontransaction tx{admin};
      tx.exec("DROP DATABASE " + name + " WITH (FORCE)");
    };

    std::vector<double> psql_ms, apply_ms, library_ms;
    for (int round = 0; round < rounds; ++round) {
      auto a = fresh(round, "psql");
      psql_ms.push_back(run_timed({"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", script_path,
                                   "--dbname", with_database(url, a)}));
      drop(a);
      auto b = fresh(round, "apply");
      std::vector<std::string> apply{pgkit, "apply", "--quiet", "--addr=" + with_database(url, b)};
      apply.insert(apply.end(), modules.begin(), modules.end());
      apply_ms.push_back(run_timed(apply));
      drop(b);
      auto c = fresh(round, "library");
      {
        auto start = clock_type::now();
        pqxx::connection connection{with_database(url, c)};
        pgkit::apply_modules(connection, modules);
        library_ms.push_back(
            std::chrono::duration<double, std::milli>(clock_type::now() - start).count());
      }
      drop(c);
    }
    unlink(script_path);

    std::vector<double> true_ms, version_ms, print_ms;
    for (int round = 0; round < rounds * 4; ++round) {
      true_ms.push_back(run_timed({"true"}));
      version_ms.push_back(run_timed({pgkit, "--version"}));
      print_ms.push_back(run_timed(print));
    }

    std::printf("pgkit bench/migrate: medians of %d rounds, each on a fresh database\n", rounds);
    std::printf("apply of core, auth, cache, session on an empty database (incl. connecting)\n");
    double baseline = median(psql_ms);
    row("psql -f (print-sql --format plain)  [baseline]", baseline, baseline);
    row("pgkit apply (process)", median(apply_ms), baseline);
    row("pgkit::apply_modules (in process)", median(library_ms), baseline);
    std::printf("start-up, %d runs each\n", rounds * 4);
    double floor = median(true_ms);
    row("true  [baseline]", floor, floor);
    row("pgkit --version", median(version_ms), floor);
    row("pgkit print-sql auth cache session", median(print_ms), floor);
    std::printf("ratio apply / psql -f: %.2f; print-sql / --version: %.2f\n",
                median(apply_ms) / baseline, median(print_ms) / median(version_ms));
  } catch (const std::exception& e) {
    std::cerr << "bench/migrate: " << e.what() << '\n';
    if (!sandbox_dir.empty())
      std::system((sandbox + " stop " + sandbox_dir + " >/dev/null").c_str());
    return 1;
  }
  if (!sandbox_dir.empty())
    std::system((sandbox + " stop " + sandbox_dir + " >/dev/null").c_str());
  return 0;
}
