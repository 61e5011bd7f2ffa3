#pragma once
// Counters that many threads bump at once without sharing a cache line: each thread adds to its
// own stripe (relaxed atomics, no lock), and a reader sums the stripes. For the stores'
// operation and error counters, which metrics read while the stores run (docs/metrics.md).

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "pgkit/error.hpp"
#include "pgkit/store.hpp"

namespace pgkit::detail {

/// The stripe a thread adds to: threads are dealt stripes in turn as they first count.
inline std::size_t counter_stripe(std::size_t stripes) noexcept {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t mine = next.fetch_add(1, std::memory_order_relaxed);
  return mine % stripes;
}

/// `Slots` counters, striped over 8 cache lines per slot group.
template <std::size_t Slots>
class striped_counters {
 public:
  /// Adds `amount` to counter `slot`. Never blocks.
  void add(std::size_t slot, std::uint64_t amount = 1) noexcept {
    m_stripes[counter_stripe(stripe_count)].values[slot].fetch_add(amount,
                                                                   std::memory_order_relaxed);
  }
  /// Returns counter `slot`, summed over the stripes (a concurrent add may or may not show).
  std::uint64_t read(std::size_t slot) const noexcept {
    std::uint64_t total = 0;
    for (const auto& lane : m_stripes)
      total += lane.values[slot].load(std::memory_order_relaxed);
    return total;
  }

 private:
  static constexpr std::size_t stripe_count = 8;
  struct alignas(64) stripe {
    std::array<std::atomic<std::uint64_t>, Slots> values{};
  };
  std::array<stripe, stripe_count> m_stripes{};
};

/// A store's counters: statements sent, failed statements by error_kind, and `Extra` counters
/// of the store's own.
template <std::size_t Extra = 0>
class store_counters {
 public:
  /// Counts one statement sent.
  void sent() noexcept { m_counters.add(0); }
  /// Counts one failed statement of `kind`.
  void failed(error_kind kind) noexcept { m_counters.add(1 + static_cast<std::size_t>(kind)); }
  /// Adds to the store's own counter `which`.
  void add(std::size_t which, std::uint64_t amount = 1) noexcept {
    m_counters.add(1 + error_kind_count + which, amount);
  }
  /// Returns the store's own counter `which`.
  std::uint64_t read(std::size_t which) const noexcept {
    return m_counters.read(1 + error_kind_count + which);
  }
  /// Fills the shared part of `stats`.
  void read_into(store_stats& stats) const noexcept {
    stats.operations = m_counters.read(0);
    for (std::size_t kind = 0; kind < error_kind_count; ++kind)
      stats.errors[kind] = m_counters.read(1 + kind);
  }

 private:
  striped_counters<1 + error_kind_count + Extra> m_counters;
};

}  // namespace pgkit::detail
