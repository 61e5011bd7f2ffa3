#include "pgkit/metrics.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <utility>

#include <prometheus/client_metric.h>
#include <prometheus/metric_type.h>

#include "pgkit/error.hpp"

namespace pgkit {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// The families of one scrape, by name, in the order they were first asked for.
class scrape {
 public:
  MetricFamily& family(const std::string& name, const std::string& help, MetricType type) {
    for (auto& existing : m_families) {
      if (existing.name == name)
        return existing;
    }
    m_families.push_back(MetricFamily{name, help, type, {}});
    return m_families.back();
  }

  void counter(const std::string& name, const std::string& help, ClientMetric::Label label,
               std::uint64_t value, std::vector<ClientMetric::Label> more = {}) {
    auto& sample = add(family(name, help, MetricType::Counter), std::move(label), std::move(more));
    sample.counter.value = static_cast<double>(value);
  }

  void gauge(const std::string& name, const std::string& help, ClientMetric::Label label,
             double value, std::vector<ClientMetric::Label> more = {}) {
    auto& sample = add(family(name, help, MetricType::Gauge), std::move(label), std::move(more));
    sample.gauge.value = value;
  }

  // One counter per error kind, zeros included, so that a rate() sees the first error.
  void errors(const std::string& name, const std::string& help, const ClientMetric::Label& label,
              const store_stats& stats) {
    for (std::size_t kind = 0; kind < error_kind_count; ++kind) {
      counter(name, help, label, stats.errors[kind],
              {{"kind", std::string{to_string(static_cast<error_kind>(kind))}}});
    }
  }

  ClientMetric& add(MetricFamily& into, ClientMetric::Label label,
                    std::vector<ClientMetric::Label> more) {
    ClientMetric sample;
    sample.label.push_back(std::move(label));
    for (auto& extra : more)
      sample.label.push_back(std::move(extra));
    into.metric.push_back(std::move(sample));
    return into.metric.back();
  }

  std::vector<MetricFamily> take() { return std::move(m_families); }

 private:
  std::vector<MetricFamily> m_families;
};

double seconds(std::chrono::nanoseconds duration) {
  return std::chrono::duration<double>(duration).count();
}

void collect_pool(scrape& out, const std::string& name, const pool& observed) {
  auto stats = observed.stats();
  const auto& config = observed.config();
  ClientMetric::Label label{"db_client_connection_pool_name", name};
  const std::string usage_help =
      "Connections open now, by state (OpenTelemetry db.client.connection.count)";
  out.gauge("db_client_connections_usage", usage_help, label, static_cast<double>(stats.idle),
            {{"state", "idle"}});
  out.gauge("db_client_connections_usage", usage_help, label, static_cast<double>(stats.in_use),
            {{"state", "used"}});
  out.gauge("db_client_connection_max", "The most connections the pool opens (pool_size)", label,
            static_cast<double>(config.pool_size));
  out.gauge("db_client_connection_idle_min", "Idle connections the pool keeps open (min_idle)",
            label, static_cast<double>(config.min_idle));
  out.gauge("db_client_connection_pending_requests", "Acquires queued for a connection now", label,
            static_cast<double>(stats.waiting));
  out.counter("db_client_connection_timeouts_total", "Acquires that gave up after their timeout",
              label, stats.timed_out);

  // Acquires that did not queue waited zero: they sit in every bucket.
  std::uint64_t queued = 0;
  for (auto count : stats.queued_waits)
    queued += count;
  std::uint64_t finished = stats.acquired + stats.timed_out;
  std::uint64_t immediate = finished > queued ? finished - queued : 0;
  auto& wait =
      out.family("db_client_connection_wait_time_seconds",
                 "Time an acquire took to get a connection from the pool", MetricType::Histogram);
  auto& sample = out.add(wait, label, {});
  sample.histogram.sample_count = immediate + queued;
  sample.histogram.sample_sum = seconds(stats.wait_time);
  std::uint64_t cumulative = immediate;
  for (std::size_t i = 0; i < pool_wait_bounds.size(); ++i) {
    cumulative += stats.queued_waits[i];
    sample.histogram.bucket.push_back(
        {cumulative, std::chrono::duration<double>(pool_wait_bounds[i]).count()});
  }

  out.counter("pgkit_pool_acquires_total", "Leases handed out", label, stats.acquired);
  out.counter("pgkit_pool_connections_created_total", "Connections opened", label, stats.created);
  out.counter("pgkit_pool_connection_failures_total", "Connection attempts that failed", label,
              stats.create_failed);
  const std::string closed_help = "Connections closed, by reason";
  const std::pair<const char*, std::uint64_t> closed[] = {
      {"broken", stats.destroyed_broken},
      {"in_transaction", stats.destroyed_in_transaction},
      {"failed_validation", stats.destroyed_failed_validation},
      {"lifetime", stats.destroyed_lifetime},
      {"idle", stats.destroyed_idle},
      {"closed", stats.destroyed_closed}};
  for (const auto& [reason, count] : closed) {
    out.counter("pgkit_pool_connections_closed_total", closed_help, label, count,
                {{"reason", reason}});
  }
}

void collect_cache(scrape& out, const std::string& name, const cache_store& store) {
  auto stats = store.statistics();
  auto near = store.near_statistics();
  ClientMetric::Label label{"cache", name};
  out.counter("pgkit_cache_hits_total", "Reads answered by the cache table", label, stats.hits);
  out.counter("pgkit_cache_misses_total", "Keys the cache table had no live entry for", label,
              stats.misses);
  out.counter("pgkit_cache_sets_total", "Entries written", label, stats.sets);
  out.counter("pgkit_cache_operations_total", "Statements the cache store sent", label,
              stats.operations);
  out.errors("pgkit_cache_errors_total", "Cache statements that failed, by error kind", label,
             stats);
  out.counter("pgkit_cache_near_hits_total", "Reads answered by the near tier", label, near.hits);
  out.counter("pgkit_cache_near_misses_total",
              "Reads the near tier sent to the table while serving", label, near.misses);
  out.counter("pgkit_cache_near_invalidations_total", "Invalidation notifications applied", label,
              near.invalidations);
  out.counter("pgkit_cache_near_flushes_total", "Times the near tier (or a type) was dropped",
              label, near.flushes);
  out.gauge("pgkit_cache_near_entries", "Entries the near tier holds now", label,
            static_cast<double>(near.entries));
  out.gauge("pgkit_cache_near_bytes", "Bytes the near tier holds now", label,
            static_cast<double>(near.bytes));
}

void collect_store(scrape& out, const std::string& prefix, const std::string& what,
                   const std::string& name, const store_stats& stats) {
  ClientMetric::Label label{"store", name};
  out.counter(prefix + "_operations_total", "Statements the " + what + " store sent", label,
              stats.operations);
  out.errors(prefix + "_errors_total", what + " store statements that failed, by error kind", label,
             stats);
}

void collect_listener(scrape& out, const std::string& name, const listener& watched) {
  auto stats = watched.statistics();
  ClientMetric::Label label{"listener", name};
  out.gauge("pgkit_listener_connected", "1 while connected and listening on every channel", label,
            stats.connected ? 1.0 : 0.0);
  out.counter("pgkit_listener_reconnects_total", "Reconnections after a lost connection", label,
              stats.reconnects);
  out.counter("pgkit_listener_notifications_total", "Notifications received", label,
              stats.notifications);
  out.gauge("pgkit_listener_last_heartbeat_timestamp_seconds",
            "Unix time the server last answered a heartbeat or the LISTENs (0: never)", label,
            std::chrono::duration<double>(stats.last_answer.time_since_epoch()).count());
}

}  // namespace

struct metrics::sources {
  struct entry {
    std::string kind;  // what was observed: pool, cache, session, auth, listener
    std::string name;
    std::function<void(scrape&)> collect;
  };
  std::vector<entry> entries;
  std::vector<std::shared_ptr<pool>> pools;  // kept alive

  void add(std::string kind, const std::string& name, std::function<void(scrape&)> collect) {
    if (name.empty())
      throw usage_error("pgkit::metrics::observe needs a name, not an empty string");
    for (const auto& existing : entries) {
      if (existing.kind == kind && existing.name == name) {
        throw usage_error("pgkit::metrics already observes a " + kind + " named '" + name + "'",
                          "give each observed " + kind + " its own name");
      }
    }
    entries.push_back({std::move(kind), name, std::move(collect)});
  }
};

metrics::metrics() : m_sources(std::make_unique<sources>()) {}

metrics::~metrics() = default;

void metrics::observe(const std::string& name, std::shared_ptr<pool> connections) {
  if (!connections)
    throw usage_error("pgkit::metrics::observe was given no pool");
  std::lock_guard lock{m_mutex};
  const pool* observed = connections.get();
  m_sources->add("pool", name,
                 [name, observed](scrape& out) { collect_pool(out, name, *observed); });
  m_sources->pools.push_back(std::move(connections));
}

void metrics::observe(const std::string& name, const cache_store& store) {
  std::lock_guard lock{m_mutex};
  m_sources->add("cache", name, [name, &store](scrape& out) { collect_cache(out, name, store); });
}

void metrics::observe(const std::string& name, const session_store& store) {
  std::lock_guard lock{m_mutex};
  m_sources->add("session store", name, [name, &store](scrape& out) {
    collect_store(out, "pgkit_session", "session", name, store.statistics());
  });
}

void metrics::observe(const std::string& name, const auth_store& store) {
  std::lock_guard lock{m_mutex};
  m_sources->add("auth store", name, [name, &store](scrape& out) {
    collect_store(out, "pgkit_auth", "auth", name, store.statistics());
  });
}

void metrics::observe(const std::string& name, const listener& watched) {
  std::lock_guard lock{m_mutex};
  m_sources->add("listener", name,
                 [name, &watched](scrape& out) { collect_listener(out, name, watched); });
}

std::vector<prometheus::MetricFamily> metrics::Collect() const {
  scrape out;
  std::lock_guard lock{m_mutex};
  for (const auto& entry : m_sources->entries)
    entry.collect(out);
  return out.take();
}

}  // namespace pgkit
