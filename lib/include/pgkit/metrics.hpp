#pragma once
/// Prometheus metrics for a pool, cache, session and auth stores and listeners: a collector that
/// reads their counters when scraped, so the code paths it observes pay nothing extra. Part of
/// the library pgkit::metrics (CMake target), which links prometheus-cpp's core; serving
/// /metrics over HTTP (prometheus-cpp's pull part, prometheus::Exposer) is the application's
/// choice. docs/metrics.md lists every series.

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "pgkit/auth.hpp"
#include "pgkit/cache.hpp"
#include "pgkit/listener.hpp"
#include "pgkit/pool.hpp"
#include "pgkit/session.hpp"

namespace pgkit {

/// A prometheus::Collectable over what the application asks to observe. Register it with a
/// prometheus::Exposer (RegisterCollectable) or serialize Collect() yourself. Thread-safe:
/// observe() and Collect() may run at once from any threads. Non-copyable.
class metrics : public prometheus::Collectable {
 public:
  metrics();
  ~metrics() override;
  metrics(const metrics&) = delete;
  metrics& operator=(const metrics&) = delete;

  /// Observes `connections` as pool `name` (label db_client_connection_pool_name); keeps it
  /// alive. Throws usage_error for an empty name or a name already used for a pool.
  void observe(const std::string& name, std::shared_ptr<pool> connections);
  /// Observes a cache store (with its near tier) as `name` (label `cache`). The store must
  /// outlive this object. Throws like the pool's overload.
  void observe(const std::string& name, const cache_store& store);
  /// Observes a session store as `name` (label `store`). The store must outlive this object.
  void observe(const std::string& name, const session_store& store);
  /// Observes an auth store as `name` (label `store`). The store must outlive this object.
  void observe(const std::string& name, const auth_store& store);
  /// Observes a listener as `name` (label `listener`). The listener must outlive this object.
  void observe(const std::string& name, const listener& watched);

  /// Returns every series, read now (prometheus::Collectable).
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  struct sources;
  mutable std::mutex m_mutex;
  std::unique_ptr<sources> m_sources;
};

}  // namespace pgkit
