#pragma once
// What bench/cache and bench/cache-gc share: finding the server, a schema of their own with the
// cache module applied, and small timing helpers.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <pgkit/pgkit.hpp>
#include <pqxx/pqxx>

namespace bench {

using clock_type = std::chrono::steady_clock;

inline std::string run_script(const std::string& command) {
  std::string output;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    char buffer[512];
    while (std::fgets(buffer, sizeof buffer, pipe) != nullptr)
      output += buffer;
    ::pclose(pipe);
  }
  while (!output.empty() && output.back() == '\n')
    output.pop_back();
  return output;
}

inline std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

/// The server to measure: argv[1], else PGKIT_BENCH_URL (scripts/bench), else DATABASE_URL,
/// else a throwaway sandbox of its own, stopped on destruction.
class server {
 public:
  server(int argc, char** argv, const std::string& owner) {
    m_url = argc > 1 ? argv[1] : "";
    if (m_url.empty())
      m_url = env("PGKIT_BENCH_URL");
    if (m_url.empty())
      m_url = env("DATABASE_URL");
    if (m_url.empty()) {
      m_sandbox = run_script(std::string{PGKIT_SANDBOX_SCRIPT} + " start --owner " + owner);
      m_url = run_script(std::string{PGKIT_SANDBOX_SCRIPT} + " url " + m_sandbox);
    }
  }
  ~server() {
    if (!m_sandbox.empty())
      run_script(std::string{PGKIT_SANDBOX_SCRIPT} + " stop " + m_sandbox);
  }
  server(const server&) = delete;
  server& operator=(const server&) = delete;
  const std::string& url() const { return m_url; }

 private:
  std::string m_url;
  std::string m_sandbox;
};

/// A schema of the benchmark's own with the cache module applied; dropped on destruction.
class cache_schema {
 public:
  cache_schema(const std::string& url, std::string name) : m_url(url), m_name(std::move(name)) {
    pqxx::connection connection{m_url};
    {
      pqxx::nontransaction tx{connection};
      tx.exec("DROP SCHEMA IF EXISTS " + m_name + " CASCADE");
    }
    pgkit::apply_modules(connection, {"cache"}, m_name);
  }
  ~cache_schema() {
    try {
      pqxx::connection connection{m_url};
      pqxx::nontransaction tx{connection};
      tx.exec("DROP SCHEMA IF EXISTS " + m_name + " CASCADE");
    } catch (...) {
      // The schema stays behind; the next run drops it first.
    }
  }
  cache_schema(const cache_schema&) = delete;
  cache_schema& operator=(const cache_schema&) = delete;
  const std::string& name() const { return m_name; }
  std::string table() const { return m_name + ".cache"; }

 private:
  std::string m_url;
  std::string m_name;
};

inline double seconds(clock_type::duration elapsed) {
  return std::chrono::duration<double>(elapsed).count();
}

/// Returns the q-quantile (0..1) of `samples` (sorted in place), in microseconds.
inline double quantile_us(std::vector<clock_type::duration>& samples, double q) {
  if (samples.empty())
    return 0;
  std::sort(samples.begin(), samples.end());
  auto index = static_cast<std::size_t>(q * static_cast<double>(samples.size() - 1));
  return std::chrono::duration<double, std::micro>(samples[index]).count();
}

}  // namespace bench
