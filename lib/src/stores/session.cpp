#include "pgkit/session.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstdio>

#include "core/pqxx_compat.hpp"
#include "core/ttl_limit.hpp"
#include "migrate/migration_sql.hpp"
#include "pgkit/error.hpp"
#include "pgkit/migration.hpp"
#include "stores/session_key.hpp"
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

using std::chrono::milliseconds;

// The SQL of every statement, for one schema. Statement names carry a digest of the schema so
// that stores on different schemas can share a pool's connections.
struct statement {
  std::string name;
  std::string sql;
};
struct session_sql {
  statement generate, get, remove_expired, set, compare_and_set, is_live, touch, clear;
};

std::string schema_suffix(const std::string& schema) {
  std::uint32_t hash = 2166136261U;
  for (char c : schema) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 16777619U;
  }
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", hash);
  return std::string{"_"} + hex;
}

void check_ttl(milliseconds ttl, const char* what) {
  if (ttl.count() <= 0)
    throw usage_error(std::string{what} + " must be positive, not " + std::to_string(ttl.count()) +
                      " ms");
  detail::check_ttl_limit(ttl, what);
}

// A bytea parameter; an empty view still points somewhere (libpqxx 6.4 copies with memcpy).
detail::bytea_param bytes(std::string_view value) {
  return detail::make_bytea_param(value.empty() ? std::string_view{""} : value);
}

// Turns the exception being handled into a pgkit::error; a missing table gets a hint.
[[noreturn]] void rethrow_session_error(const char* context, const std::string& schema) {
  try {
    detail::rethrow_as_pgkit(context);
  } catch (const error& e) {
    if (e.kind() == error_kind::undefined_object && e.hint().empty()) {
      throw sql_error(
          e.what(), e.sqlstate(), {},
          "apply the session module first: pgkit apply --schema " + schema + " session");
    }
    throw;
  }
}

}  // namespace

bool is_well_formed_session_key(std::string_view key) noexcept {
  return key.size() == detail::session_key_length &&
         std::all_of(key.begin(), key.end(), [](char c) {
           return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
         });
}

struct session_store::statements : session_sql {};

session_store::session_store(std::shared_ptr<pool> pool, session_options options)
    : m_pool{std::move(pool)},
      m_replica{std::move(options.replica)},
      m_touch_interval{options.touch_interval},
      m_default_period_ms{options.default_period.count()} {
  if (!m_pool)
    throw usage_error("a session store needs a pool, not a null pointer");
  m_schema = resolve_schema(options.schema, m_pool->config());
  validate_schema_name(m_schema);
  check_ttl(options.default_period, "the default session period");
  if (m_touch_interval.count() < 0)
    throw usage_error("the touch interval must not be negative");
  detail::ensure_sodium();

  auto sql = std::make_shared<statements>();
  const std::string table = detail::quote_identifier(m_schema) + ".session";
  const std::string expiry = "now() + $3::bigint * interval '1 millisecond'";
  sql->generate.sql =
      "INSERT INTO " + table + " (key_hash, data, expires_at) VALUES ($1, $2, " + expiry + ")";
  sql->get.sql =
      "SELECT CASE WHEN expires_at > now() THEN data END, expires_at > now(), "
      "((extract(epoch FROM expires_at) - extract(epoch FROM now())) * 1000)::bigint, "
      "version FROM " +
      table + " WHERE key_hash = $1";
  // SKIP LOCKED: a row held by a writer or by purge is left alone rather than waited for.
  sql->remove_expired.sql = "DELETE FROM " + table + " WHERE key_hash IN (SELECT key_hash FROM " +
                            table +
                            " WHERE key_hash = $1 AND expires_at <= now() FOR UPDATE SKIP LOCKED)";
  // A new expiry within the touch interval of the current one keeps the current one: then no
  // indexed column changes, and PostgreSQL can update the row in place (HOT) without new
  // entries in the primary key and expiry indexes, which makes a write per request cheap.
  const std::string slack = "$4::bigint * interval '1 millisecond'";
  const std::string assign =
      "UPDATE " + table + " SET data = $2, expires_at = CASE WHEN " + expiry + " > expires_at - " +
      slack + " AND " + expiry + " < expires_at + " + slack + " THEN expires_at ELSE " + expiry +
      " END, version = version + 1, updated_at = now() WHERE key_hash = $1 AND expires_at > now()";
  sql->set.sql = assign + " RETURNING version";
  sql->compare_and_set.sql = assign + " AND version = $5 RETURNING version";
  sql->is_live.sql = "SELECT 1 FROM " + table + " WHERE key_hash = $1 AND expires_at > now()";
  // One round trip: whether the session is live, and whether the expiry moved. The update
  // writes only when the new expiry is at least the touch interval past the current one.
  sql->touch.sql = "WITH live AS (SELECT 1 FROM " + table +
                   " WHERE key_hash = $1 AND expires_at > now()), moved AS (UPDATE " + table +
                   " SET expires_at = now() + $2::bigint * interval '1 millisecond', "
                   "updated_at = now() WHERE key_hash = $1 AND expires_at > now() AND "
                   "now() + $2::bigint * interval '1 millisecond' >= "
                   "expires_at + $3::bigint * interval '1 millisecond' RETURNING 1) "
                   "SELECT (SELECT count(*) FROM live), (SELECT count(*) FROM moved)";
  sql->clear.sql = "DELETE FROM " + table + " WHERE key_hash = $1";
  const auto suffix = schema_suffix(m_schema);
  for (const auto& [entry, name] :
       {std::pair{&sql->generate, "generate"}, std::pair{&sql->get, "get"},
        std::pair{&sql->remove_expired, "remove_expired"}, std::pair{&sql->set, "set"},
        std::pair{&sql->compare_and_set, "compare_and_set"}, std::pair{&sql->is_live, "is_live"},
        std::pair{&sql->touch, "touch"}, std::pair{&sql->clear, "clear"}})
    entry->name = std::string{"pgkit_session_"} + name + suffix;
  m_sql = std::move(sql);
}

std::string session_store::generate(std::string_view data, std::optional<milliseconds> ttl) {
  auto lifetime = ttl.value_or(default_period());
  check_ttl(lifetime, "a session's ttl");
  auto key = detail::new_session_key();
  auto digest = detail::session_key_digest(key);
  try {
    auto lease = m_pool->acquire();
    pqxx::nontransaction tx{*lease};
    detail::exec_statement(lease, tx, m_sql->generate.name, m_sql->generate.sql, bytes(digest),
                           bytes(data), std::int64_t{lifetime.count()});
  } catch (...) {
    rethrow_session_error("creating a session", m_schema);
  }
  return key;
}

namespace {

// What a read does with an expired session it finds: a replica cannot delete it.
enum class expired_session { remove, keep };

std::optional<session_value> read_session(pool& from, const session_sql& sql,
                                          const std::string& digest, expired_session expired,
                                          const std::string& schema) {
  try {
    auto lease = from.acquire();
    pqxx::nontransaction tx{*lease};
    auto rows = detail::exec_statement(lease, tx, sql.get.name, sql.get.sql, bytes(digest));
    if (rows.empty())
      return std::nullopt;
    const auto row = rows[0];
    if (!row[1].as<bool>()) {
      if (expired == expired_session::remove) {
        detail::exec_statement(lease, tx, sql.remove_expired.name, sql.remove_expired.sql,
                               bytes(digest));
      }
      return std::nullopt;
    }
    session_value value;
    value.data = detail::read_bytea(row[0]);
    value.remaining = milliseconds{row[2].as<std::int64_t>()};
    value.version = row[3].as<std::int64_t>();
    return value;
  } catch (...) {
    rethrow_session_error("reading a session", schema);
  }
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
      if (auto found = read_session(*m_replica, *m_sql, digest, expired_session::keep, m_schema))
        return found;
    } catch (const error&) {
    }
  }
  return read_session(*m_pool, *m_sql, digest, expired_session::remove, m_schema);
}

set_result session_store::set(std::string_view key, std::string_view data,
                              std::optional<milliseconds> ttl) {
  auto lifetime = ttl.value_or(default_period());
  check_ttl(lifetime, "a session's ttl");
  if (!is_well_formed_session_key(key))
    return set_result::missing;
  auto digest = detail::session_key_digest(key);
  try {
    auto lease = m_pool->acquire();
    pqxx::nontransaction tx{*lease};
    auto rows = detail::exec_statement(lease, tx, m_sql->set.name, m_sql->set.sql, bytes(digest),
                                       bytes(data), std::int64_t{lifetime.count()},
                                       std::int64_t{m_touch_interval.count()});
    return rows.empty() ? set_result::missing : set_result::updated;
  } catch (...) {
    rethrow_session_error("writing a session", m_schema);
  }
}

set_result session_store::compare_and_set(std::string_view key, std::int64_t expected_version,
                                          std::string_view data, std::optional<milliseconds> ttl) {
  auto lifetime = ttl.value_or(default_period());
  check_ttl(lifetime, "a session's ttl");
  if (!is_well_formed_session_key(key))
    return set_result::missing;
  auto digest = detail::session_key_digest(key);
  try {
    auto lease = m_pool->acquire();
    pqxx::nontransaction tx{*lease};
    auto rows =
        detail::exec_statement(lease, tx, m_sql->compare_and_set.name, m_sql->compare_and_set.sql,
                               bytes(digest), bytes(data), std::int64_t{lifetime.count()},
                               std::int64_t{m_touch_interval.count()}, expected_version);
    if (!rows.empty())
      return set_result::updated;
    // Nothing matched: the session is gone, or its version moved on.
    auto live =
        detail::exec_statement(lease, tx, m_sql->is_live.name, m_sql->is_live.sql, bytes(digest));
    return live.empty() ? set_result::missing : set_result::conflict;
  } catch (...) {
    rethrow_session_error("writing a session", m_schema);
  }
}

touch_result session_store::touch(std::string_view key, std::optional<milliseconds> ttl) {
  auto lifetime = ttl.value_or(default_period());
  check_ttl(lifetime, "a session's ttl");
  if (!is_well_formed_session_key(key))
    return touch_result::missing;
  auto digest = detail::session_key_digest(key);
  try {
    auto lease = m_pool->acquire();
    pqxx::nontransaction tx{*lease};
    auto rows = detail::exec_statement(lease, tx, m_sql->touch.name, m_sql->touch.sql,
                                       bytes(digest), std::int64_t{lifetime.count()},
                                       std::int64_t{m_touch_interval.count()});
    if (rows[0][0].as<std::int64_t>() == 0)
      return touch_result::missing;
    return rows[0][1].as<std::int64_t>() == 0 ? touch_result::skipped : touch_result::extended;
  } catch (...) {
    rethrow_session_error("touching a session", m_schema);
  }
}

bool session_store::clear(std::string_view key) {
  if (!is_well_formed_session_key(key))
    return false;
  auto digest = detail::session_key_digest(key);
  try {
    auto lease = m_pool->acquire();
    pqxx::nontransaction tx{*lease};
    auto rows =
        detail::exec_statement(lease, tx, m_sql->clear.name, m_sql->clear.sql, bytes(digest));
    return rows.affected_rows() > 0;
  } catch (...) {
    rethrow_session_error("clearing a session", m_schema);
  }
}

milliseconds session_store::default_period() const noexcept {
  return milliseconds{m_default_period_ms.load(std::memory_order_relaxed)};
}

void session_store::set_default_period(milliseconds period) {
  check_ttl(period, "the default session period");
  m_default_period_ms.store(period.count(), std::memory_order_relaxed);
}

purge_result session_store::purge(std::size_t batch_size,
                                  std::optional<milliseconds> max_duration) {
  purge_options options;
  options.batch_size = batch_size;
  options.max_duration = max_duration;
  return purge(options);
}

purge_result session_store::purge(const purge_options& options) {
  auto lease = m_pool->acquire();
  return purge_expired_sessions(lease.connection(), m_schema, options);
}

}  // namespace pgkit
