#include "pgkit/session.hpp"

#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <mutex>

#include "core/pqxx_compat.hpp"
#include "core/striped_counters.hpp"
#include "core/text.hpp"
#include "core/ttl_limit.hpp"
#include "pgkit/error.hpp"
#include "pgkit/migration.hpp"
#include "stores/citus.hpp"
#include "stores/module_check.hpp"
#include "stores/session_key.hpp"
#include "stores/session_statements.hpp"
#include "stores/statements.hpp"

namespace pgkit {

namespace detail {

void ensure_sodium() {
  // sodium_init is thread-safe and returns 1 when an earlier call already succeeded.
  static const int status = sodium_init();
  if (status < 0)
    throw error(error_kind::internal, "libsodium could not be initialised");
}

std::string new_session_key() {
  unsigned char random[session_key_bytes];
  randombytes_buf(random, sizeof random);
  constexpr int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  char encoded[sodium_base64_ENCODED_LEN(session_key_bytes, variant)];
  sodium_bin2base64(encoded, sizeof encoded, random, sizeof random, variant);
  sodium_memzero(random, sizeof random);
  return std::string{encoded, session_key_length};
}

std::string session_key_digest(std::string_view key) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  return std::string{reinterpret_cast<const char*>(digest), sizeof digest};
}

}  // namespace detail

namespace {

using detail::binary_param;
using detail::bound_param;
using detail::int_param;
using detail::statement;
using std::chrono::milliseconds;

void check_ttl(milliseconds period, const char* what) {
  if (period.count() <= 0) {
    throw usage_error(std::string{what} + " must be positive, not " +
                      std::to_string(period.count()) + " ms");
  }
  detail::check_ttl_limit(period, what, detail::ttl_of::session);
}

// Runs one of the store's statements; a missing table gets a hint.
detail::result run_session(detail::store_counters<0>& counters, const detail::wire& on,
                           const statement& stmt, const std::vector<bound_param>& parameters,
                           const char* context, const std::string& schema) {
  counters.sent();
  try {
    return detail::run_statement(on, stmt, parameters, context);
  } catch (const error& e) {
    counters.failed(e.kind());
    detail::rethrow_store_error(e, "session", schema);
  }
}

bound_param ms_param(milliseconds duration) {
  return int_param(std::int64_t{duration.count()});
}

// set and compare_and_set: the one upsert, matching `expected_version` when given. Returns the
// rows it changed, or std::nullopt for a key that cannot name a session.
std::optional<std::size_t> write_session(detail::store_counters<0>& counters,
                                         const detail::wire& on, const statement& upsert,
                                         std::string_view key, std::string_view data,
                                         milliseconds lifetime, milliseconds touch_interval,
                                         std::optional<std::int64_t> expected_version,
                                         const std::string& schema) {
  check_ttl(lifetime, "a session's ttl");
  if (!is_well_formed_session_key(key))
    return std::nullopt;
  auto digest = detail::session_key_digest(key);
  auto rows = run_session(counters, on, upsert,
                          {binary_param(digest), binary_param(data), ms_param(lifetime),
                           ms_param(touch_interval), int_param(expected_version)},
                          "writing a session", schema);
  return static_cast<std::size_t>(rows.rows());
}

}  // namespace

bool is_well_formed_session_key(std::string_view key) noexcept {
  return key.size() == detail::session_key_length &&
         std::all_of(key.begin(), key.end(), [](char c) {
           return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
         });
}

struct session_store::single_connection {
  pqxx::connection* connection;
  detail::prepared_statements prepared;
  std::mutex in_use;
};

template <typename Body>
auto session_store::on_connection(Body&& body) {
  if (m_single) {
    std::lock_guard<std::mutex> lock{m_single->in_use};
    auto& connection = *m_single->connection;
    return body(connection, detail::wire{detail::libpq_handle(connection), &m_single->prepared});
  }
  auto lease = m_pool->acquire();
  return body(lease.connection(), detail::wire_of(lease));
}

struct session_store::statements {
  explicit statements(const std::string& schema)
      : generate(make(detail::session_sql::k_generate, schema)),
        get(make(detail::session_sql::k_get, schema)),
        remove_expired(make(detail::session_sql::k_remove_expired, schema)),
        set(make(detail::session_sql::k_set, schema)),
        is_live(make(detail::session_sql::k_is_live, schema)),
        touch(make(detail::session_sql::k_touch, schema)),
        clear(make(detail::session_sql::k_clear, schema)),
        set_distributed(make(detail::session_sql::k_set_distributed, schema)),
        table(detail::quote_identifier(schema) + ".session") {}

  static statement make(const detail::statement_text& text, const std::string& schema) {
    return detail::make_statement("session", text, schema);
  }

  statement generate, get, remove_expired, set, is_live, touch, clear, set_distributed;
  std::string table;
  // 1 when the table is distributed by Citus, -1 until the first set asks.
  mutable std::atomic<int> distributed{-1};

  // The statement of set and compare_and_set on this table.
  const statement& set_on(const detail::wire& on) const {
    int known = distributed.load(std::memory_order_acquire);
    if (known < 0) {
      known = detail::is_distributed_table(on, table, "looking for the session table") ? 1 : 0;
      distributed.store(known, std::memory_order_release);
    }
    return known == 1 ? set_distributed : set;
  }
};

session_store::session_store(std::shared_ptr<pool> pool, session_options options)
    : m_pool{std::move(pool)},
      m_replica{std::move(options.replica)},
      m_touch_interval{options.touch_interval},
      m_default_period_ms{options.default_period.count()},
      m_counters{std::make_shared<detail::store_counters<0>>()} {
  if (!m_pool)
    throw usage_error("a session store needs a pool, not a null pointer");
  finish_setup(resolve_schema(options.schema, m_pool->config()), options);
}

session_store::session_store(pqxx::connection& connection, session_options options)
    : m_single{std::make_unique<single_connection>()},
      m_touch_interval{options.touch_interval},
      m_default_period_ms{options.default_period.count()},
      m_counters{std::make_shared<detail::store_counters<0>>()} {
  if (options.replica) {
    throw usage_error("a session store on one connection reads no replica",
                      "give the store a pool to read a replica first");
  }
  m_single->connection = &connection;
  finish_setup(options.schema.empty() ? std::string{"pgkit"} : options.schema, options);
}

// What both constructors check and prepare once the schema is known.
void session_store::finish_setup(std::string schema, const session_options& options) {
  m_schema = std::move(schema);
  validate_schema_name(m_schema);
  check_ttl(options.default_period, "the default session period");
  if (m_touch_interval.count() < 0)
    throw usage_error("the touch interval must not be negative");
  detail::ensure_sodium();
  m_sql = std::make_shared<const statements>(m_schema);
}

session_store::~session_store() = default;

std::string session_store::generate(std::string_view data, std::optional<ttl> lifetime) {
  auto period = lifetime.value_or(default_period());
  check_ttl(period, "a session's ttl");
  auto key = detail::new_session_key();
  auto digest = detail::session_key_digest(key);
  on_connection([&](pqxx::connection&, const detail::wire& on) {
    return run_session(*m_counters, on, m_sql->generate,
                       {binary_param(digest), binary_param(data), ms_param(period)},
                       "creating a session", m_schema);
  });
  return key;
}

namespace {

// What a read does with an expired session it finds: a replica cannot delete it.
enum class expired_session { remove, keep };

std::optional<session_value> read_session(detail::store_counters<0>& counters,
                                          const detail::wire& on, const statement& get,
                                          const statement& remove_expired,
                                          const std::string& digest, expired_session expired,
                                          const std::string& schema) {
  auto rows = run_session(counters, on, get, {binary_param(digest)}, "reading a session", schema);
  if (rows.rows() == 0)
    return std::nullopt;
  if (!rows.boolean(0, 1)) {
    if (expired == expired_session::remove)
      run_session(counters, on, remove_expired, {binary_param(digest)}, "reading a session",
                  schema);
    return std::nullopt;
  }
  session_value value;
  value.data = rows.bytes(0, 0);
  value.remaining = milliseconds{rows.int8(0, 2)};
  value.version = rows.int8(0, 3);
  return value;
}

}  // namespace

std::optional<session_value> session_store::get(std::string_view key) {
  if (!is_well_formed_session_key(key))
    return std::nullopt;
  auto digest = detail::session_key_digest(key);
  if (m_replica) {
    // The replica may not have replayed a session created a moment ago, or may be down: the
    // primary answers then. What the replica has is returned as it is (see docs/scaling.md).
    try {
      auto lease = m_replica->acquire();
      if (auto found = read_session(*m_counters, detail::wire_of(lease), m_sql->get,
                                    m_sql->remove_expired, digest, expired_session::keep, m_schema))
        return found;
    } catch (const error&) {
    }
  }
  return on_connection([&](pqxx::connection&, const detail::wire& on) {
    return read_session(*m_counters, on, m_sql->get, m_sql->remove_expired, digest,
                        expired_session::remove, m_schema);
  });
}

set_result session_store::set(std::string_view key, std::string_view data,
                              std::optional<ttl> lifetime) {
  // An expiry the caller gave is set exactly; the touch interval only spares writes of the
  // default period.
  auto written = on_connection([&](pqxx::connection&, const detail::wire& on) {
    return write_session(*m_counters, on, m_sql->set_on(on), key, data,
                         lifetime.value_or(default_period()),
                         lifetime ? milliseconds{0} : m_touch_interval, std::nullopt, m_schema);
  });
  return written.value_or(0) == 0 ? set_result::missing : set_result::updated;
}

set_result session_store::compare_and_set(std::string_view key, std::int64_t expected_version,
                                          std::string_view data, std::optional<ttl> lifetime) {
  return on_connection([&](pqxx::connection&, const detail::wire& on) {
    auto written = write_session(
        *m_counters, on, m_sql->set_on(on), key, data, lifetime.value_or(default_period()),
        lifetime ? milliseconds{0} : m_touch_interval, expected_version, m_schema);
    if (!written)
      return set_result::missing;
    if (*written > 0)
      return set_result::updated;
    // Nothing matched: the session is gone, or its version moved on.
    auto live =
        run_session(*m_counters, on, m_sql->is_live,
                    {binary_param(detail::session_key_digest(key))}, "writing a session", m_schema);
    return live.rows() == 0 ? set_result::missing : set_result::conflict;
  });
}

touch_result session_store::touch(std::string_view key, std::optional<ttl> lifetime) {
  auto period = lifetime.value_or(default_period());
  check_ttl(period, "a session's ttl");
  if (!is_well_formed_session_key(key))
    return touch_result::missing;
  auto digest = detail::session_key_digest(key);
  auto rows = on_connection([&](pqxx::connection&, const detail::wire& on) {
    return run_session(*m_counters, on, m_sql->touch,
                       {binary_param(digest), ms_param(period), ms_param(m_touch_interval)},
                       "touching a session", m_schema);
  });
  if (rows.int8(0, 0) == 0)
    return touch_result::missing;
  return rows.int8(0, 1) == 0 ? touch_result::skipped : touch_result::extended;
}

store_stats session_store::statistics() const {
  store_stats stats;
  m_counters->read_into(stats);
  return stats;
}

bool session_store::clear(std::string_view key) {
  if (!is_well_formed_session_key(key))
    return false;
  auto digest = detail::session_key_digest(key);
  auto rows = on_connection([&](pqxx::connection&, const detail::wire& on) {
    return run_session(*m_counters, on, m_sql->clear, {binary_param(digest)}, "clearing a session",
                       m_schema);
  });
  return rows.affected_rows() > 0;
}

ttl session_store::default_period() const noexcept {
  return ttl{m_default_period_ms.load(std::memory_order_relaxed)};
}

void session_store::set_default_period(ttl period) {
  check_ttl(period, "the default session period");
  m_default_period_ms.store(period.count(), std::memory_order_relaxed);
}

void session_store::check() {
  on_connection([&](pqxx::connection& connection, const detail::wire&) {
    detail::check_module_table(connection, "session", m_schema, "session");
  });
}

sweep_result session_store::sweep(const sweep_options& options) {
  return on_connection([&](pqxx::connection& connection, const detail::wire&) {
    return sweep_expired_sessions(connection, m_schema, options);
  });
}

// The deprecated purge() forwards to sweep().
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
purge_result session_store::purge(std::size_t batch_size,
                                  std::optional<std::chrono::milliseconds> max_duration) {
  purge_options options;
  options.batch_size = batch_size;
  options.max_duration = max_duration;
  return purge(options);
}

purge_result session_store::purge(const purge_options& options) {
  return on_connection([&](pqxx::connection& connection, const detail::wire&) {
    return purge_expired_sessions(connection, m_schema, options);
  });
}
#pragma GCC diagnostic pop

}  // namespace pgkit
