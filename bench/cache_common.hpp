#pragma once
// What bench/cache and bench/cache-gc share: a schema of their own with the cache module
// applied, and small timing helpers (the server comes from support.hpp).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <pgkit/pgkit.hpp>
#include <pqxx/pqxx>

#include "support.hpp"

namespace bench {

using clock_type = std::chrono::steady_clock;

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
