#include "pgkit/cache.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>

#include "core/pqxx_compat.hpp"
#include "core/sqlstate.hpp"
#include "core/striped_counters.hpp"
#include "core/text.hpp"
#include "core/ttl_limit.hpp"
#include "pgkit/config.hpp"
#include "pgkit/migration.hpp"
#include "stores/cache_statements.hpp"
#include "stores/citus.hpp"
#include "stores/expiry_sweep.hpp"
#include "stores/module_check.hpp"
#include "stores/near_cache.hpp"
#include "stores/statements.hpp"
#include "stores/text_array.hpp"

namespace pgkit {
namespace {

// clear() deletes this many rows per statement, so that no statement holds row locks on a
// whole resource type at once.
constexpr std::size_t k_clear_batch = 10000;

// sweep() deletes this many rows per batch unless told otherwise.
constexpr std::size_t k_sweep_batch = 10000;

// A bytea value larger than this cannot exist in PostgreSQL; set_many() packs all values of a
// call into one parameter, so their sum must stay under it.
constexpr std::size_t k_max_bytea = (std::size_t{1} << 30) - 1;

void check_text(std::string_view what, std::string_view text, std::size_t max_size,
                std::string_view option) {
  if (text.empty())
    throw usage_error("the cache " + std::string{what} + " is empty",
                      "give every cache entry a non-empty " + std::string{what});
  auto nul = text.find('\0');
  if (nul != std::string_view::npos) {
    throw usage_error("the cache " + std::string{what} + " (" + std::to_string(text.size()) +
                          " bytes) contains a NUL byte at offset " + std::to_string(nul),
                      "PostgreSQL text cannot hold NUL bytes; encode binary " + std::string{what} +
                          "s, e.g. as hex or base64");
  }
  if (text.size() > max_size) {
    throw usage_error("the cache " + std::string{what} + " is " + std::to_string(text.size()) +
                          " bytes long, more than the maximum of " + std::to_string(max_size),
                      option.empty() ? std::string{"use a shorter " + std::string{what}}
                                     : "use a shorter " + std::string{what} +
                                           " (a digest of it, say) or raise cache_options::" +
                                           std::string{option});
  }
}

void check_value(std::string_view key, std::string_view value, std::size_t max_size) {
  if (value.size() > max_size) {
    std::string shown = key.size() > 60 ? std::string{key.substr(0, 60)} + "..." : std::string{key};
    throw usage_error("the cache value for key '" + shown + "' is " + std::to_string(value.size()) +
                          " bytes, more than the maximum of " + std::to_string(max_size) +
                          "; nothing was stored",
                      "store smaller values or raise cache_options::max_value_size");
  }
}

void check_ttl(const std::optional<ttl>& lifetime) {
  if (lifetime && lifetime->count() < 0) {
    throw usage_error("the cache ttl is negative (" + std::to_string(lifetime->count()) + " ms)",
                      "give a ttl of zero or more, or never_expires");
  }
  if (lifetime)
    detail::check_ttl_limit(*lifetime, "the cache ttl", detail::ttl_of::cache_entry);
}

std::optional<std::int64_t> ttl_param(const std::optional<ttl>& lifetime) {
  if (!lifetime)
    return std::nullopt;
  return static_cast<std::int64_t>(lifetime->count());
}

using detail::text_array;

std::string int_array(const std::vector<std::size_t>& numbers) {
  std::string out = "{";
  for (std::size_t i = 0; i < numbers.size(); ++i) {
    if (i > 0)
      out += ',';
    out += std::to_string(numbers[i]);
  }
  return out + "}";
}

using detail::binary_param;
using detail::bound_param;
using detail::int_param;
using detail::statement;
using detail::text_param;

std::string missing_table(const std::string& schema) {
  return "there is no table " + schema + ".cache";
}

error not_applied(const std::string& schema) {
  return detail::module_not_applied("cache", schema, missing_table(schema));
}

// Rethrows `e` (call only inside its catch block); a missing table or schema becomes the "not
// applied" error with the command that fixes it, and a standby's refusal (it cannot read an
// UNLOGGED table during recovery, and takes no writes) says why.
[[noreturn]] void rethrow_store_error(const error& e, const std::string& schema) {
  // 0A000 is also what Citus answers for a statement it cannot distribute: only the
  // recovery refusal is a standby's.
  const bool standby_read =
      detail::is(e.sqlstate(), detail::sql_condition::feature_not_supported) &&
      std::string_view{e.what()}.find("during recovery") != std::string_view::npos;
  if (standby_read || detail::is(e.sqlstate(), detail::sql_condition::read_only_sql_transaction)) {
    throw error(error_kind::sql,
                "the cache table " + schema +
                    ".cache cannot be used on a standby: it is UNLOGGED, so its rows exist only "
                    "on the primary",
                "give the cache a pool on the primary (with a multi-host URL, "
                "target_session_attrs=read-write); replicas serve session reads only",
                e.sqlstate());
  }
  detail::rethrow_store_error(e, "cache", schema, missing_table(schema));
}

// The store's own counters, after store_counters' statements and errors.
enum cache_counter : std::size_t { hits, misses, sets };
using cache_counters = detail::store_counters<3>;

// Runs one statement of the store on the lease's connection, counting it (and its failure).
detail::result run_statement(cache_counters& counters, const lease& borrowed, const statement& stmt,
                             const std::vector<bound_param>& parameters, const std::string& context,
                             const std::string& schema) {
  counters.sent();
  try {
    return detail::run_statement(borrowed, stmt, parameters, context);
  } catch (const error& e) {
    counters.failed(e.kind());
    rethrow_store_error(e, schema);
  }
}

// A bigint column of milliseconds left, or std::nullopt for NULL (never expires).
std::optional<std::chrono::milliseconds> remaining(const detail::result& rows, int row,
                                                   int column) {
  if (rows.is_null(row, column))
    return std::nullopt;
  return std::chrono::milliseconds{rows.int8(row, column)};
}

// The notification a store write sends itself where the table has no triggers to send it (a
// distributed Citus table: its triggers would run on the shards, whose NOTIFY reaches no
// listener on the coordinator). The same payloads as the near tier's trigger
// (migrations/cache/*_cache_near.sql): "k SCHEMA D1 D2 ..." for up to 400 entries, else the
// resource type.
std::string hex16(std::uint64_t digest) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string text(16, '0');
  for (int i = 15; i >= 0; --i, digest >>= 4)
    text[static_cast<std::size_t>(i)] = digits[digest & 0xf];
  return text;
}

std::string announcement(const std::string& schema, std::string_view resource_type,
                         const std::vector<std::string_view>& keys) {
  constexpr std::size_t max_listed = 400;
  if (keys.empty() || keys.size() > max_listed)
    return "t " + schema + " " + hex16(detail::near_type_digest(resource_type));
  std::string payload = "k " + schema;
  for (auto key : keys)
    payload += " " + hex16(detail::near_entry_digest(resource_type, key));
  return payload;
}

// Whether the store's table is distributed by Citus (then its writes announce themselves, and
// a few statements take their distributed form): asked once, at the first call that needs it.
bool distributed(std::atomic<int>& known, const lease& borrowed, const std::string& table) {
  int value = known.load(std::memory_order_acquire);
  if (value < 0) {
    value = detail::is_distributed_table(detail::wire_of(borrowed), table,
                                         "looking for the cache table")
                ? 1
                : 0;
    known.store(value, std::memory_order_release);
  }
  return value == 1;
}

// Drops what a write touched from this process's near tier when the write is over, committed or
// failed (a failed commit may still have happened), so that the writer reads its own write at
// once; the trigger's notification tells every other process.
class near_write {
 public:
  near_write(detail::near_tier* tier, std::string_view resource_type)
      : m_tier(tier), m_resource_type(resource_type) {}
  near_write(detail::near_tier* tier, std::string_view resource_type, std::string_view key)
      : near_write(tier, resource_type) {
    m_keys.push_back(key);
  }
  ~near_write() {
    if (m_tier == nullptr)
      return;
    try {
      if (m_whole_type)
        m_tier->invalidate_type(m_resource_type);
      for (auto key : m_keys)
        m_tier->invalidate(m_resource_type, key);
    } catch (...) {
      // Only allocation can fail here; the notification still drops the entries.
    }
  }
  near_write(const near_write&) = delete;
  near_write& operator=(const near_write&) = delete;

  void add(std::string_view key) {
    if (m_tier != nullptr)
      m_keys.push_back(key);
  }
  void whole_type() { m_whole_type = true; }

 private:
  detail::near_tier* m_tier;
  std::string_view m_resource_type;
  std::vector<std::string_view> m_keys;
  bool m_whole_type = false;
};

}  // namespace

// One store's statements: names carry a hash of the schema so that stores on different schemas
// can share a connection, and the SQL names the table with its schema (the pool sets no
// search_path).
struct cache_store::statements {
  explicit statements(const std::string& schema)
      : get(make(detail::cache_sql::k_get, schema)),
        purge(make(detail::cache_sql::k_purge, schema)),
        get_many(make(detail::cache_sql::k_get_many, schema)),
        get_near(make(detail::cache_sql::k_get_near, schema)),
        get_many_near(make(detail::cache_sql::k_get_many_near, schema)),
        set(make(detail::cache_sql::k_set, schema)),
        set_many(make(detail::cache_sql::k_set_many, schema)),
        remove(make(detail::cache_sql::k_remove, schema)),
        clear(make(detail::cache_sql::k_clear, schema)),
        expire(make(detail::cache_sql::k_expire, schema)),
        touch(make(detail::cache_sql::k_touch, schema)),
        gc_batch(make(detail::cache_sql::k_gc_batch, schema)),
        gc_batch_of_type(make(detail::cache_sql::k_gc_batch_of_type, schema)),
        gc_batch_alone(make(detail::cache_sql::k_gc_batch_alone, schema)),
        gc_batch_of_type_alone(make(detail::cache_sql::k_gc_batch_of_type_alone, schema)),
        count_expired(make(detail::cache_sql::k_count_expired, schema)),
        count_expired_of_type(make(detail::cache_sql::k_count_expired_of_type, schema)),
        announce(make(detail::cache_sql::k_announce, schema)),
        purge_distributed(make(detail::cache_sql::k_purge_distributed, schema)),
        get_many_distributed(make(detail::cache_sql::k_get_many_distributed, schema)),
        get_many_near_distributed(make(detail::cache_sql::k_get_many_near_distributed, schema)),
        table(detail::quote_identifier(schema) + ".cache"),
        clear_per_shard(detail::per_shard_statement("cache", detail::cache_sql::k_clear_shard,
                                                    schema, table)) {}

  static statement make(const detail::statement_text& text, const std::string& schema) {
    return detail::make_statement("cache", text, schema);
  }

  statement get, purge, get_many, get_near, get_many_near, set, set_many, remove, clear, expire,
      touch, gc_batch, gc_batch_of_type, gc_batch_alone, gc_batch_of_type_alone, count_expired,
      count_expired_of_type, announce, purge_distributed, get_many_distributed,
      get_many_near_distributed;
  std::string table;
  statement clear_per_shard;
  // 1 when the table is distributed by Citus (writes then send their near-tier notification
  // themselves), -1 until a call asks.
  mutable std::atomic<int> distributed{-1};
};

// The statement that deletes what a reader found expired.
template <typename Statements>
const statement& purge_of(const Statements& sql, const lease& borrowed) {
  return distributed(sql.distributed, borrowed, sql.table) ? sql.purge_distributed : sql.purge;
}

// Runs a write of `keys` (none: the whole resource type) on the lease's connection; where the
// table has no triggers to announce it to near tiers (Citus), announces it in its transaction.
// `sql` is the store's statements (cache_store::statements).
template <typename Statements>
detail::result write_announced(cache_counters& counters, const lease& borrowed,
                               const Statements& sql, const statement& stmt,
                               const std::vector<bound_param>& parameters,
                               const std::string& context, const std::string& schema,
                               std::string_view resource_type,
                               const std::vector<std::string_view>& keys) {
  if (!distributed(sql.distributed, borrowed, sql.table))
    return run_statement(counters, borrowed, stmt, parameters, context, schema);
  // The write and its notification in one transaction: delivered when, and only if, it commits.
  const auto on = detail::wire_of(borrowed);
  detail::block transaction{on, context};
  auto result = run_statement(counters, borrowed, stmt, parameters, context, schema);
  run_statement(counters, borrowed, sql.announce,
                {text_param(announcement(schema, resource_type, keys))}, context, schema);
  transaction.commit(context);
  return result;
}

cache_store::cache_store(std::shared_ptr<pool> connections, cache_options options)
    : m_pool(std::move(connections)),
      m_options(std::move(options)),
      m_counters(std::make_shared<cache_counters>()) {
  if (!m_pool)
    throw usage_error("the cache store was given no pool");
  m_schema = resolve_schema(m_options.schema, m_pool->config());
  validate_schema_name(m_schema);
  m_statements = std::make_unique<const statements>(m_schema);
  if (m_options.near)
    start_near();
}

void cache_store::start_near() {
  const auto& near = *m_options.near;
  const auto& config = m_pool->config();
  if (near.listen_conninfo.empty() && config.pooler == pooler_mode::pgbouncer_transaction) {
    throw config_error(
        "the near cache needs a LISTEN session, which a transaction-mode pooler (pooler = "
        "\"pgbouncer-transaction\") does not keep",
        "set near_options::listen_conninfo to a direct connection to PostgreSQL (or one through "
        "a session-mode pooler)");
  }
  {
    // The tier is only coherent when the cache module's triggers announce every write, in
    // every replication role (ENABLE ALWAYS, from the module's interest migration on).
    auto lease = m_pool->acquire();
    auto found = detail::wire_of(lease).run(
        "SELECT to_regclass($1) IS NOT NULL, "
        "(SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass($1) "
        "AND tgname LIKE 'cache\\_announce\\_%' AND tgenabled = 'A'), "
        "(SELECT string_agg(tgname, ', ' ORDER BY tgname) FROM pg_trigger "
        "WHERE tgrelid = to_regclass($1) AND tgname LIKE 'cache\\_announce\\_%' "
        "AND tgenabled = 'D'), "
        "current_setting('client_encoding')",
        {m_statements->table}, detail::result_format::text, "checking the cache table");
    if (found.view(0, 0) != "t")
      throw not_applied(m_schema);
    if (!found.is_null(0, 2)) {
      throw config_error("the cache table's invalidation triggers (" +
                             std::string{found.view(0, 2)} + ") in schema " + m_schema +
                             " are disabled, so writes would not reach other processes' near tiers",
                         "enable them again: ALTER TABLE " + m_statements->table +
                             " ENABLE ALWAYS TRIGGER NAME, for each one named");
    }
    // A table distributed by Citus has no triggers (they would run on the shards): the
    // stores announce their writes themselves.
    if (found.view(0, 1) != "3" &&
        !distributed(m_statements->distributed, lease, m_statements->table)) {
      throw error(error_kind::undefined_object,
                  "the cache module in schema " + m_schema +
                      " lacks the invalidation triggers that the near tier needs, firing in every "
                      "replication role (it was applied by an older pgkit)",
                  detail::apply_hint("cache", m_schema));
    }
    // The trigger announces digests of the keys' UTF-8 bytes, which are the application's own
    // bytes only when the connection speaks UTF-8.
    if (found.view(0, 3) != "UTF8") {
      throw config_error(
          "the near cache needs client_encoding UTF8, and the pool's connections "
          "use " +
              std::string{found.view(0, 3)},
          "set client_encoding=UTF8 in the connection settings (or "
          "PGCLIENTENCODING)");
    }
  }
  // Named so that operators can tell the listener apart in pg_stat_activity (an
  // application_name in the configuration still wins).
  m_near = std::make_unique<detail::near_tier>(
      near, m_schema,
      near.listen_conninfo.empty()
          ? config.conninfo() + " fallback_application_name='pgkit near cache'"
          : near.listen_conninfo);
}

cache_stats cache_store::statistics() const {
  cache_stats stats;
  m_counters->read_into(stats);
  stats.hits = m_counters->read(cache_counter::hits);
  stats.misses = m_counters->read(cache_counter::misses);
  stats.sets = m_counters->read(cache_counter::sets);
  return stats;
}

near_stats cache_store::near_statistics() const {
  return m_near ? m_near->statistics() : near_stats{};
}

cache_store::~cache_store() = default;

void cache_store::check() {
  detail::check_module_table(*m_pool->acquire(), "cache", m_schema, "cache");
}

namespace {

// Runs `read` and, when the store degrades read failures, turns a database failure into
// `fallback` after reporting it. Usage errors always pass.
template <typename Read, typename Fallback>
auto guarded_read(const cache_options& options, Read&& read, Fallback&& fallback) {
  try {
    return read();
  } catch (const error& e) {
    if (options.on_read_failure != cache_read_failure::as_miss || e.kind() == error_kind::usage)
      throw;
    if (options.on_failure)
      options.on_failure(e);
    return fallback();
  }
}

}  // namespace

std::optional<std::string> cache_store::get(std::string_view resource_type, std::string_view key) {
  check_text("resource type", resource_type, m_options.max_key_size, "max_key_size");
  check_text("key", key, m_options.max_key_size, "max_key_size");
  detail::near_tier::fill_ticket ticket;
  if (m_near) {
    if (auto hit = m_near->get(resource_type, key))
      return hit;
    ticket = m_near->prepare_fill(resource_type, key);
  }
  return guarded_read(
      m_options,
      [&]() -> std::optional<std::string> {
        auto lease = m_pool->acquire();
        std::vector<bound_param> parameters{text_param(resource_type), text_param(key)};
        auto rows = run_statement(*m_counters, lease,
                                  ticket.usable ? m_statements->get_near : m_statements->get,
                                  parameters, "reading the cache", m_schema);
        if (rows.rows() == 0 || rows.is_null(0, 0))
          m_counters->add(cache_counter::misses);
        if (rows.rows() == 0)
          return std::nullopt;
        if (!rows.is_null(0, 0)) {
          m_counters->add(cache_counter::hits);
          auto value = rows.bytes(0, 0);
          if (ticket.usable)
            m_near->fill(ticket, resource_type, key, value, remaining(rows, 0, 1));
          return value;
        }
        parameters[1] = text_param(text_array(std::vector<std::string_view>{key}));
        run_statement(*m_counters, lease, purge_of(*m_statements, lease), parameters,
                      "deleting an expired cache entry", m_schema);
        return std::nullopt;
      },
      [] { return std::optional<std::string>{}; });
}

std::vector<std::optional<std::string>> cache_store::get_many(
    std::string_view resource_type, const std::vector<std::string>& keys) {
  check_text("resource type", resource_type, m_options.max_key_size, "max_key_size");
  for (const auto& key : keys)
    check_text("key", key, m_options.max_key_size, "max_key_size");
  if (keys.empty())
    return {};
  std::vector<std::optional<std::string>> values(keys.size());
  // The positions in `keys` that the table is asked for: all of them, or the near tier's misses
  // with their fill tickets.
  std::vector<std::size_t> asked;
  std::vector<detail::near_tier::fill_ticket> tickets;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (m_near) {
      if ((values[i] = m_near->get(resource_type, keys[i])))
        continue;
      tickets.push_back(m_near->prepare_fill(resource_type, keys[i]));
    }
    asked.push_back(i);
  }
  if (asked.empty())
    return values;
  const bool fill = !tickets.empty() && tickets.front().usable;
  return guarded_read(
      m_options,
      [&]() {
        auto lease = m_pool->acquire();
        std::vector<std::string_view> asked_keys;
        for (auto i : asked)
          asked_keys.push_back(keys[i]);
        std::vector<bound_param> parameters{text_param(resource_type),
                                            text_param(text_array(asked_keys))};
        const bool spread = distributed(m_statements->distributed, lease, m_statements->table);
        const auto& read =
            fill ? (spread ? m_statements->get_many_near_distributed : m_statements->get_many_near)
                 : (spread ? m_statements->get_many_distributed : m_statements->get_many);
        auto rows =
            run_statement(*m_counters, lease, read, parameters, "reading the cache", m_schema);
        std::vector<std::string_view> expired;
        for (int row = 0; row < rows.rows(); ++row) {
          auto position = rows.int8(row, 0);
          if (position < 1 || static_cast<std::size_t>(position) > asked.size())
            throw error(error_kind::internal, "get_many: the server returned a bad position");
          auto slot = static_cast<std::size_t>(position - 1);
          auto index = asked[slot];
          if (rows.is_null(row, 1)) {
            expired.push_back(keys[index]);
            continue;
          }
          values[index] = rows.bytes(row, 1);
          if (fill) {
            m_near->fill(tickets[slot], resource_type, keys[index], *values[index],
                         remaining(rows, row, 2));
          }
        }
        std::size_t found = 0;
        for (auto i : asked)
          found += values[i].has_value() ? 1U : 0U;
        m_counters->add(cache_counter::hits, found);
        m_counters->add(cache_counter::misses, asked.size() - found);
        if (!expired.empty()) {
          parameters[1] = text_param(text_array(expired));
          run_statement(*m_counters, lease, purge_of(*m_statements, lease), parameters,
                        "deleting expired cache entries", m_schema);
        }
        return values;
      },
      [&] {
        for (auto i : asked)
          values[i].reset();
        return values;
      });
}

void cache_store::set(std::string_view resource_type, std::string_view key, std::string_view value,
                      std::optional<ttl> lifetime) {
  check_text("resource type", resource_type, m_options.max_key_size, "max_key_size");
  check_text("key", key, m_options.max_key_size, "max_key_size");
  check_value(key, value, m_options.max_value_size);
  check_ttl(lifetime);
  near_write written{m_near.get(), resource_type, key};
  auto lease = m_pool->acquire();
  write_announced(*m_counters, lease, *m_statements, m_statements->set,
                  {text_param(resource_type), text_param(key), binary_param(value),
                   int_param(ttl_param(lifetime))},
                  "writing to the cache", m_schema, resource_type, {key});
  m_counters->add(cache_counter::sets);
}

void cache_store::set(std::string_view resource_type, std::string_view key,
                      std::string_view value) {
  set(resource_type, key, value, m_options.default_ttl);
}

void cache_store::set_many(std::string_view resource_type,
                           const std::vector<std::pair<std::string, std::string>>& entries,
                           std::optional<ttl> lifetime) {
  check_text("resource type", resource_type, m_options.max_key_size, "max_key_size");
  check_ttl(lifetime);
  // Sorted by key so that concurrent calls lock rows in the same order (no deadlock), and
  // without duplicates, which one INSERT ... ON CONFLICT cannot update twice.
  std::map<std::string_view, std::string_view> latest;
  for (const auto& [key, value] : entries) {
    check_text("key", key, m_options.max_key_size, "max_key_size");
    check_value(key, value, m_options.max_value_size);
    latest[key] = value;
  }
  if (latest.empty())
    return;
  near_write written{m_near.get(), resource_type};
  for (const auto& entry : latest)
    written.add(entry.first);
  std::vector<std::string_view> keys;
  std::vector<std::size_t> starts, lengths;
  std::string packed;
  for (const auto& [key, value] : latest) {
    if (packed.size() + value.size() > k_max_bytea) {
      throw usage_error("the values given to one set_many call add up to more than 1 GiB",
                        "split the call");
    }
    keys.push_back(key);
    starts.push_back(packed.size() + 1);
    lengths.push_back(value.size());
    packed.append(value);
  }
  auto lease = m_pool->acquire();
  write_announced(
      *m_counters, lease, *m_statements, m_statements->set_many,
      {text_param(resource_type), text_param(text_array(keys)), text_param(int_array(starts)),
       text_param(int_array(lengths)), binary_param(packed), int_param(ttl_param(lifetime))},
      "writing to the cache", m_schema, resource_type, keys);
  m_counters->add(cache_counter::sets, latest.size());
}

void cache_store::set_many(std::string_view resource_type,
                           const std::vector<std::pair<std::string, std::string>>& entries) {
  set_many(resource_type, entries, m_options.default_ttl);
}

bool cache_store::remove(std::string_view resource_type, std::string_view key) {
  check_text("resource type", resource_type, m_options.max_key_size, "max_key_size");
  check_text("key", key, m_options.max_key_size, "max_key_size");
  near_write written{m_near.get(), resource_type, key};
  auto lease = m_pool->acquire();
  auto result = write_announced(*m_counters, lease, *m_statements, m_statements->remove,
                                {text_param(resource_type), text_param(key)},
                                "removing from the cache", m_schema, resource_type, {key});
  return result.affected_rows() > 0;
}

std::size_t cache_store::clear(std::string_view resource_type) {
  check_text("resource type", resource_type, m_options.max_key_size, "max_key_size");
  near_write written{m_near.get(), resource_type};
  written.whole_type();
  auto lease = m_pool->acquire();
  const std::vector<bound_param> parameters{text_param(resource_type),
                                            int_param(static_cast<std::int64_t>(k_clear_batch))};
  std::size_t deleted = 0;
  // On Citus each batch runs shard by shard; the sum comes back short only when every shard's
  // batch did.
  const bool per_shard = distributed(m_statements->distributed, lease, m_statements->table);
  const std::vector<bound_param> shard_parameters{
      int_param(static_cast<std::int64_t>(k_clear_batch)), text_param(resource_type)};
  for (;;) {
    std::size_t batch = 0;
    if (per_shard) {
      auto rows =
          write_announced(*m_counters, lease, *m_statements, m_statements->clear_per_shard,
                          shard_parameters, "clearing the cache", m_schema, resource_type, {});
      if (!rows.is_null(0, 1)) {
        throw error(error_kind::sql,
                    "clearing the cache: a shard failed: " + std::string{rows.view(0, 1)},
                    "clear again; the other shards' batches are committed");
      }
      batch = static_cast<std::size_t>(rows.int8(0, 0));
    } else {
      batch = write_announced(*m_counters, lease, *m_statements, m_statements->clear, parameters,
                              "clearing the cache", m_schema, resource_type, {})
                  .affected_rows();
    }
    deleted += batch;
    if (batch < k_clear_batch)
      return deleted;
  }
}

std::string cache_store::get_or_set(std::string_view resource_type, std::string_view key,
                                    std::optional<ttl> lifetime,
                                    const std::function<std::string()>& compute) {
  check_ttl(lifetime);
  if (auto hit = get(resource_type, key))
    return *std::move(hit);
  std::string value = compute();
  try {
    set(resource_type, key, value, lifetime);
  } catch (const error& e) {
    if (m_options.on_read_failure != cache_read_failure::as_miss || e.kind() == error_kind::usage)
      throw;
    if (m_options.on_failure)
      m_options.on_failure(e);
  }
  return value;
}

bool cache_store::expire(std::string_view resource_type, std::string_view key,
                         std::optional<ttl> lifetime) {
  check_text("resource type", resource_type, m_options.max_key_size, "max_key_size");
  check_text("key", key, m_options.max_key_size, "max_key_size");
  check_ttl(lifetime);
  near_write written{m_near.get(), resource_type, key};
  auto lease = m_pool->acquire();
  auto result =
      write_announced(*m_counters, lease, *m_statements, m_statements->expire,
                      {text_param(resource_type), text_param(key), int_param(ttl_param(lifetime))},
                      "changing a cache entry's expiry", m_schema, resource_type, {key});
  return result.affected_rows() > 0;
}

bool cache_store::touch(std::string_view resource_type, std::string_view key, ttl lifetime) {
  check_text("resource type", resource_type, m_options.max_key_size, "max_key_size");
  check_text("key", key, m_options.max_key_size, "max_key_size");
  check_ttl(lifetime);
  auto lease = m_pool->acquire();
  auto rows = run_statement(*m_counters, lease, m_statements->touch,
                            {text_param(resource_type), text_param(key),
                             int_param(static_cast<std::int64_t>(lifetime.count()))},
                            "touching a cache entry", m_schema);
  return rows.int8(0, 0) > 0;
}

sweep_result cache_store::sweep(const sweep_options& options) {
  if (options.resource_type)
    check_text("resource type", *options.resource_type, m_options.max_key_size, "max_key_size");
  if (options.scope != sweep_scope::all) {
    throw usage_error("sweep_options::scope is for the session store",
                      "leave it at sweep_scope::all for the cache (resource_type narrows it)");
  }
  sweep_options settings = options;
  settings.batch_size = options.batch_size.value_or(k_sweep_batch);
  settings.lock_timeout = options.lock_timeout.value_or(m_options.gc_lock_timeout);
  detail::expiry_sweep::check(settings);  // before waiting for a connection
  auto lease = m_pool->acquire();
  const auto on = detail::wire_of(lease);
  detail::expiry_sweep sweep{on, settings, "expired entries", "the sweep"};
  detail::sweep_target target{&m_statements->gc_batch,
                              &m_statements->count_expired,
                              {},
                              &m_statements->gc_batch_alone,
                              m_statements->table};
  if (options.resource_type) {
    target = {&m_statements->gc_batch_of_type,
              &m_statements->count_expired_of_type,
              {text_param(*options.resource_type)},
              &m_statements->gc_batch_of_type_alone,
              m_statements->table};
  }
  std::optional<detail::statement> per_shard;
  try {
    // On Citus each batch runs shard by shard (stores/citus.hpp).
    if (detail::is_distributed_table(on, m_statements->table, "looking for the cache table")) {
      per_shard =
          detail::per_shard_statement("cache",
                                      options.resource_type ? detail::cache_sql::k_gc_batch_of_type
                                                            : detail::cache_sql::k_gc_batch,
                                      m_schema, m_statements->table);
      target.delete_batch = &*per_shard;
      target.delete_batch_alone = nullptr;
      target.per_shard = true;
    }
    sweep.sweep(target);
  } catch (const error& e) {
    rethrow_store_error(e, m_schema);
  }
  auto result = sweep.result();
  result.tables.push_back({"cache", result.deleted});
  return result;
}

// The deprecated gc() forwards to sweep().
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
cache_gc_result cache_store::gc(const cache_gc_options& options) {
  cache_gc_result result;
  static_cast<sweep_result&>(result) = sweep(options);
  result.finished = result.complete;
  return result;
}

cache_gc_result cache_store::gc(std::size_t batch_size,
                                std::optional<std::chrono::milliseconds> max_duration) {
  sweep_options options;
  options.batch_size = batch_size;
  options.max_duration = max_duration;
  return gc(options);
}
#pragma GCC diagnostic pop

std::size_t cache_store::count_expired(const std::optional<std::string>& resource_type) {
  if (resource_type)
    check_text("resource type", *resource_type, m_options.max_key_size, "max_key_size");
  auto lease = m_pool->acquire();
  auto rows = resource_type ? run_statement(*m_counters, lease, m_statements->count_expired_of_type,
                                            {text_param(*resource_type)},
                                            "counting expired cache entries", m_schema)
                            : run_statement(*m_counters, lease, m_statements->count_expired, {},
                                            "counting expired cache entries", m_schema);
  return static_cast<std::size_t>(rows.int8(0, 0));
}

}  // namespace pgkit
