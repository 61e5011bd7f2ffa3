#pragma once
// The near tier of pgkit::cache_store: a bounded, sharded map in the process (evicting with a
// clock hand, an approximation of LRU that lets readers share a shard's lock), kept coherent
// with the cache table by the notifications that the cache module's trigger sends on channel
// "pgkit_cache" after every committed statement that changed or removed live entries. One
// listener thread per connection target serves every tier of the process (near_hub in
// near_cache.cpp). docs/cache.md states the guarantees.
//
// Why a fill cannot leave a stale entry behind: a reader takes a fill ticket (the tier's
// generation and the invalidation counter of its key's digest) before it reads the table, and
// the entry goes in only when neither changed, checked under the shard's lock. An invalidation
// bumps the counter before it erases, and a flush bumps the generation before it clears, so a
// value read before a write committed is either refused or erased afterwards.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "pgkit/cache.hpp"
#include "pgkit/config.hpp"

namespace pgkit::detail {

class near_hub;
struct near_shard;

/// The channel the cache module's trigger notifies on.
inline constexpr const char* k_near_channel = "pgkit_cache";

/// The 64-bit digest the trigger announces for an entry: the first 8 bytes of SHA-256 over the
/// resource type, a NUL byte and the key (both as UTF-8).
std::uint64_t near_entry_digest(std::string_view resource_type, std::string_view key);
/// The digest the trigger announces for a whole resource type: SHA-256 of its UTF-8 bytes.
std::uint64_t near_type_digest(std::string_view resource_type);

/// One parsed notification of the trigger (see migrations/cache/*_cache_near.sql).
struct near_message {
  enum class scope { entries, types, everything } what = scope::everything;
  std::string schema;
  std::vector<std::uint64_t> digests;  ///< entry digests, or type digests for scope::types
};
/// Parses a payload; std::nullopt when it is not one of the trigger's.
std::optional<near_message> parse_near_message(std::string_view payload);

class near_tier {
 public:
  using clock = std::chrono::steady_clock;

  /// What a reader needs to put the value it is about to read into the tier.
  struct fill_ticket {
    bool usable = false;
    std::uint64_t generation = 0;
    std::uint64_t counter = 0;
    std::uint64_t digest = 0;
    clock::time_point asked_at;
  };

  /// Attaches to the process's listener for `conninfo`, connecting it when it is the first.
  /// Throws config_error for bad options, pgkit::error when the listener cannot connect.
  near_tier(near_options options, std::string schema, const std::string& conninfo);
  ~near_tier();
  near_tier(const near_tier&) = delete;
  near_tier& operator=(const near_tier&) = delete;

  /// Returns the entry's value when the tier holds it, is serving and it has not expired.
  std::optional<std::string> get(std::string_view resource_type, std::string_view key);
  /// Call before reading the table for a key that get() missed.
  fill_ticket prepare_fill(std::string_view resource_type, std::string_view key);
  /// Stores what the table returned for the ticket's key: `remaining` is the entry's lifetime
  /// left as the server computed it (std::nullopt: it never expires).
  void fill(const fill_ticket& ticket, std::string_view resource_type, std::string_view key,
            std::string_view value, std::optional<std::chrono::milliseconds> remaining);

  /// Drops the entry (this process wrote it).
  void invalidate(std::string_view resource_type, std::string_view key);
  /// Drops every entry of `resource_type` (this process cleared it).
  void invalidate_type(std::string_view resource_type);

  /// Returns the counters.
  near_stats statistics() const;

  // Called by the hub on the listener's thread.
  const std::string& schema() const noexcept { return m_schema; }
  void apply(const near_message& message);
  void listener_lost(const std::string& reason);
  void listener_back();
  void start_serving();

 private:
  // What a thread (a group of threads, beyond k_thread_slots) writes on a hit, on a cache line
  // of its own: its hit and miss counters, and the shard it is reading without the shard's lock
  // (see near_shard::read_bias).
  struct alignas(64) thread_slot {
    std::atomic<std::uint64_t> hits{0};
    std::atomic<std::uint64_t> misses{0};
    std::atomic<const near_shard*> reading{nullptr};
  };
  static constexpr std::size_t k_thread_slots = 64;

  near_shard& shard_of(std::string_view composite);
  thread_slot& slot_of_thread();
  std::optional<std::string> read_entry(near_shard& shard, const std::string& composite,
                                        thread_slot& slot);
  std::unique_lock<std::shared_mutex> lock_for_change(near_shard& shard);
  void invalidate_digest(std::uint64_t digest);
  void erase_types(const std::vector<std::uint64_t>& type_digests);
  void flush_all(bool count_flush);
  void report(near_event::kind what, const std::string& reason) noexcept;

  near_options m_options;
  std::string m_schema;
  std::vector<std::unique_ptr<near_shard>> m_shards;
  std::size_t m_entries_per_shard = 0;
  std::size_t m_bytes_per_shard = 0;
  std::atomic<bool> m_serving{false};
  std::atomic<std::uint64_t> m_generation{0};
  std::array<std::atomic<std::uint64_t>, 256> m_counters{};
  std::atomic<std::uint64_t> m_invalidations{0};
  std::atomic<std::uint64_t> m_flushes{0};
  std::array<thread_slot, k_thread_slots> m_slots{};
  std::shared_ptr<near_hub> m_hub;
};

}  // namespace pgkit::detail
