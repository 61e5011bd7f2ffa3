#include "pgkit/auth.hpp"

#include <sodium.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>

#include "core/pqxx_compat.hpp"
#include "core/sqlstate.hpp"
#include "core/striped_counters.hpp"
#include "core/text.hpp"
#include "core/ttl_limit.hpp"
#include "pgkit/error.hpp"
#include "pgkit/migration.hpp"
#include "pgkit/session.hpp"
#include "stores/auth_statements.hpp"
#include "stores/session_key.hpp"
#include "stores/statements.hpp"
#include "stores/text_array.hpp"

namespace pgkit {
namespace {

using detail::binary_param;
using detail::bound_param;
using detail::int_param;
using detail::statement;
using detail::text_param;
namespace sql = detail::auth_sql;

bound_param optional_param(const std::optional<std::string>& value) {
  return value ? text_param(*value) : bound_param{};
}

timestamp to_timestamp(std::int64_t microseconds) {
  return timestamp{
      std::chrono::duration_cast<timestamp::duration>(std::chrono::microseconds{microseconds})};
}

std::int64_t epoch_microseconds(timestamp when) {
  return std::chrono::duration_cast<std::chrono::microseconds>(when.time_since_epoch()).count();
}

std::string text_at(const row_view& row, std::size_t column) {
  return std::string{row.get(column).value_or(std::string_view{})};
}

std::optional<std::string> optional_text_at(const row_view& row, std::size_t column) {
  auto value = row.get(column);
  if (!value)
    return std::nullopt;
  return std::string{*value};
}

std::optional<timestamp> optional_time_at(const row_view& row, std::size_t column) {
  auto value = row.get(column);
  if (!value)
    return std::nullopt;
  std::int64_t microseconds = 0;
  auto [end, failure] = std::from_chars(value->data(), value->data() + value->size(), microseconds);
  if (failure != std::errc{} || end != value->data() + value->size()) {
    throw usage_error("column " + std::to_string(column) +
                      " is not a time in microseconds since the epoch, as the select lists of "
                      "auth_store give it");
  }
  return to_timestamp(microseconds);
}

timestamp time_at(const row_view& row, std::size_t column) {
  auto value = optional_time_at(row, column);
  if (!value)
    throw usage_error("column " + std::to_string(column) + " is NULL where a time is required");
  return *value;
}

row_view row_of(const detail::result& rows, int row) {
  return row_view{rows.get(), row};
}

const char* token_type_name(token_type type) {
  switch (type) {
    case token_type::password_reset:
      return "password_reset";
    case token_type::email_confirmation:
      return "email_confirmation";
    case token_type::phone_number_confirmation:
      return "phone_number_confirmation";
    case token_type::magic_link:
      return "magic_link";
  }
  throw usage_error("unknown one-time token type");
}

// True for the canonical text form of a UUID (8-4-4-4-12 hex digits): anything else is no id
// of ours, and is not sent (the cast would fail with an SQL error).
bool is_uuid(std::string_view text) {
  if (text.size() != 36)
    return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-')
        return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

void check_positive(ttl lifetime, const char* what) {
  if (lifetime.count() <= 0) {
    throw usage_error(std::string{what} + " must be positive, not " +
                      std::to_string(lifetime.count()) + " ms");
  }
  detail::check_ttl_limit(lifetime, what, detail::ttl_of::session);
}

// An email or phone number: not empty, and no NUL byte, which PostgreSQL's text cannot hold.
void check_not_empty(const std::optional<std::string>& value, const char* what) {
  if (value && value->empty())
    throw usage_error(std::string{what} + " must not be empty; leave it unset instead");
  if (value && value->find('\0') != std::string::npos)
    throw usage_error(std::string{what} + " must not contain a NUL byte");
}

// Found before anything was sent: the kind a missing user would get from the server, but no
// SQLSTATE, which only the server reports.
error no_live_user(const char* context) {
  return error(error_kind::foreign_key_violation,
               std::string{context} + ": there is no live user with this id");
}

// Call only in the handler of `e`. Rethrows `e` as the store reports it: a missing table or column
// gets a hint, a taken email or phone number says which (not the value: the server's detail repeats
// it), input the server refused is a usage error.
[[noreturn]] void rethrow_auth_error(const error& e, const std::string& context,
                                     const std::string& schema) {
  if (e.kind() == error_kind::unique_violation) {
    std::string_view message = e.what();
    if (message.find("auth_user_live_email_key") != std::string_view::npos) {
      throw sql_error(context + ": a live user already has this email", e.sqlstate(), {},
                      "emails are unique among live users, ignoring case");
    }
    if (message.find("auth_user_live_phone_number_key") != std::string_view::npos)
      throw sql_error(context + ": a live user already has this phone number", e.sqlstate());
  }
  if (detail::is(e.sqlstate(), detail::sql_condition::invalid_text_representation) ||
      detail::is(e.sqlstate(), detail::sql_condition::check_violation)) {
    throw usage_error(e.what());
  }
  detail::rethrow_store_error(e, "auth", schema);
}

}  // namespace

struct auth_store::state {
  std::shared_ptr<pool> connections;
  std::string schema;
  auth_options options;
  std::string dummy_hash;
  // How long the last verify at the store's limits took (the dummy's at first): what a refusal
  // of a hash made under older limits is made to last.
  std::atomic<std::chrono::steady_clock::duration> verify_cost{};
  statement create_user, get_user, get_user_by_email, delete_user, set_password, password_of,
      rehash, sign_in, create_session, get_session, remove_expired_session, delete_session,
      delete_user_sessions, lock_user, create_token, use_token, check;
  mutable detail::store_counters<0> counters;

  // Runs `stmt` on `borrowed` in autocommit, results in text (what row_view reads).
  detail::result run(const lease& borrowed, const statement& stmt,
                     const std::vector<bound_param>& parameters, const std::string& context) const {
    counters.sent();
    try {
      return detail::run_statement(borrowed, stmt, parameters, context, {},
                                   detail::result_format::text);
    } catch (const error& e) {
      counters.failed(e.kind());
      rethrow_auth_error(e, context, schema);
    }
  }

  // Runs `stmt` on a connection leased for it.
  detail::result run(const statement& stmt, const std::vector<bound_param>& parameters,
                     const std::string& context) const {
    auto lease = connections->acquire();
    return run(lease, stmt, parameters, context);
  }

  std::string hash_password(std::string_view password) const {
    if (password.empty())
      throw usage_error("a password must not be empty");
    char hashed[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(hashed, password.data(), password.size(), options.password_ops_limit,
                          static_cast<std::size_t>(options.password_mem_limit)) != 0) {
      throw error(error_kind::internal, "hashing a password failed: argon2id could not get " +
                                            std::to_string(options.password_mem_limit >> 20) +
                                            " MiB of memory");
    }
    return hashed;
  }

  // True for a hash made under limits other than the store's.
  bool needs_rehash(const std::string& hash) const {
    return crypto_pwhash_str_needs_rehash(hash.c_str(), options.password_ops_limit,
                                          static_cast<std::size_t>(options.password_mem_limit)) !=
           0;
  }

  std::string statement_name(const std::string& what) const {
    return detail::statement_name("auth", what, schema);
  }
};

auth_store::auth_store(std::shared_ptr<pool> pool, auth_options options)
    : m_state{std::make_unique<state>()} {
  auto& s = *m_state;
  if (!pool)
    throw usage_error("an auth store needs a pool, not a null pointer");
  s.schema = resolve_schema(options.schema, pool->config());
  validate_schema_name(s.schema);
  check_positive(options.session_ttl, "the session ttl");
  check_positive(options.token_ttl, "the one-time token ttl");
  if (options.password_ops_limit == 0)
    options.password_ops_limit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
  if (options.password_mem_limit == 0)
    options.password_mem_limit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
  if (options.password_ops_limit < crypto_pwhash_OPSLIMIT_MIN ||
      options.password_ops_limit > crypto_pwhash_OPSLIMIT_MAX ||
      options.password_mem_limit < crypto_pwhash_MEMLIMIT_MIN ||
      options.password_mem_limit > crypto_pwhash_MEMLIMIT_MAX) {
    throw usage_error(
        "the password limits are outside argon2id's range",
        "use at least crypto_pwhash_OPSLIMIT_MIN (" + std::to_string(crypto_pwhash_OPSLIMIT_MIN) +
            ") and crypto_pwhash_MEMLIMIT_MIN (" + std::to_string(crypto_pwhash_MEMLIMIT_MIN) +
            " bytes), or 0 for the defaults");
  }
  detail::ensure_sodium();
  s.connections = std::move(pool);
  s.options = options;
  // Verified against when the email is unknown, so that an unknown email costs what a wrong
  // password costs. The random password makes sure it never matches.
  const auto hashing_started = std::chrono::steady_clock::now();
  s.dummy_hash = s.hash_password(detail::new_session_key());
  s.verify_cost = std::chrono::steady_clock::now() - hashing_started;

  for (const auto& [entry, text] :
       {std::pair{&s.create_user, &sql::k_create_user}, std::pair{&s.get_user, &sql::k_get_user},
        std::pair{&s.get_user_by_email, &sql::k_get_user_by_email},
        std::pair{&s.delete_user, &sql::k_delete_user},
        std::pair{&s.set_password, &sql::k_set_password},
        std::pair{&s.password_of, &sql::k_password_of}, std::pair{&s.rehash, &sql::k_rehash},
        std::pair{&s.sign_in, &sql::k_sign_in},
        std::pair{&s.create_session, &sql::k_create_session},
        std::pair{&s.get_session, &sql::k_get_session},
        std::pair{&s.remove_expired_session, &sql::k_remove_expired_session},
        std::pair{&s.delete_session, &sql::k_delete_session},
        std::pair{&s.delete_user_sessions, &sql::k_delete_user_sessions},
        std::pair{&s.lock_user, &sql::k_lock_user},
        std::pair{&s.create_token, &sql::k_create_token},
        std::pair{&s.use_token, &sql::k_use_token}, std::pair{&s.check, &sql::k_check}})
    *entry = detail::make_statement("auth", *text, s.schema);
}

auth_store::~auth_store() = default;

store_stats auth_store::statistics() const {
  store_stats stats;
  m_state->counters.read_into(stats);
  return stats;
}

const std::string& auth_store::schema() const noexcept {
  return m_state->schema;
}

const std::string& auth_store::user_select_fields() {
  static const std::string fields = sql::k_user_fields;
  return fields;
}

const std::string& auth_store::session_select_fields() {
  static const std::string fields = sql::k_session_fields;
  return fields;
}

namespace {

// Throws usage_error unless `row` has `columns` columns from `first` on.
void check_columns(const row_view& row, std::size_t first, int columns, const char* decoder,
                   const char* fields) {
  if (row.size() < first + static_cast<std::size_t>(columns)) {
    throw usage_error(std::string{decoder} + " needs the " + std::to_string(columns) +
                      " columns of auth_store::" + fields + "() from column " +
                      std::to_string(first) + ", but the row has " + std::to_string(row.size()));
  }
}

// The select list `fields`, whose columns name `table`, naming `alias` instead.
std::string with_alias(std::string fields, std::string_view table, std::string_view alias) {
  if (alias.empty() || alias.find('\0') != std::string_view::npos)
    throw usage_error("a table alias must be a non-empty name without NUL bytes");
  const std::string from = std::string{table} + ".";
  const std::string to = detail::quote_identifier(alias) + ".";
  for (auto at = fields.find(from); at != std::string::npos; at = fields.find(from, at)) {
    fields.replace(at, from.size(), to);
    at += to.size();
  }
  return fields;
}

}  // namespace

std::string auth_store::user_select_fields(std::string_view alias) {
  return with_alias(sql::k_user_fields, "auth_user", alias);
}

std::string auth_store::session_select_fields(std::string_view alias) {
  return with_alias(sql::k_session_fields, "auth_session", alias);
}

user decode_user(const row_view& row, std::size_t first) {
  check_columns(row, first, sql::k_user_columns, "decode_user", "user_select_fields");
  user out;
  out.id = text_at(row, first);
  out.role = text_at(row, first + 1);
  out.email = optional_text_at(row, first + 2);
  out.phone_number = optional_text_at(row, first + 3);
  out.email_confirmed_at = optional_time_at(row, first + 4);
  out.phone_number_confirmed_at = optional_time_at(row, first + 5);
  out.last_sign_in = optional_time_at(row, first + 6);
  out.banned_until = optional_time_at(row, first + 7);
  out.app_metadata = text_at(row, first + 8);
  out.user_metadata = text_at(row, first + 9);
  out.created_at = time_at(row, first + 10);
  out.updated_at = time_at(row, first + 11);
  return out;
}

auth_session decode_session(const row_view& row, std::size_t first) {
  check_columns(row, first, sql::k_session_columns, "decode_session", "session_select_fields");
  auth_session out;
  out.id = text_at(row, first);
  out.user_id = text_at(row, first + 1);
  out.ip = optional_text_at(row, first + 2);
  out.user_agent = optional_text_at(row, first + 3);
  out.created_at = time_at(row, first + 4);
  out.expires_at = optional_time_at(row, first + 5);
  return out;
}

void auth_store::check() {
  auto& s = *m_state;
  auto rows = s.run(s.check, {text_param(detail::quote_identifier(s.schema) + ".auth_session")},
                    "checking the auth tables");
  // The module's second step added token_hash: without it the store cannot work.
  if (row_of(rows, 0).get(0) != std::string_view{"1"})
    throw detail::module_not_applied("auth", s.schema, "its tables are missing or out of date");
}

sweep_result auth_store::sweep(const sweep_options& options) {
  auto& s = *m_state;
  if (options.scope == sweep_scope::session) {
    throw usage_error("the auth store sweeps the auth tables, not the session table",
                      "sweep sessions with pgkit::session_store::sweep");
  }
  sweep_options settings = options;
  settings.scope = sweep_scope::auth;
  auto lease = s.connections->acquire();
  return sweep_expired_sessions(lease.connection(), s.schema, settings);
}

user auth_store::create_user(const new_user& u) {
  auto& s = *m_state;
  check_not_empty(u.email, "an email");
  check_not_empty(u.phone_number, "a phone number");
  if (u.role.empty())
    throw usage_error("a role must not be empty");
  std::optional<std::string> hash;
  if (u.password)
    hash = s.hash_password(*u.password);
  auto rows = s.run(s.create_user,
                    {optional_param(u.email), optional_param(u.phone_number), optional_param(hash),
                     text_param(u.role), text_param(u.app_metadata), text_param(u.user_metadata)},
                    "creating a user");
  return decode_user(row_of(rows, 0));
}

std::optional<user> auth_store::get_user(std::string_view id) {
  auto& s = *m_state;
  if (!is_uuid(id))
    return std::nullopt;
  auto rows = s.run(s.get_user, {text_param(id)}, "reading a user");
  if (rows.rows() == 0)
    return std::nullopt;
  return decode_user(row_of(rows, 0));
}

std::optional<user> auth_store::get_user_by_email(std::string_view email) {
  auto& s = *m_state;
  auto rows = s.run(s.get_user_by_email, {text_param(email)}, "reading a user");
  if (rows.rows() == 0)
    return std::nullopt;
  return decode_user(row_of(rows, 0));
}

std::optional<user> auth_store::update_user(std::string_view id, const user_update& changes) {
  auto& s = *m_state;
  if (changes.email)
    check_not_empty(*changes.email, "an email");
  if (changes.phone_number)
    check_not_empty(*changes.phone_number, "a phone number");
  if (changes.role && changes.role->empty())
    throw usage_error("a role must not be empty");
  if (!is_uuid(id))
    return std::nullopt;
  // One statement per combination of the fields set, named by it.
  std::vector<bound_param> parameters{text_param(id)};
  std::string assignments;
  unsigned combination = 0;
  auto assign = [&](const char* column, bound_param value, const char* cast, unsigned bit) {
    parameters.push_back(std::move(value));
    assignments += std::string{", "} + column + " = $" + std::to_string(parameters.size()) + cast;
    combination |= bit;
  };
  if (changes.email)
    assign("email", optional_param(*changes.email), "", 1U);
  if (changes.phone_number)
    assign("phone_number", optional_param(*changes.phone_number), "", 2U);
  if (changes.role)
    assign("role", text_param(*changes.role), "", 4U);
  if (changes.app_metadata)
    assign("app_metadata", text_param(*changes.app_metadata), "::jsonb", 8U);
  if (changes.user_metadata)
    assign("user_metadata", text_param(*changes.user_metadata), "::jsonb", 16U);
  if (changes.banned_until) {
    std::optional<std::int64_t> micros;
    if (*changes.banned_until)
      micros = epoch_microseconds(**changes.banned_until);
    parameters.push_back(int_param(micros));
    assignments += ", banned_until = timestamptz 'epoch' + $" + std::to_string(parameters.size()) +
                   "::bigint * interval '1 microsecond'";
    combination |= 32U;
  }
  if (combination == 0)
    return get_user(id);
  const statement update{s.statement_name("update_user_" + std::to_string(combination)),
                         "UPDATE " + detail::quote_identifier(s.schema) +
                             ".auth_user AS auth_user SET updated_at = now()" + assignments +
                             " WHERE id = $1::uuid AND deleted_at IS NULL RETURNING " +
                             user_select_fields()};
  auto rows = s.run(update, parameters, "updating a user");
  if (rows.rows() == 0)
    return std::nullopt;
  return decode_user(row_of(rows, 0));
}

bool auth_store::delete_user(std::string_view id) {
  auto& s = *m_state;
  if (!is_uuid(id))
    return false;
  auto rows = s.run(s.delete_user, {text_param(id)}, "deleting a user");
  return row_of(rows, 0).get(0) == std::string_view{"1"};
}

std::vector<user> auth_store::list_users(const user_search& search) {
  auto& s = *m_state;
  if (search.limit < 1 || search.limit > 1000) {
    throw usage_error("a user search's limit must be 1..1000, not " + std::to_string(search.limit));
  }
  if (search.after_id && !is_uuid(*search.after_id))
    throw usage_error("after_id must be a user id (a UUID), as list_users returned it");

  // Every list becomes one arm of a UNION (the OR of the lists), each arm limited to live
  // users, and the outer query once more. Email and phone patterns walk their byte-ordered
  // index from the pattern's literal prefix (the part before the first %, _ or \) to the end
  // of that prefix; LIKE then decides. Email patterns ignore case.
  const std::string users = detail::quote_identifier(s.schema) + ".auth_user";
  std::vector<bound_param> parameters;
  std::vector<std::string> arms;
  unsigned combination = 0;
  auto patterns = [&](const std::vector<std::string>& list) {
    parameters.push_back(text_param(detail::text_array(list)));
    return "$" + std::to_string(parameters.size()) + "::text[]";
  };
  auto prefix_arm = [&](const std::vector<std::string>& list, const std::string& value,
                        const std::string& pattern) {
    const std::string keyed = "(" + value + ") COLLATE \"C\"";
    return "SELECT e.id FROM unnest(" + patterns(list) + ") AS given(pattern) CROSS JOIN LATERAL " +
           "(SELECT " + pattern + " AS pattern) AS p CROSS JOIN LATERAL (SELECT substring(" +
           "p.pattern FROM '^[^%_\\\\]*') AS prefix) AS b JOIN " + users +
           " AS e ON e.deleted_at IS NULL AND " + keyed + " >= b.prefix AND " + keyed +
           " < b.prefix || chr(1114111) AND " + value + " LIKE p.pattern";
  };
  if (!search.ids.empty()) {
    arms.push_back("SELECT id FROM " + users + " WHERE deleted_at IS NULL AND id::text LIKE ANY(" +
                   patterns(search.ids) + ")");
    combination |= 1U;
  }
  if (!search.emails.empty()) {
    arms.push_back(prefix_arm(search.emails, "lower(e.email)", "lower(given.pattern)"));
    combination |= 2U;
  }
  if (!search.phone_numbers.empty()) {
    arms.push_back(prefix_arm(search.phone_numbers, "e.phone_number", "given.pattern"));
    combination |= 4U;
  }
  std::string text = "SELECT " + user_select_fields() + " FROM " + users +
                     " AS auth_user WHERE auth_user.deleted_at IS NULL";
  if (!arms.empty()) {
    text += " AND auth_user.id IN (";
    for (std::size_t i = 0; i < arms.size(); ++i)
      text += (i == 0 ? "" : " UNION ") + arms[i];
    text += ")";
  }
  if (search.after_id) {
    parameters.push_back(text_param(*search.after_id));
    text += " AND auth_user.id > $" + std::to_string(parameters.size()) + "::uuid";
    combination |= 8U;
  }
  parameters.push_back(int_param(static_cast<std::int64_t>(search.limit)));
  text += " ORDER BY auth_user.id LIMIT $" + std::to_string(parameters.size()) + "::bigint";
  const statement list{s.statement_name("list_users_" + std::to_string(combination)),
                       std::move(text)};
  auto rows = s.run(list, parameters, "listing users");
  std::vector<user> found;
  found.reserve(static_cast<std::size_t>(rows.rows()));
  for (int row = 0; row < rows.rows(); ++row)
    found.push_back(decode_user(row_of(rows, row)));
  return found;
}

void auth_store::set_password(std::string_view user_id, std::string_view password) {
  auto& s = *m_state;
  auto hash = s.hash_password(password);
  if (!is_uuid(user_id) ||
      s.run(s.set_password, {text_param(user_id), text_param(hash)}, "setting a password")
              .affected_rows() == 0)
    throw no_live_user("setting a password");
}

std::optional<user> auth_store::verify_password(std::string_view email, std::string_view password) {
  auto& s = *m_state;
  std::optional<user> found;
  std::optional<std::string> hash;
  bool banned = false;
  auto rows = s.run(s.password_of, {text_param(email)}, "verifying a password");
  if (rows.rows() > 0) {
    auto row = row_of(rows, 0);
    found = decode_user(row);
    hash = optional_text_at(row, sql::k_user_columns);
    banned = row.get(sql::k_user_columns + 1) == std::string_view{"t"};
  }
  // The same argon2id work whether the email is unknown, has no password, or is banned.
  const auto& against = hash ? *hash : s.dummy_hash;
  const bool current_limits = !hash || !s.needs_rehash(*hash);
  const auto started = std::chrono::steady_clock::now();
  bool matches = crypto_pwhash_str_verify(against.c_str(), password.data(), password.size()) == 0;
  if (current_limits)
    s.verify_cost = std::chrono::steady_clock::now() - started;
  if (!found || !hash || !matches || banned) {
    // A hash made under older (cheaper) limits is verified faster than the dummy: a refusal
    // then takes as long as a verify at the current limits, or an attacker would tell the
    // accounts that exist (and have not signed in since the limits rose) from unknown emails.
    if (!current_limits)
      std::this_thread::sleep_until(started + s.verify_cost.load());
    return std::nullopt;
  }
  if (!current_limits) {
    s.run(s.rehash,
          {text_param(found->id), text_param(s.hash_password(password)), text_param(*hash)},
          "rehashing a password");
  }
  return found;
}

std::optional<signed_in> auth_store::sign_in(std::string_view email, std::string_view password,
                                             std::optional<std::string> ip,
                                             std::optional<std::string> user_agent) {
  auto& s = *m_state;
  auto who = verify_password(email, password);
  if (!who)
    return std::nullopt;
  auto token = detail::new_session_key();
  auto digest = detail::session_key_digest(token);
  auto rows = s.run(s.sign_in,
                    {text_param(who->id), binary_param(digest), optional_param(ip),
                     optional_param(user_agent), int_param(s.options.session_ttl.count())},
                    "signing in");
  if (rows.rows() == 0)
    return std::nullopt;  // deleted between the password check and now
  auto row = row_of(rows, 0);
  return signed_in{decode_user(row), decode_session(row, sql::k_user_columns), std::move(token)};
}

std::string auth_store::create_session(std::string_view user_id, std::optional<std::string> ip,
                                       std::optional<std::string> user_agent,
                                       std::optional<ttl> lifetime) {
  auto& s = *m_state;
  auto period = lifetime.value_or(s.options.session_ttl);
  check_positive(period, "a session's ttl");
  if (!is_uuid(user_id))
    throw no_live_user("creating a session");
  auto token = detail::new_session_key();
  auto digest = detail::session_key_digest(token);
  auto rows = s.run(s.create_session,
                    {text_param(user_id), binary_param(digest), optional_param(ip),
                     optional_param(user_agent), int_param(period.count())},
                    "creating a session");
  if (rows.rows() == 0)
    throw no_live_user("creating a session");
  return token;
}

std::optional<auth_session> auth_store::get_session(std::string_view token) {
  auto& s = *m_state;
  if (!is_well_formed_session_key(token))
    return std::nullopt;
  auto digest = detail::session_key_digest(token);
  // An expired session read on a replica is a miss there (a replica cannot delete it); the
  // primary then reads it again and deletes it.
  auto read = [&](pool& from, bool on_primary) -> std::optional<auth_session> {
    auto lease = from.acquire();
    auto rows = s.run(lease, s.get_session, {binary_param(digest)}, "reading a session");
    if (rows.rows() == 0)
      return std::nullopt;
    auto row = row_of(rows, 0);
    if (row.get(sql::k_session_columns) != std::string_view{"t"}) {
      if (on_primary) {
        s.run(lease, s.remove_expired_session, {binary_param(digest)},
              "deleting an expired session");
      }
      return std::nullopt;
    }
    return decode_session(row);
  };
  if (s.options.replica) {
    // The replica may not have replayed a session created a moment ago, or may be down: the
    // primary answers then (see docs/scaling.md).
    try {
      if (auto found = read(*s.options.replica, false))
        return found;
    } catch (const error&) {
    }
  }
  return read(*s.connections, true);
}

bool auth_store::delete_session(std::string_view token) {
  auto& s = *m_state;
  if (!is_well_formed_session_key(token))
    return false;
  auto digest = detail::session_key_digest(token);
  return s.run(s.delete_session, {binary_param(digest)}, "deleting a session").affected_rows() > 0;
}

std::size_t auth_store::delete_user_sessions(std::string_view user_id) {
  auto& s = *m_state;
  if (!is_uuid(user_id))
    return 0;
  return static_cast<std::size_t>(
      s.run(s.delete_user_sessions, {text_param(user_id)}, "deleting a user's sessions")
          .affected_rows());
}

std::string auth_store::create_one_time_token(std::string_view user_id, token_type type,
                                              std::optional<ttl> lifetime) {
  auto& s = *m_state;
  auto period = lifetime.value_or(s.options.token_ttl);
  check_positive(period, "a one-time token's ttl");
  const char* type_name = token_type_name(type);
  if (!is_uuid(user_id))
    throw no_live_user("creating a one-time token");
  auto token = detail::new_session_key();
  auto digest = detail::session_key_digest(token);
  const std::string context = "creating a one-time token";
  auto lease = s.connections->acquire();
  const auto on = detail::wire_of(lease);
  detail::block transaction{on, context};
  if (s.run(lease, s.lock_user, {text_param(user_id)}, context).rows() == 0)
    throw no_live_user("creating a one-time token");
  s.run(
      lease, s.create_token,
      {text_param(user_id), text_param(type_name), binary_param(digest), int_param(period.count())},
      context);
  transaction.commit(context);
  return token;
}

std::optional<std::string> auth_store::use_one_time_token(std::string_view token, token_type type) {
  auto& s = *m_state;
  const char* type_name = token_type_name(type);
  if (!is_well_formed_session_key(token))
    return std::nullopt;
  auto digest = detail::session_key_digest(token);
  auto rows =
      s.run(s.use_token, {binary_param(digest), text_param(type_name)}, "using a one-time token");
  if (rows.rows() == 0)
    return std::nullopt;
  return text_at(row_of(rows, 0), 0);
}

}  // namespace pgkit
