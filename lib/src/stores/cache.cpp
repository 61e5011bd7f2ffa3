#include "pgkit/cache.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <cstdint>
#include <map>

#include "core/pqxx_compat.hpp"
#include "core/ttl_limit.hpp"
#include "migrate/migration_sql.hpp"
#include "pgkit/config.hpp"
#include "pgkit/migration.hpp"
#include "stores/statements.hpp"

namespace pgkit {
namespace {

// clear() deletes this many rows per statement, so that no statement holds row locks on a
// whole resource type at once.
constexpr std::size_t k_clear_batch = 10000;

// A bytea value larger than this cannot exist in PostgreSQL; set_many() packs all values of a
// call into one parameter, so their sum must stay under it.
constexpr std::size_t k_max_bytea = (std::size_t{1} << 30) - 1;

// Every statement, with `{T}` standing for the quoted, schema-qualified table. An expired entry
// reads as NULL (value is NOT NULL in the table), so a read needs no second column.
struct statement_text {
  const char* name;
  const char* sql;
};

constexpr statement_text k_get{"pgkit_cache_get",
                               "SELECT CASE WHEN expires_at <= now() THEN NULL ELSE value END "
                               "FROM {T} WHERE resource_type = $1 AND key = $2"};
// Deletes what a reader found expired, skipping rows another session holds, so that the reader
// never waits; the row stays for the next reader or gc.
constexpr statement_text k_purge{
    "pgkit_cache_purge",
    "DELETE FROM {T} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {T} WHERE resource_type = $1 AND "
    "key = ANY($2::text[]) AND expires_at <= now() FOR UPDATE SKIP LOCKED))"};
// One index probe per key asked (the OFFSET 0 keeps the planner from turning the lateral join
// into a hash join over a sequential scan, which it prefers for unnamed statements on small
// tables); each row carries the 1-based position of its key.
constexpr statement_text k_get_many{
    "pgkit_cache_get_many",
    "SELECT k.position, CASE WHEN c.expires_at <= now() THEN NULL ELSE c.value END "
    "FROM unnest($2::text[]) WITH ORDINALITY AS k(key, position) "
    "CROSS JOIN LATERAL (SELECT expires_at, value FROM {T} "
    "WHERE resource_type = $1 AND key = k.key OFFSET 0) AS c"};
constexpr statement_text k_set{"pgkit_cache_set",
                               "INSERT INTO {T} AS c (resource_type, key, value, expires_at) "
                               "VALUES ($1, $2, $3, now() + $4::bigint * interval '1 millisecond') "
                               "ON CONFLICT (resource_type, key) DO UPDATE "
                               "SET value = excluded.value, expires_at = excluded.expires_at"};
// All values travel in one binary parameter ($5); $3 and $4 say where each one starts (1-based)
// and how long it is.
constexpr statement_text k_set_many{
    "pgkit_cache_set_many",
    "INSERT INTO {T} AS c (resource_type, key, value, expires_at) "
    "SELECT $1, e.key, substring($5::bytea FROM e.start FOR e.length), "
    "now() + $6::bigint * interval '1 millisecond' "
    "FROM unnest($2::text[], $3::int[], $4::int[]) AS e(key, start, length) "
    "ON CONFLICT (resource_type, key) DO UPDATE "
    "SET value = excluded.value, expires_at = excluded.expires_at"};
constexpr statement_text k_remove{"pgkit_cache_remove",
                                  "DELETE FROM {T} WHERE resource_type = $1 AND key = $2"};
constexpr statement_text k_clear{
    "pgkit_cache_clear",
    "DELETE FROM {T} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {T} WHERE resource_type = $1 "
    "LIMIT $2))"};
constexpr statement_text k_expire{
    "pgkit_cache_expire",
    "UPDATE {T} SET expires_at = now() + $3::bigint * interval '1 millisecond' "
    "WHERE resource_type = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > now())"};
// Writes only when the entry would otherwise expire sooner than asked; counts the live entry
// either way.
constexpr statement_text k_touch{
    "pgkit_cache_touch",
    "WITH live AS (SELECT resource_type, key, expires_at FROM {T} "
    "WHERE resource_type = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > now())), "
    "extended AS (UPDATE {T} AS c SET expires_at = now() + $3::bigint * interval '1 millisecond' "
    "FROM live WHERE c.resource_type = live.resource_type AND c.key = live.key "
    "AND live.expires_at < now() + $3::bigint * interval '1 millisecond' RETURNING 1) "
    "SELECT count(*) FROM live"};
constexpr statement_text k_gc_lock_timeout{"pgkit_cache_gc_lock_timeout",
                                           "SELECT set_config('lock_timeout', $1, true)"};
// Oldest first, through the expires_at index: without the ORDER BY the planner may pick a
// sequential scan, and each batch would then read again every row that the batches before it
// deleted (quadratic in the number of batches).
constexpr statement_text k_gc_batch{
    "pgkit_cache_gc",
    "DELETE FROM {T} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {T} WHERE expires_at <= now() "
    "ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED))"};
constexpr statement_text k_gc_batch_of_type{
    "pgkit_cache_gc_type",
    "DELETE FROM {T} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {T} WHERE expires_at <= now() "
    "AND resource_type = $2 ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED))"};
constexpr statement_text k_count_expired{"pgkit_cache_count_expired",
                                         "SELECT count(*) FROM {T} WHERE expires_at <= now()"};
constexpr statement_text k_count_expired_of_type{
    "pgkit_cache_count_expired_type",
    "SELECT count(*) FROM {T} WHERE expires_at <= now() AND resource_type = $1"};

std::string with_table(const char* sql, const std::string& table) {
  std::string out = sql;
  for (auto at = out.find("{T}"); at != std::string::npos; at = out.find("{T}", at))
    out.replace(at, 3, table);
  return out;
}

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

void check_ttl(const cache_ttl& ttl) {
  if (ttl && ttl->count() < 0) {
    throw usage_error("the cache ttl is negative (" + std::to_string(ttl->count()) + " ms)",
                      "give a ttl of zero or more, or never_expires");
  }
  if (ttl)
    detail::check_ttl_limit(*ttl, "the cache ttl");
}

std::optional<std::int64_t> ttl_param(const cache_ttl& ttl) {
  if (!ttl)
    return std::nullopt;
  return static_cast<std::int64_t>(ttl->count());
}

// A PostgreSQL array literal of text elements, each quoted (elements have no NUL bytes).
template <typename Range>
std::string text_array(const Range& items) {
  std::string out = "{";
  bool first = true;
  for (const auto& item : items) {
    if (!first)
      out += ',';
    first = false;
    out += '"';
    for (char c : item) {
      if (c == '"' || c == '\\')
        out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

std::string int_array(const std::vector<std::size_t>& numbers) {
  std::string out = "{";
  for (std::size_t i = 0; i < numbers.size(); ++i) {
    if (i > 0)
      out += ',';
    out += std::to_string(numbers[i]);
  }
  return out + "}";
}

// A statement of one store: its name on the connection and its SQL.
struct statement {
  std::string name;
  std::string sql;
};

error not_applied(const std::string& schema, const std::string& sqlstate) {
  std::string fix = "run pgkit apply cache";
  if (schema != "pgkit")
    fix += " --schema " + schema;
  return error(error_kind::undefined_object,
               "the cache module is not applied in schema " + schema + " (there is no table " +
                   schema + ".cache)",
               fix, sqlstate);
}

// A standby refuses the cache: it cannot read an UNLOGGED table during recovery (0A000) and
// takes no writes (25006).
bool refused_by_standby(const std::string& sqlstate) {
  return sqlstate == "0A000" || sqlstate == "25006";
}

error on_standby(const std::string& schema, const std::string& sqlstate) {
  return error(error_kind::sql,
               "the cache table " + schema +
                   ".cache cannot be used on a standby: it is UNLOGGED, so its rows exist only "
                   "on the primary",
               "give the cache a pool on the primary (with a multi-host URL, "
               "target_session_attrs=read-write); replicas serve session reads only",
               sqlstate);
}

// Turns the exception being handled into a pgkit::error; a missing table or schema becomes the
// "not applied" error with the command that fixes it.
[[noreturn]] void rethrow_cache_error(const std::string& context, const std::string& schema) {
  try {
    detail::rethrow_as_pgkit(context);
  } catch (const error& e) {
    if (e.sqlstate() == "42P01" || e.sqlstate() == "3F000")
      throw not_applied(schema, e.sqlstate());
    if (refused_by_standby(e.sqlstate()))
      throw on_standby(schema, e.sqlstate());
    throw;
  }
}

// ---- Single statements, run with libpq on the connection libpqxx owns (no libpqxx transaction
// is open on it then). libpqxx looks for notifications after every statement, two extra system
// calls per round trip; going below it keeps a cache read at one send, one poll, one receive,
// as fast as a hand-written libpq loop. Results come back in binary format.

// One parameter: text (kept here, NUL-terminated as libpq wants), binary bytes (borrowed) or
// NULL.
struct param {
  enum class kind { text, binary, null };
  kind type;
  std::string text;
  std::string_view bytes;
};

param text_param(std::string_view text) {
  return {param::kind::text, std::string{text}, {}};
}
param binary_param(std::string_view bytes) {
  return {param::kind::binary, {}, bytes};
}
param int_param(std::optional<std::int64_t> number) {
  if (!number)
    return {param::kind::null, {}, {}};
  return {param::kind::text, std::to_string(*number), {}};
}

struct result_deleter {
  void operator()(PGresult* result) const noexcept { PQclear(result); }
};

// A successful result.
class libpq_result {
 public:
  explicit libpq_result(PGresult* result) : m_result(result) {}
  int rows() const { return PQntuples(m_result.get()); }
  bool is_null(int row, int column) const { return PQgetisnull(m_result.get(), row, column) != 0; }
  std::string bytes(int row, int column) const {
    return {PQgetvalue(m_result.get(), row, column),
            static_cast<std::size_t>(PQgetlength(m_result.get(), row, column))};
  }
  // A bigint column, sent in binary: eight bytes, most significant first.
  std::int64_t int8(int row, int column) const {
    const auto* data =
        reinterpret_cast<const unsigned char*>(PQgetvalue(m_result.get(), row, column));
    std::uint64_t value = 0;
    for (int i = 0; i < 8; ++i)
      value = (value << 8) | data[i];
    return static_cast<std::int64_t>(value);
  }
  std::size_t affected_rows() const {
    const char* count = PQcmdTuples(m_result.get());
    return count[0] == '\0' ? 0 : static_cast<std::size_t>(std::stoull(count));
  }

 private:
  std::unique_ptr<PGresult, result_deleter> m_result;
};

std::string trimmed(const char* message) {
  std::string text = message == nullptr ? "" : message;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.pop_back();
  return text;
}

// Throws the pgkit::error for a failed statement (`result` may be null) and frees `result`.
[[noreturn]] void throw_failure(PGconn* connection, PGresult* result, const std::string& sql,
                                const std::string& context, const std::string& schema) {
  std::unique_ptr<PGresult, result_deleter> owned{result};
  if (PQstatus(connection) != CONNECTION_OK) {
    // The pool sees the broken connection when the lease comes back and replaces it.
    throw error(error_kind::connection_lost, context + ": " + trimmed(PQerrorMessage(connection)));
  }
  const char* state = result == nullptr ? nullptr : PQresultErrorField(result, PG_DIAG_SQLSTATE);
  std::string sqlstate = state == nullptr ? "" : state;
  if (sqlstate == "42P01" || sqlstate == "3F000")
    throw not_applied(schema, sqlstate);
  if (refused_by_standby(sqlstate))
    throw on_standby(schema, sqlstate);
  std::string message = result == nullptr ? trimmed(PQerrorMessage(connection))
                                          : trimmed(PQresultErrorMessage(result));
  if (sqlstate.empty())
    throw error(error_kind::internal, context + ": " + message);
  throw sql_error(context + ": " + message, sqlstate, sql);
}

bool succeeded(PGresult* result) {
  auto status = PQresultStatus(result);
  return result != nullptr && (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK);
}

// Runs one statement on the lease's connection, outside any transaction block (so it commits by
// itself): prepared once per connection under its name, or sent unnamed behind PgBouncer.
// Throws pgkit::error; `context` says what the store was doing.
libpq_result run_statement(const lease& borrowed, const statement& statement,
                           const std::vector<param>& params, const std::string& context,
                           const std::string& schema) {
  PGconn* connection = detail::libpq_handle(borrowed.connection());
  std::vector<const char*> values(params.size());
  std::vector<int> lengths(params.size()), formats(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    switch (params[i].type) {
      case param::kind::text:
        values[i] = params[i].text.c_str();
        break;
      case param::kind::binary:
        // libpq wants a pointer even for zero bytes.
        values[i] = params[i].bytes.empty() ? "" : params[i].bytes.data();
        lengths[i] = static_cast<int>(params[i].bytes.size());
        formats[i] = 1;
        break;
      case param::kind::null:
        values[i] = nullptr;
        break;
    }
  }
  const int count = static_cast<int>(params.size());
  PGresult* result = nullptr;
  if (borrowed.config().pooler == pooler_mode::pgbouncer_transaction) {
    result = PQexecParams(connection, statement.sql.c_str(), count, nullptr, values.data(),
                          lengths.data(), formats.data(), 1);
  } else {
    auto& prepared = detail::lease_access::slot(borrowed).prepared;
    auto found = prepared.find(statement.name);
    if (found == prepared.end()) {
      PGresult* done =
          PQprepare(connection, statement.name.c_str(), statement.sql.c_str(), 0, nullptr);
      if (!succeeded(done))
        throw_failure(connection, done, statement.sql, context, schema);
      PQclear(done);
      prepared.emplace(statement.name, statement.sql);
    } else if (found->second != statement.sql) {
      throw error(error_kind::internal, "statement '" + statement.name +
                                            "' was prepared with different SQL on this connection");
    }
    result = PQexecPrepared(connection, statement.name.c_str(), count, values.data(),
                            lengths.data(), formats.data(), 1);
  }
  if (!succeeded(result))
    throw_failure(connection, result, statement.sql, context, schema);
  return libpq_result{result};
}

}  // namespace

// One store's statements: names carry the schema so that stores on different schemas can share
// a connection, and the SQL names the table with its schema (the pool sets no search_path).
struct cache::statements {
  statements(const std::string& schema, const std::string& qualified)
      : get(make(k_get, schema, qualified)),
        purge(make(k_purge, schema, qualified)),
        get_many(make(k_get_many, schema, qualified)),
        set(make(k_set, schema, qualified)),
        set_many(make(k_set_many, schema, qualified)),
        remove(make(k_remove, schema, qualified)),
        clear(make(k_clear, schema, qualified)),
        expire(make(k_expire, schema, qualified)),
        touch(make(k_touch, schema, qualified)),
        gc_lock_timeout(make(k_gc_lock_timeout, schema, qualified)),
        gc_batch(make(k_gc_batch, schema, qualified)),
        gc_batch_of_type(make(k_gc_batch_of_type, schema, qualified)),
        count_expired(make(k_count_expired, schema, qualified)),
        count_expired_of_type(make(k_count_expired_of_type, schema, qualified)),
        table(qualified) {}

  static statement make(const statement_text& text, const std::string& schema,
                        const std::string& qualified) {
    return {std::string{text.name} + "_" + schema, with_table(text.sql, qualified)};
  }

  statement get, purge, get_many, set, set_many, remove, clear, expire, touch, gc_lock_timeout,
      gc_batch, gc_batch_of_type, count_expired, count_expired_of_type;
  std::string table;
};

cache::cache(std::shared_ptr<pool> connections, cache_options options)
    : m_pool(std::move(connections)), m_options(std::move(options)) {
  if (!m_pool)
    throw usage_error("the cache store was given no pool");
  m_schema = resolve_schema(m_options.schema, m_pool->config());
  validate_schema_name(m_schema);
  m_statements =
      std::make_unique<const statements>(m_schema, detail::quote_identifier(m_schema) + ".cache");
}

cache::~cache() = default;

void cache::check() {
  auto lease = m_pool->acquire();
  // Unnamed: a check runs once, and a prepared name would be one more per connection.
  const char* sql = "SELECT to_regclass($1) IS NOT NULL";
  PGconn* connection = detail::libpq_handle(lease.connection());
  const char* values[] = {m_statements->table.c_str()};
  PGresult* result = PQexecParams(connection, sql, 1, nullptr, values, nullptr, nullptr, 0);
  if (!succeeded(result))
    throw_failure(connection, result, sql, "checking the cache table", m_schema);
  bool found = PQgetvalue(result, 0, 0)[0] == 't';
  PQclear(result);
  if (!found)
    throw not_applied(m_schema, "42P01");
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

std::optional<std::string> cache::get(std::string_view resource_type, std::string_view key) {
  check_text("resource type", resource_type, m_options.max_key_size, "max_key_size");
  check_text("key", key, m_options.max_key_size, "max_key_size");
  return guarded_read(
      m_options,
      [&]() -> std::optional<std::string> {
        auto lease = m_pool->acquire();
        std::vector<param> params{text_param(resource_type), text_param(key)};
        auto rows = run_statement(lease, m_statements->get, params, "reading the cache", m_schema);
        if (rows.rows() == 0)
          return std::nullopt;
        if (!rows.is_null(0, 0))
          return rows.bytes(0, 0);
        params[1] = text_param(text_array(std::vector<std::string_view>{key}));
        run_statement(lease, m_statements->purge, params, "deleting an expired cache entry",
                      m_schema);
        return std::nullopt;
      },
      [] { return std::optional<std::string>{}; });
}

std::vector<std::optional<std::string>> cache::get_many(std::string_view resource_type,
                                                        const std::vector<std::string>& keys) {
  check_text("resource type", resource_type, m_options.max_key_size, "max_key_size");
  for (const auto& key : keys)
    check_text("key", key, m_options.max_key_size, "max_key_size");
  if (keys.empty())
    return {};
  return guarded_read(
      m_options,
      [&]() {
        auto lease = m_pool->acquire();
        std::vector<param> params{text_param(resource_type), text_param(text_array(keys))};
        auto rows =
            run_statement(lease, m_statements->get_many, params, "reading the cache", m_schema);
        std::vector<std::optional<std::string>> values(keys.size());
        std::vector<std::string_view> expired;
        for (int row = 0; row < rows.rows(); ++row) {
          auto position = rows.int8(row, 0);
          if (position < 1 || static_cast<std::size_t>(position) > keys.size())
            throw error(error_kind::internal, "get_many: the server returned a bad position");
          auto index = static_cast<std::size_t>(position - 1);
          if (rows.is_null(row, 1))
            expired.push_back(keys[index]);
          else
            values[index] = rows.bytes(row, 1);
        }
        if (!expired.empty()) {
          params[1] = text_param(text_array(expired));
          run_statement(lease, m_statements->purge, params, "deleting expired cache entries",
                        m_schema);
        }
        return values;
      },
      [&] { return std::vector<std::optional<std::string>>(keys.size()); });
}

void cache::set(std::string_view resource_type, std::string_view key, std::string_view value,
                cache_ttl ttl) {
  check_text("resource type", resource_type, m_options.max_key_size, "max_key_size");
  check_text("key", key, m_options.max_key_size, "max_key_size");
  check_value(key, value, m_options.max_value_size);
  check_ttl(ttl);
  auto lease = m_pool->acquire();
  run_statement(
      lease, m_statements->set,
      {text_param(resource_type), text_param(key), binary_param(value), int_param(ttl_param(ttl))},
      "writing to the cache", m_schema);
}

void cache::set(std::string_view resource_type, std::string_view key, std::string_view value) {
  set(resource_type, key, value, m_options.default_ttl);
}

void cache::set_many(std::string_view resource_type,
                     const std::vector<std::pair<std::string, std::string>>& entries,
                     cache_ttl ttl) {
  check_text("resource type", resource_type, m_options.max_key_size, "max_key_size");
  check_ttl(ttl);
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
  run_statement(
      lease, m_statements->set_many,
      {text_param(resource_type), text_param(text_array(keys)), text_param(int_array(starts)),
       text_param(int_array(lengths)), binary_param(packed), int_param(ttl_param(ttl))},
      "writing to the cache", m_schema);
}

void cache::set_many(std::string_view resource_type,
                     const std::vector<std::pair<std::string, std::string>>& entries) {
  set_many(resource_type, entries, m_options.default_ttl);
}

bool cache::remove(std::string_view resource_type, std::string_view key) {
  check_text("resource type", resource_type, m_options.max_key_size, "max_key_size");
  check_text("key", key, m_options.max_key_size, "max_key_size");
  auto lease = m_pool->acquire();
  auto result =
      run_statement(lease, m_statements->remove, {text_param(resource_type), text_param(key)},
                    "removing from the cache", m_schema);
  return result.affected_rows() > 0;
}

std::size_t cache::clear(std::string_view resource_type) {
  check_text("resource type", resource_type, m_options.max_key_size, "max_key_size");
  auto lease = m_pool->acquire();
  const std::vector<param> params{text_param(resource_type),
                                  int_param(static_cast<std::int64_t>(k_clear_batch))};
  std::size_t deleted = 0;
  for (;;) {
    auto batch = run_statement(lease, m_statements->clear, params, "clearing the cache", m_schema)
                     .affected_rows();
    deleted += batch;
    if (batch < k_clear_batch)
      return deleted;
  }
}

std::string cache::get_or_set(std::string_view resource_type, std::string_view key, cache_ttl ttl,
                              const std::function<std::string()>& compute) {
  check_ttl(ttl);
  if (auto hit = get(resource_type, key))
    return *std::move(hit);
  std::string value = compute();
  try {
    set(resource_type, key, value, ttl);
  } catch (const error& e) {
    if (m_options.on_read_failure != cache_read_failure::as_miss || e.kind() == error_kind::usage)
      throw;
    if (m_options.on_failure)
      m_options.on_failure(e);
  }
  return value;
}

bool cache::expire(std::string_view resource_type, std::string_view key, cache_ttl ttl) {
  check_text("resource type", resource_type, m_options.max_key_size, "max_key_size");
  check_text("key", key, m_options.max_key_size, "max_key_size");
  check_ttl(ttl);
  auto lease = m_pool->acquire();
  auto result =
      run_statement(lease, m_statements->expire,
                    {text_param(resource_type), text_param(key), int_param(ttl_param(ttl))},
                    "changing a cache entry's expiry", m_schema);
  return result.affected_rows() > 0;
}

bool cache::touch(std::string_view resource_type, std::string_view key,
                  std::chrono::milliseconds ttl) {
  check_text("resource type", resource_type, m_options.max_key_size, "max_key_size");
  check_text("key", key, m_options.max_key_size, "max_key_size");
  check_ttl(ttl);
  auto lease = m_pool->acquire();
  auto rows = run_statement(lease, m_statements->touch,
                            {text_param(resource_type), text_param(key),
                             int_param(static_cast<std::int64_t>(ttl.count()))},
                            "touching a cache entry", m_schema);
  return rows.int8(0, 0) > 0;
}

cache_gc_result cache::gc(const cache_gc_options& options) {
  using clock = std::chrono::steady_clock;
  if (options.batch_size == 0)
    throw usage_error("the gc batch size is 0", "give a batch size of at least 1");
  if (options.max_duration && options.max_duration->count() <= 0)
    throw usage_error("the gc time limit is not positive", "give a time limit above zero");
  if (options.resource_type)
    check_text("resource type", *options.resource_type, m_options.max_key_size, "max_key_size");
  const auto started = clock::now();
  const std::string lock_timeout = std::to_string(m_options.gc_lock_timeout.count()) + "ms";
  const auto& batch_statement =
      options.resource_type ? m_statements->gc_batch_of_type : m_statements->gc_batch;
  const auto limit = static_cast<std::int64_t>(options.batch_size);
  cache_gc_result result;
  auto lease = m_pool->acquire();
  for (;;) {
    // The first batch always runs, so a run under a time limit always makes progress.
    if (result.batches > 0 && options.max_duration &&
        clock::now() - started >= *options.max_duration) {
      result.finished = false;
      break;
    }
    std::size_t batch_deleted = 0;
    try {
      pqxx::work tx{*lease};
      detail::exec_statement(lease, tx, m_statements->gc_lock_timeout.name,
                             m_statements->gc_lock_timeout.sql, lock_timeout);
      auto deleted =
          options.resource_type
              ? detail::exec_statement(lease, tx, batch_statement.name, batch_statement.sql, limit,
                                       *options.resource_type)
              : detail::exec_statement(lease, tx, batch_statement.name, batch_statement.sql, limit);
      tx.commit();
      batch_deleted = static_cast<std::size_t>(deleted.affected_rows());
    } catch (...) {
      try {
        rethrow_cache_error("deleting expired cache entries", m_schema);
      } catch (const error& e) {
        if (e.kind() != error_kind::lock_timeout)
          throw;
        throw error(e.kind(),
                    std::string{e.what()} + " (after deleting " + std::to_string(result.deleted) +
                        " expired entries in " + std::to_string(result.batches) + " batches)",
                    "something holds a lock on the cache table (a migration, VACUUM FULL, "
                    "LOCK TABLE); run gc again later",
                    e.sqlstate());
      }
    }
    ++result.batches;
    result.deleted += batch_deleted;
    if (options.progress)
      options.progress(batch_deleted, result.deleted);
    // A short batch means nothing expired was left that another session did not hold.
    if (batch_deleted < options.batch_size)
      break;
  }
  result.elapsed = clock::now() - started;
  return result;
}

cache_gc_result cache::gc(std::size_t batch_size,
                          std::optional<std::chrono::milliseconds> max_duration) {
  cache_gc_options options;
  options.batch_size = batch_size;
  options.max_duration = max_duration;
  return gc(options);
}

std::size_t cache::count_expired(const std::optional<std::string>& resource_type) {
  if (resource_type)
    check_text("resource type", *resource_type, m_options.max_key_size, "max_key_size");
  auto lease = m_pool->acquire();
  auto rows = resource_type ? run_statement(lease, m_statements->count_expired_of_type,
                                            {text_param(*resource_type)},
                                            "counting expired cache entries", m_schema)
                            : run_statement(lease, m_statements->count_expired, {},
                                            "counting expired cache entries", m_schema);
  return static_cast<std::size_t>(rows.int8(0, 0));
}

}  // namespace pgkit
