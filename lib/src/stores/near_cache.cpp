#include "stores/near_cache.hpp"

#include <sodium.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include "pgkit/error.hpp"
#include "pgkit/listener.hpp"

namespace pgkit::detail {
namespace {

// What an entry costs besides the heap blocks of its key and value: the entry in its list node,
// the nodes and bucket slots of the two indexes that point at it, and malloc's headers.
constexpr std::size_t k_entry_overhead = 256;
// A change locks one shard (and sends its readers to the lock for a while): enough shards that
// a fill or an invalidation leaves nearly all reads alone, while each keeps at least
// k_min_shard_entries entries so that its eviction order still means something.
constexpr std::size_t k_max_shards = 64;
constexpr std::size_t k_min_shard_entries = 16;
constexpr std::size_t k_min_shard_bytes = 16 * 1024;

// Held in SHARE mode by every near tier's listener session; the cache triggers skip their work
// when they can take it exclusively (migrations/cache/*_cache_near_interest.sql).
constexpr const char* k_near_interest_lock = "SELECT pg_advisory_lock_shared(1885826932, 1)";

// How often the listener checks an idle connection; a connection that dies silently (no RST)
// is noticed within two intervals, which bounds how long the tier can serve without hearing.
constexpr std::chrono::milliseconds k_heartbeat{std::chrono::seconds{2}};

std::uint64_t digest_prefix(const unsigned char* bytes, std::size_t length) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, bytes, length);
  std::uint64_t prefix = 0;
  for (int i = 0; i < 8; ++i)
    prefix = (prefix << 8) | digest[i];
  return prefix;
}

// The heap block a std::string of `size` bytes occupies (none while it fits in the string
// itself), rounded as glibc's malloc rounds.
std::size_t heap_bytes(std::size_t size) {
  constexpr std::size_t inline_capacity = 15;
  if (size <= inline_capacity)
    return 0;
  return (size + 1 + 8 + 15) / 16 * 16;
}

std::string composite_key(std::string_view resource_type, std::string_view key) {
  std::string composite;
  composite.reserve(resource_type.size() + 1 + key.size());
  composite.append(resource_type);
  composite.push_back('\0');
  composite.append(key);
  return composite;
}

std::optional<std::uint64_t> parse_hex64(std::string_view text) {
  if (text.size() != 16)
    return std::nullopt;
  std::uint64_t value = 0;
  for (char c : text) {
    unsigned digit = 0;
    if (c >= '0' && c <= '9')
      digit = static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f')
      digit = static_cast<unsigned>(c - 'a' + 10);
    else
      return std::nullopt;
    value = (value << 4) | digit;
  }
  return value;
}

}  // namespace

std::uint64_t near_entry_digest(std::string_view resource_type, std::string_view key) {
  auto composite = composite_key(resource_type, key);
  return digest_prefix(reinterpret_cast<const unsigned char*>(composite.data()), composite.size());
}

std::uint64_t near_type_digest(std::string_view resource_type) {
  return digest_prefix(reinterpret_cast<const unsigned char*>(resource_type.data()),
                       resource_type.size());
}

std::optional<near_message> parse_near_message(std::string_view payload) {
  std::vector<std::string_view> words;
  while (!payload.empty()) {
    auto end = payload.find(' ');
    auto word = payload.substr(0, end);
    if (!word.empty())
      words.push_back(word);
    if (end == std::string_view::npos)
      break;
    payload.remove_prefix(end + 1);
  }
  if (words.size() < 2 || words[0].size() != 1)
    return std::nullopt;
  near_message message;
  switch (words[0][0]) {
    case 'k':
      message.what = near_message::scope::entries;
      break;
    case 't':
      message.what = near_message::scope::types;
      break;
    case 'a':
      message.what = near_message::scope::everything;
      break;
    default:
      return std::nullopt;
  }
  message.schema = std::string{words[1]};
  for (std::size_t i = 2; i < words.size(); ++i) {
    auto digest = parse_hex64(words[i]);
    if (!digest)
      return std::nullopt;
    message.digests.push_back(*digest);
  }
  if (message.what != near_message::scope::everything && message.digests.empty())
    return std::nullopt;
  return message;
}

// ---- The shards.

// An entry lives in its shard's `ring` (which owns it) and in the shard's two indexes. A hit
// only sets `referenced`; eviction sweeps the ring with a clock hand and spares, once, every
// entry read since the hand last passed it (second chance, an approximation of LRU that lets
// readers share the shard's lock).
struct near_entry {
  std::string composite;  // resource type, NUL, key
  std::string value;
  std::uint64_t digest = 0;
  std::uint64_t type_digest = 0;
  near_tier::clock::time_point expires;
  std::size_t bytes = 0;
  std::size_t slot = 0;  // its index in the shard's ring
  std::atomic<bool> referenced{true};
};

// Readers do not write the shard's lock word while `read_bias` is set (a lock word that every
// hit writes moves between the cores' caches on nearly every hit, as soon as two threads read:
// it halved the 2-thread figure). A reader then announces the shard in its own thread slot,
// checks the bias again and reads; a change clears the bias under the exclusive lock and waits
// until no slot names the shard (near_tier::lock_for_change). Both sides store, then load the
// other's word, sequentially consistent: either the writer sees the reader's slot and waits, or
// the reader sees the bias gone and takes the lock. After a change, readers take the shared
// lock until `bias_after`, so a run of changes (misses that fill) pays the scan of the slots
// once; the first reader after that sets the bias again (biased reader-writer locking, as in
// Dice and Kogan's BRAVO). The lock word and what changes write are on a cache line of their
// own, apart from what readers read.
struct alignas(64) near_shard {
  std::shared_mutex mutex;                  // shared for locked reads, exclusive for changes
  near_tier::clock::time_point bias_after;  // written under the exclusive lock
  alignas(64) std::atomic<bool> read_bias{true};
  std::vector<std::unique_ptr<near_entry>> ring;
  std::size_t hand = 0;
  // Keys are views of the entries' own `composite`, which never moves while the entry lives.
  std::unordered_map<std::string_view, near_entry*> by_key;
  std::unordered_multimap<std::uint64_t, near_entry*> by_digest;
  std::size_t bytes = 0;

  void insert(std::unique_ptr<near_entry> entry) {
    entry->slot = ring.size();
    bytes += entry->bytes;
    by_key.emplace(entry->composite, entry.get());
    by_digest.emplace(entry->digest, entry.get());
    ring.push_back(std::move(entry));
  }

  void erase(near_entry* entry) {
    by_key.erase(entry->composite);
    auto [first, last] = by_digest.equal_range(entry->digest);
    for (auto it = first; it != last; ++it) {
      if (it->second == entry) {
        by_digest.erase(it);
        break;
      }
    }
    bytes -= entry->bytes;
    auto slot = entry->slot;
    if (slot + 1 != ring.size()) {
      ring[slot] = std::move(ring.back());
      ring[slot]->slot = slot;
    }
    ring.pop_back();  // destroys `entry` when it was the last one
  }

  // Evicts one entry: the first the hand finds that was not read since it last passed.
  void evict_one() {
    for (;;) {
      if (hand >= ring.size())
        hand = 0;
      auto* entry = ring[hand].get();
      if (entry->referenced.load(std::memory_order_relaxed)) {
        entry->referenced.store(false, std::memory_order_relaxed);
        ++hand;
        continue;
      }
      erase(entry);  // the last entry moves into the hand's slot, to be looked at next
      return;
    }
  }

  void clear() {
    by_key.clear();
    by_digest.clear();
    ring.clear();
    hand = 0;
    bytes = 0;
  }
};

// ---- One listener per connection target, for every tier of the process.

class near_hub {
 public:
  // Returns the hub for `conninfo` with `tier` attached, connecting a new one when none runs.
  static std::shared_ptr<near_hub> attach(const std::string& conninfo, near_tier* tier) {
    static std::mutex registry_mutex;
    static std::map<std::string, std::weak_ptr<near_hub>> registry;
    std::shared_ptr<near_hub> hub;
    {
      std::lock_guard<std::mutex> lock{registry_mutex};
      auto& slot = registry[conninfo];
      hub = slot.lock();
      if (!hub) {
        hub = std::shared_ptr<near_hub>(new near_hub(conninfo));
        slot = hub;
      }
      for (auto it = registry.begin(); it != registry.end();)
        it = it->second.expired() ? registry.erase(it) : std::next(it);
    }
    hub->add(tier);
    return hub;
  }

  ~near_hub() {
    m_listener->stop();
    if (m_thread.joinable())
      m_thread.join();
  }
  near_hub(const near_hub&) = delete;
  near_hub& operator=(const near_hub&) = delete;

  void detach(near_tier* tier) {
    std::lock_guard<std::mutex> lock{m_mutex};
    m_tiers.erase(std::remove(m_tiers.begin(), m_tiers.end(), tier), m_tiers.end());
  }

 private:
  explicit near_hub(const std::string& conninfo) {
    listener_options options;
    options.heartbeat_interval = k_heartbeat;
    // Interest first, on every connection: from the moment it is granted, every write to a
    // cache table of this database announces itself; and it is granted only once every write
    // that skipped announcing (holding the lock exclusively) has ended.
    options.session_setup = k_near_interest_lock;
    options.on_event = [this](const listener_event& event) { on_event(event); };
    try {
      m_listener = std::make_unique<listener>(conninfo, options);
    } catch (const error& e) {
      throw error(e.kind(), "the near cache's listener did not start: " + std::string{e.what()},
                  "check that the server accepts connections; a transaction that wrote to a "
                  "cache table while no process had a near tier makes a new near tier wait "
                  "until it ends (see pg_locks: advisory lock 1885826932/1)",
                  e.sqlstate());
    }
    m_listener->listen(k_near_channel);
    m_thread = std::thread{[this] { run(); }};
  }

  void add(near_tier* tier) {
    std::lock_guard<std::mutex> lock{m_mutex};
    m_tiers.push_back(tier);
    if (m_connected)
      tier->start_serving();
  }

  void run() noexcept {
    try {
      while (auto received = m_listener->receive()) {
        auto message = parse_near_message(received->payload);
        if (!message)
          continue;
        std::lock_guard<std::mutex> lock{m_mutex};
        for (auto* tier : m_tiers) {
          if (tier->schema() == message->schema)
            tier->apply(*message);
        }
      }
    } catch (const std::exception& e) {
      // receive() only throws when it gave up for good: the tiers stay bypassed.
      std::lock_guard<std::mutex> lock{m_mutex};
      m_connected = false;
      for (auto* tier : m_tiers)
        tier->listener_lost(e.what());
    }
  }

  // Called on the hub's thread, inside receive().
  void on_event(const listener_event& event) {
    std::lock_guard<std::mutex> lock{m_mutex};
    switch (event.kind) {
      case listener_event_kind::connection_lost:
        m_connected = false;
        for (auto* tier : m_tiers)
          tier->listener_lost(event.reason);
        break;
      case listener_event_kind::reconnected:
        m_connected = true;
        for (auto* tier : m_tiers)
          tier->listener_back();
        break;
      case listener_event_kind::reconnect_failed:
        break;
    }
  }

  std::mutex m_mutex;
  std::vector<near_tier*> m_tiers;
  bool m_connected = true;
  std::unique_ptr<listener> m_listener;
  std::thread m_thread;
};

// ---- The tier.

near_tier::near_tier(near_options options, std::string schema, const std::string& conninfo)
    : m_options(std::move(options)), m_schema(std::move(schema)) {
  if (m_options.max_entries == 0)
    throw usage_error("near_options::max_entries is 0", "give the near tier at least one entry");
  if (m_options.max_bytes < 1024)
    throw usage_error("near_options::max_bytes is " + std::to_string(m_options.max_bytes) +
                          ", less than the minimum of 1024",
                      "give the near tier at least 1 KiB");
  auto shards =
      std::min({k_max_shards, std::max<std::size_t>(1, m_options.max_entries / k_min_shard_entries),
                std::max<std::size_t>(1, m_options.max_bytes / k_min_shard_bytes)});
  for (std::size_t i = 0; i < shards; ++i)
    m_shards.push_back(std::make_unique<near_shard>());
  m_entries_per_shard = m_options.max_entries / shards;
  m_bytes_per_shard = m_options.max_bytes / shards;
  m_hub = near_hub::attach(conninfo, this);
}

near_tier::~near_tier() {
  m_hub->detach(this);
}

near_shard& near_tier::shard_of(std::string_view composite) {
  return *m_shards[std::hash<std::string_view>{}(composite) % m_shards.size()];
}

near_tier::thread_slot& near_tier::slot_of_thread() {
  // Each thread has its own slot (threads share one only beyond k_thread_slots), so hits on
  // different cores never write to the same cache line.
  static std::atomic<std::size_t> next_slot{0};
  thread_local std::size_t slot = next_slot.fetch_add(1, std::memory_order_relaxed);
  return m_slots[slot % m_slots.size()];
}

std::optional<std::string> near_tier::read_entry(near_shard& shard, const std::string& composite,
                                                 thread_slot& slot) {
  auto found = shard.by_key.find(composite);
  // An expired entry stays until a fill replaces it or the clock hand evicts it.
  if (found == shard.by_key.end() || (found->second->expires != clock::time_point::max() &&
                                      found->second->expires <= clock::now())) {
    slot.misses.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  auto* entry = found->second;
  if (!entry->referenced.load(std::memory_order_relaxed))
    entry->referenced.store(true, std::memory_order_relaxed);
  slot.hits.fetch_add(1, std::memory_order_relaxed);
  return entry->value;
}

std::optional<std::string> near_tier::get(std::string_view resource_type, std::string_view key) {
  if (!m_serving.load(std::memory_order_acquire))
    return std::nullopt;
  // The lookup key is built in a buffer of the thread's, so a hit allocates only its result.
  thread_local std::string composite;
  composite.assign(resource_type);
  composite.push_back('\0');
  composite.append(key);
  auto& slot = slot_of_thread();
  auto& shard = shard_of(composite);
  if (shard.read_bias.load(std::memory_order_acquire)) {
    const near_shard* none = nullptr;
    // Fails only when another thread of a shared slot is reading: then take the lock.
    if (slot.reading.compare_exchange_strong(none, &shard)) {
      struct leave {
        thread_slot& slot;
        ~leave() { slot.reading.store(nullptr, std::memory_order_release); }
      } leaving{slot};
      if (shard.read_bias.load())
        return read_entry(shard, composite, slot);
    }
  }
  std::shared_lock<std::shared_mutex> lock{shard.mutex};
  auto result = read_entry(shard, composite, slot);
  if (!shard.read_bias.load(std::memory_order_relaxed) && clock::now() >= shard.bias_after)
    shard.read_bias.store(true);
  return result;
}

std::unique_lock<std::shared_mutex> near_tier::lock_for_change(near_shard& shard) {
  std::unique_lock<std::shared_mutex> lock{shard.mutex};
  if (shard.read_bias.load(std::memory_order_relaxed)) {
    shard.read_bias.store(false);
    auto started = clock::now();
    for (auto& slot : m_slots) {
      while (slot.reading.load() == &shard)
        std::this_thread::yield();
    }
    // Readers lock for nine times as long as the scan took (BRAVO's choice): changes that come
    // in a run then pay the scan about once in ten.
    auto now = clock::now();
    shard.bias_after = now + 9 * (now - started);
  }
  return lock;
}

near_tier::fill_ticket near_tier::prepare_fill(std::string_view resource_type,
                                               std::string_view key) {
  fill_ticket ticket;
  if (!m_serving.load())
    return ticket;
  ticket.generation = m_generation.load();
  ticket.digest = near_entry_digest(resource_type, key);
  ticket.counter = m_counters[ticket.digest & 0xff].load();
  ticket.asked_at = clock::now();
  ticket.usable = true;
  return ticket;
}

void near_tier::fill(const fill_ticket& ticket, std::string_view resource_type,
                     std::string_view key, std::string_view value,
                     std::optional<std::chrono::milliseconds> remaining) {
  if (!ticket.usable)
    return;
  // The server computed `remaining` after the ticket was taken, so counting it from then ends
  // the entry no later than the row's expires_at.
  auto expires = clock::time_point::max();
  if (remaining) {
    if (remaining->count() <= 0)
      return;
    expires = ticket.asked_at + *remaining;
    if (expires <= clock::now())
      return;
  }
  auto entry = std::make_unique<near_entry>();
  entry->composite = composite_key(resource_type, key);
  entry->bytes = k_entry_overhead + heap_bytes(entry->composite.size()) + heap_bytes(value.size());
  if (entry->bytes > m_bytes_per_shard)
    return;
  entry->value = std::string{value};
  entry->digest = ticket.digest;
  entry->type_digest = near_type_digest(resource_type);
  entry->expires = expires;
  auto& shard = shard_of(entry->composite);
  auto lock = lock_for_change(shard);
  if (!m_serving.load() || m_generation.load() != ticket.generation ||
      m_counters[ticket.digest & 0xff].load() != ticket.counter) {
    return;
  }
  auto found = shard.by_key.find(entry->composite);
  if (found != shard.by_key.end())
    shard.erase(found->second);
  shard.insert(std::move(entry));
  while (shard.ring.size() > m_entries_per_shard || shard.bytes > m_bytes_per_shard)
    shard.evict_one();
}

void near_tier::invalidate_digest(std::uint64_t digest) {
  // The counter first: a fill that checks it after this cannot insert, and one that checked it
  // before has inserted already, so the erase below finds its entry.
  m_counters[digest & 0xff].fetch_add(1);
  for (auto& shard : m_shards) {
    // Looked for under the shared lock first, so that only the shard holding the entry (if
    // any) turns its readers to the lock: a fill that inserted before the counter moved did
    // so under the exclusive lock, which this shared one follows.
    {
      std::shared_lock<std::shared_mutex> looking{shard->mutex};
      if (shard->by_digest.find(digest) == shard->by_digest.end())
        continue;
    }
    auto lock = lock_for_change(*shard);
    auto [it, last] = shard->by_digest.equal_range(digest);
    while (it != last) {
      auto* entry = it->second;
      ++it;  // erase() removes the element `it` was on, which invalidates only that iterator
      shard->erase(entry);
    }
  }
}

void near_tier::invalidate(std::string_view resource_type, std::string_view key) {
  invalidate_digest(near_entry_digest(resource_type, key));
}

void near_tier::invalidate_type(std::string_view resource_type) {
  erase_types({near_type_digest(resource_type)});
}

void near_tier::erase_types(const std::vector<std::uint64_t>& type_digests) {
  m_generation.fetch_add(1);
  for (auto& shard : m_shards) {
    auto lock = lock_for_change(*shard);
    for (std::size_t i = 0; i < shard->ring.size();) {
      auto* entry = shard->ring[i].get();
      if (std::find(type_digests.begin(), type_digests.end(), entry->type_digest) !=
          type_digests.end()) {
        shard->erase(entry);  // the last entry moves into slot i, looked at next
      } else {
        ++i;
      }
    }
  }
}

void near_tier::flush_all(bool count_flush) {
  m_generation.fetch_add(1);
  for (auto& shard : m_shards) {
    auto lock = lock_for_change(*shard);
    shard->clear();
  }
  if (count_flush)
    m_flushes.fetch_add(1);
}

void near_tier::apply(const near_message& message) {
  switch (message.what) {
    case near_message::scope::entries:
      for (auto digest : message.digests)
        invalidate_digest(digest);
      break;
    case near_message::scope::types:
      erase_types(message.digests);
      m_flushes.fetch_add(1);
      break;
    case near_message::scope::everything:
      flush_all(true);
      break;
  }
  // Counted once applied: whoever sees the count move is no longer served what it dropped.
  m_invalidations.fetch_add(1);
}

void near_tier::listener_lost(const std::string& reason) {
  m_serving.store(false);
  m_generation.fetch_add(1);
  report(near_event::kind::listener_lost, reason);
}

void near_tier::start_serving() {
  m_serving.store(true);
}

void near_tier::listener_back() {
  flush_all(true);
  report(near_event::kind::flushed,
         "the invalidation listener reconnected; notifications sent while it was away may have "
         "been lost");
  m_serving.store(true);
  report(near_event::kind::listener_back, "the invalidation listener is listening again");
}

void near_tier::report(near_event::kind what, const std::string& reason) noexcept {
  if (!m_options.on_event)
    return;
  try {
    m_options.on_event(near_event{what, reason});
  } catch (...) {
    // on_event must not throw; the listener's thread must survive one that does.
  }
}

near_stats near_tier::statistics() const {
  near_stats stats;
  for (const auto& counters : m_slots) {
    stats.hits += counters.hits.load(std::memory_order_relaxed);
    stats.misses += counters.misses.load(std::memory_order_relaxed);
  }
  for (const auto& shard : m_shards) {
    std::shared_lock<std::shared_mutex> lock{shard->mutex};
    stats.entries += shard->ring.size();
    stats.bytes += shard->bytes;
  }
  stats.invalidations = m_invalidations.load();
  stats.flushes = m_flushes.load();
  return stats;
}

}  // namespace pgkit::detail
