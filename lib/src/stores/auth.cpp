#include "pgkit/auth.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <utility>

#include "core/pqxx_compat.hpp"
#include "migrate/migration_sql.hpp"
#include "pgkit/error.hpp"
#include "pgkit/migration.hpp"
#include "pgkit/session.hpp"
#include "stores/session_key.hpp"
#include "stores/statements.hpp"

namespace pgkit {
namespace {

struct statement {
  std::string name;
  std::string sql;
};

// A timestamptz column as microseconds since the Unix epoch: exact, and independent of the
// session's DateStyle and TimeZone.
std::string epoch_us(const std::string& column) {
  return "(extract(epoch FROM " + column + ") * 1000000)::bigint";
}

// The inverse, for a bigint parameter.
std::string from_epoch_us(const std::string& parameter) {
  return "(timestamptz 'epoch' + " + parameter + "::bigint * interval '1 microsecond')";
}

std::string user_fields(const std::string& t) {
  return t + ".id::text, " + t + ".role, " + t + ".email, " + t + ".phone_number, " +
         epoch_us(t + ".email_confirmed_at") + ", " + epoch_us(t + ".phone_number_confirmed_at") +
         ", " + epoch_us(t + ".last_sign_in") + ", " + epoch_us(t + ".banned_until") + ", " + t +
         ".app_metadata::text, " + t + ".user_metadata::text, " + epoch_us(t + ".created_at") +
         ", " + epoch_us(t + ".updated_at");
}
constexpr int k_user_columns = 12;

std::string session_fields(const std::string& t) {
  return t + ".id::text, " + t + ".user_id::text, abbrev(" + t + ".ip), " + t + ".user_agent, " +
         epoch_us(t + ".created_at") + ", " + epoch_us(t + ".expires_at");
}

timestamp to_timestamp(std::int64_t microseconds) {
  return timestamp{
      std::chrono::duration_cast<timestamp::duration>(std::chrono::microseconds{microseconds})};
}

std::optional<timestamp> optional_timestamp(const pqxx::field& field) {
  if (field.is_null())
    return std::nullopt;
  return to_timestamp(field.as<std::int64_t>());
}

std::optional<std::string> optional_text(const pqxx::field& field) {
  if (field.is_null())
    return std::nullopt;
  return field.as<std::string>();
}

std::int64_t epoch_microseconds(timestamp when) {
  return std::chrono::duration_cast<std::chrono::microseconds>(when.time_since_epoch()).count();
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

// A text[] literal holding `values`, bound as one parameter.
std::string array_literal(const std::vector<std::string>& values) {
  std::string out = "{";
  for (const auto& value : values) {
    if (out.size() > 1)
      out += ',';
    out += '"';
    for (char c : value) {
      if (c == '"' || c == '\\')
        out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

void check_positive(std::chrono::seconds ttl, const char* what) {
  if (ttl.count() <= 0)
    throw usage_error(std::string{what} + " must be positive, not " + std::to_string(ttl.count()) +
                      " s");
}

void check_not_empty(const std::optional<std::string>& value, const char* what) {
  if (value && value->empty())
    throw usage_error(std::string{what} + " must not be empty; leave it unset instead");
}

std::string apply_hint(const std::string& schema) {
  return "apply the auth module first: pgkit apply --schema " + schema + " auth";
}

// Turns the exception being handled into a pgkit::error: a missing table or column gets a hint,
// a taken email or phone number says which, input the server refused is a usage error.
[[noreturn]] void rethrow_auth_error(const char* context, const std::string& schema) {
  try {
    detail::rethrow_as_pgkit(context);
  } catch (const error& e) {
    if (e.kind() == error_kind::undefined_object && e.hint().empty())
      throw sql_error(e.what(), e.sqlstate(), {}, apply_hint(schema));
    if (e.kind() == error_kind::unique_violation) {
      // The server's message names the index; its detail would repeat the value, so it is
      // not passed on.
      std::string_view message = e.what();
      if (message.find("auth_user_live_email_key") != std::string_view::npos) {
        throw sql_error(std::string{context} + ": a live user already has this email", "23505", {},
                        "emails are unique among live users, ignoring case");
      }
      if (message.find("auth_user_live_phone_number_key") != std::string_view::npos) {
        throw sql_error(std::string{context} + ": a live user already has this phone number",
                        "23505");
      }
    }
    if (e.sqlstate() == "22P02" || e.sqlstate() == "23514")
      throw usage_error(e.what());
    throw;
  }
}

error no_live_user(const char* context) {
  return error(error_kind::foreign_key_violation,
               std::string{context} + ": there is no live user with this id", {}, "23503");
}

detail::bytea_param bytes(const std::string& value) {
  return detail::make_bytea_param(value);
}

}  // namespace

struct auth_store::state {
  std::shared_ptr<pool> connections;
  std::string schema;
  auth_options options;
  std::string dummy_hash;
  statement create_user, get_user, get_user_by_email, delete_user, set_password, password_of,
      rehash, sign_in, create_session, get_session, remove_expired_session, delete_session,
      delete_user_sessions, lock_user, retire_tokens, insert_token, use_token;
  std::string users, sessions, tokens;  // quoted table names

  // Prepares (once per connection) and runs `what` with `args` in autocommit.
  template <typename... Args>
  pqxx::result run(const lease& borrowed, pqxx::transaction_base& tx, const statement& what,
                   Args&&... args) const {
    return detail::exec_statement(borrowed, tx, what.name, what.sql, std::forward<Args>(args)...);
  }

  // Runs `work(lease, tx)` in autocommit on a leased connection; failures become pgkit errors
  // prefixed with `context`.
  template <typename Work>
  auto autocommit(const char* context, Work&& work) const {
    try {
      auto lease = connections->acquire();
      pqxx::nontransaction tx{*lease};
      return work(lease, tx);
    } catch (...) {
      rethrow_auth_error(context, schema);
    }
  }

  // Runs one statement in autocommit and returns its rows.
  template <typename... Args>
  pqxx::result exec(const char* context, const statement& what, Args&&... args) const {
    return autocommit(context, [&](const lease& borrowed, pqxx::transaction_base& tx) {
      return run(borrowed, tx, what, std::forward<Args>(args)...);
    });
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

  bool password_matches(const std::string& hash, std::string_view password) const {
    return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
  }

  std::string name(const char* what) const {
    return std::string{"pgkit_auth_"} + what + detail::statement_suffix(schema);
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
            " bytes), or 0 for the "
            "defaults");
  }
  detail::ensure_sodium();
  s.connections = std::move(pool);
  s.options = options;
  // Verified against when the email is unknown, so that an unknown email costs what a wrong
  // password costs. The random password makes sure it never matches.
  s.dummy_hash = s.hash_password(detail::new_session_key());

  const auto q = detail::quote_identifier(s.schema);
  s.users = q + ".auth_user";
  s.sessions = q + ".auth_session";
  s.tokens = q + ".auth_one_time_token";
  const auto fields = user_fields("auth_user");
  const std::string live_user = "auth_user.deleted_at IS NULL";
  const std::string expiry = "now() + $5::bigint * interval '1 second'";

  s.create_user = {s.name("create_user"),
                   "INSERT INTO " + s.users +
                       " AS auth_user (email, phone_number, password_hash, role, app_metadata, "
                       "user_metadata) VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb) RETURNING " +
                       fields};
  s.get_user = {s.name("get_user"), "SELECT " + fields + " FROM " + s.users +
                                        " WHERE auth_user.id = $1::uuid AND " + live_user};
  s.get_user_by_email = {s.name("get_user_by_email"),
                         "SELECT " + fields + " FROM " + s.users +
                             " WHERE lower(auth_user.email) = lower($1) AND " + live_user};
  // One statement: the user is gone, their sessions with them, their tokens retired.
  s.delete_user = {s.name("delete_user"),
                   "WITH gone AS (UPDATE " + s.users +
                       " SET deleted_at = now(), updated_at = now() WHERE id = $1::uuid AND "
                       "deleted_at IS NULL RETURNING id), ended AS (DELETE FROM " +
                       s.sessions +
                       " WHERE user_id IN (SELECT id FROM gone)), retired AS (UPDATE " + s.tokens +
                       " SET deleted_at = now() WHERE user_id IN (SELECT id FROM gone) AND "
                       "deleted_at IS NULL) SELECT count(*) FROM gone"};
  s.set_password = {s.name("set_password"),
                    "UPDATE " + s.users +
                        " SET password_hash = $2, updated_at = now() WHERE id = $1::uuid AND "
                        "deleted_at IS NULL"};
  s.password_of = {s.name("password_of"),
                   "SELECT " + fields +
                       ", auth_user.password_hash, coalesce(auth_user.banned_until > now(), "
                       "false) FROM " +
                       s.users + " WHERE lower(auth_user.email) = lower($1) AND " + live_user};
  // Only when nobody changed the password in between.
  s.rehash = {s.name("rehash"), "UPDATE " + s.users +
                                    " SET password_hash = $2 WHERE id = $1::uuid AND "
                                    "password_hash = $3 AND deleted_at IS NULL"};
  s.sign_in = {
      s.name("sign_in"),
      "WITH auth_user AS (UPDATE " + s.users +
          " SET last_sign_in = now() WHERE id = $1::uuid AND deleted_at IS NULL RETURNING *), "
          "auth_session AS (INSERT INTO " +
          s.sessions +
          " (user_id, token_hash, ip, user_agent, expires_at) SELECT id, $2, $3::inet, $4, " +
          expiry + " FROM auth_user RETURNING *) SELECT " + fields + ", " +
          session_fields("auth_session") + " FROM auth_user, auth_session"};
  s.create_session = {s.name("create_session"),
                      "INSERT INTO " + s.sessions +
                          " (user_id, token_hash, ip, user_agent, expires_at) SELECT id, $2, "
                          "$3::inet, $4, " +
                          expiry + " FROM " + s.users +
                          " WHERE id = $1::uuid AND deleted_at IS NULL RETURNING id"};
  s.get_session = {
      s.name("get_session"),
      "SELECT " + session_fields("auth_session") +
          ", auth_session.expires_at IS NULL OR auth_session.expires_at > now() FROM " +
          s.sessions + " JOIN " + s.users +
          " ON auth_user.id = auth_session.user_id WHERE auth_session.token_hash = $1 AND " +
          live_user + " AND (auth_user.banned_until IS NULL OR auth_user.banned_until <= now())"};
  // SKIP LOCKED: a row that someone else holds is left for purge; the reader never waits.
  s.remove_expired_session = {s.name("remove_expired_session"),
                              "DELETE FROM " + s.sessions + " WHERE id IN (SELECT id FROM " +
                                  s.sessions +
                                  " WHERE token_hash = $1 AND expires_at <= now() FOR UPDATE "
                                  "SKIP LOCKED)"};
  s.delete_session = {s.name("delete_session"),
                      "DELETE FROM " + s.sessions + " WHERE token_hash = $1"};
  s.delete_user_sessions = {s.name("delete_user_sessions"),
                            "DELETE FROM " + s.sessions + " WHERE user_id = $1::uuid"};
  // Creating a token: the user's row lock orders concurrent creations for one user, the old
  // live token of the type is retired, the new one inserted (three statements, one transaction).
  s.lock_user = {s.name("lock_user"), "SELECT 1 FROM " + s.users +
                                          " WHERE id = $1::uuid AND deleted_at IS NULL FOR NO "
                                          "KEY UPDATE"};
  s.retire_tokens = {s.name("retire_tokens"),
                     "UPDATE " + s.tokens +
                         " SET deleted_at = now() WHERE user_id = $1::uuid AND token_type = $2 "
                         "AND deleted_at IS NULL AND used_at IS NULL"};
  s.insert_token = {s.name("insert_token"),
                    "INSERT INTO " + s.tokens +
                        " (user_id, token_type, token_hash, expires_at) VALUES ($1::uuid, $2, "
                        "$3, now() + $4::bigint * interval '1 second')"};
  // One statement: of concurrent uses, the first marks the row used; the others re-check the
  // condition on the row it left and find nothing.
  s.use_token = {s.name("use_token"),
                 "UPDATE " + s.tokens + " AS t SET used_at = now() FROM " + s.users +
                     " AS u WHERE t.token_hash = $1 AND t.token_type = $2 AND t.used_at IS NULL "
                     "AND t.deleted_at IS NULL AND t.expires_at > now() AND u.id = t.user_id "
                     "AND u.deleted_at IS NULL RETURNING t.user_id::text"};
}

auth_store::~auth_store() = default;

const std::string& auth_store::schema() const noexcept {
  return m_state->schema;
}

const std::string& auth_store::user_select_fields() {
  static const std::string fields = user_fields("auth_user");
  return fields;
}

const std::string& auth_store::session_select_fields() {
  static const std::string fields = session_fields("auth_session");
  return fields;
}

user decode_user(const pqxx::row& row) {
  user out;
  out.id = row[0].as<std::string>();
  out.role = row[1].as<std::string>();
  out.email = optional_text(row[2]);
  out.phone_number = optional_text(row[3]);
  out.email_confirmed_at = optional_timestamp(row[4]);
  out.phone_number_confirmed_at = optional_timestamp(row[5]);
  out.last_sign_in = optional_timestamp(row[6]);
  out.banned_until = optional_timestamp(row[7]);
  out.app_metadata = row[8].as<std::string>();
  out.user_metadata = row[9].as<std::string>();
  out.created_at = to_timestamp(row[10].as<std::int64_t>());
  out.updated_at = to_timestamp(row[11].as<std::int64_t>());
  return out;
}

namespace {

// The session columns of a row start at `first`.
auth_session decode_session_at(const pqxx::row& row, int first) {
  auth_session out;
  out.id = row[first].as<std::string>();
  out.user_id = row[first + 1].as<std::string>();
  out.ip = optional_text(row[first + 2]);
  out.user_agent = optional_text(row[first + 3]);
  out.created_at = to_timestamp(row[first + 4].as<std::int64_t>());
  out.expires_at = optional_timestamp(row[first + 5]);
  return out;
}

}  // namespace

auth_session decode_session(const pqxx::row& row) {
  return decode_session_at(row, 0);
}

void auth_store::check() {
  auto& s = *m_state;
  bool applied = false;
  try {
    auto lease = s.connections->acquire();
    pqxx::nontransaction tx{*lease};
    // The second step of the module added token_hash: without it the store cannot work.
    applied = detail::exec_params(tx,
                                  "SELECT count(*) FROM pg_attribute WHERE attrelid = "
                                  "to_regclass($1) AND attname = 'token_hash' AND NOT "
                                  "attisdropped",
                                  s.sessions)[0][0]
                  .as<int>() == 1;
  } catch (...) {
    rethrow_auth_error("checking the auth tables", s.schema);
  }
  if (!applied) {
    throw error(error_kind::undefined_object,
                "the auth module is not applied (or not up to date) in schema " + s.schema,
                apply_hint(s.schema), "42P01");
  }
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
  return decode_user(s.exec("creating a user", s.create_user, u.email, u.phone_number, hash, u.role,
                            u.app_metadata, u.user_metadata)[0]);
}

std::optional<user> auth_store::get_user(std::string_view id) {
  auto& s = *m_state;
  if (!is_uuid(id))
    return std::nullopt;
  auto rows = s.exec("reading a user", s.get_user, std::string{id});
  if (rows.empty())
    return std::nullopt;
  return decode_user(rows[0]);
}

std::optional<user> auth_store::get_user_by_email(std::string_view email) {
  auto& s = *m_state;
  auto rows = s.exec("reading a user", s.get_user_by_email, std::string{email});
  if (rows.empty())
    return std::nullopt;
  return decode_user(rows[0]);
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
  // One statement per combination of fields, named by it.
  detail::param_list params{std::string{id}};
  std::string assignments;
  unsigned combination = 0;
  auto assign = [&](const char* column, const std::optional<std::string>& value, const char* cast,
                    unsigned bit) {
    params.push_back(value);
    assignments += std::string{", "} + column + " = $" + std::to_string(params.size()) + cast;
    combination |= bit;
  };
  if (changes.email)
    assign("email", *changes.email, "", 1U);
  if (changes.phone_number)
    assign("phone_number", *changes.phone_number, "", 2U);
  if (changes.role)
    assign("role", changes.role, "", 4U);
  if (changes.app_metadata)
    assign("app_metadata", changes.app_metadata, "::jsonb", 8U);
  if (changes.user_metadata)
    assign("user_metadata", changes.user_metadata, "::jsonb", 16U);
  if (changes.banned_until) {
    std::optional<std::string> micros;
    if (*changes.banned_until)
      micros = std::to_string(epoch_microseconds(**changes.banned_until));
    params.push_back(micros);
    assignments += ", banned_until = " + from_epoch_us("$" + std::to_string(params.size()));
    combination |= 32U;
  }
  if (combination == 0)
    return get_user(id);
  const std::string sql = "UPDATE " + s.users + " AS auth_user SET updated_at = now()" +
                          assignments + " WHERE id = $1::uuid AND deleted_at IS NULL RETURNING " +
                          user_select_fields();
  auto rows =
      s.autocommit("updating a user", [&](const lease& borrowed, pqxx::transaction_base& tx) {
        return detail::exec_statement_list(
            borrowed, tx, s.name("update_user") + "_" + std::to_string(combination), sql, params);
      });
  if (rows.empty())
    return std::nullopt;
  return decode_user(rows[0]);
}

bool auth_store::delete_user(std::string_view id) {
  auto& s = *m_state;
  if (!is_uuid(id))
    return false;
  return s.exec("deleting a user", s.delete_user, std::string{id})[0][0].as<int>() == 1;
}

std::vector<user> auth_store::list_users(const user_search& search) {
  auto& s = *m_state;
  if (search.limit < 1 || search.limit > 1000) {
    throw usage_error("a user search's limit must be 1..1000, not " + std::to_string(search.limit));
  }
  if (search.after_id && !is_uuid(*search.after_id))
    throw usage_error("after_id must be a user id (a UUID), as list_users returned it");

  // Every list becomes one arm of a UNION: the OR of the lists, each arm limited to live
  // users, and the outer query once more. Email and phone patterns walk their byte-ordered
  // index from the pattern's literal prefix (the part before the first %, _ or \); LIKE then
  // decides.
  detail::param_list params;
  std::vector<std::string> arms;
  unsigned combination = 0;
  auto patterns = [&](const std::vector<std::string>& list) {
    params.emplace_back(array_literal(list));
    return "$" + std::to_string(params.size()) + "::text[]";
  };
  auto prefix_arm = [&](const std::vector<std::string>& list, const std::string& value) {
    const std::string keyed = "(" + value + ") COLLATE \"C\"";
    return "SELECT e.id FROM unnest(" + patterns(list) +
           ") AS given(pattern) CROSS JOIN LATERAL (SELECT " +
           (value.rfind("lower(", 0) == 0 ? std::string{"lower(given.pattern)"}
                                          : std::string{"given.pattern"}) +
           " AS pattern) AS p CROSS JOIN LATERAL (SELECT substring(p.pattern FROM "
           "'^[^%_\\\\]*') AS prefix) AS b JOIN " +
           s.users + " AS e ON e.deleted_at IS NULL AND " + keyed + " >= b.prefix AND " + keyed +
           " < b.prefix || chr(1114111) AND " + value + " LIKE p.pattern";
  };
  if (!search.ids.empty()) {
    arms.push_back("SELECT id FROM " + s.users +
                   " WHERE deleted_at IS NULL AND id::text LIKE ANY(" + patterns(search.ids) + ")");
    combination |= 1U;
  }
  if (!search.emails.empty()) {
    arms.push_back(prefix_arm(search.emails, "lower(e.email)"));
    combination |= 2U;
  }
  if (!search.phone_numbers.empty()) {
    arms.push_back(prefix_arm(search.phone_numbers, "e.phone_number"));
    combination |= 4U;
  }
  std::string sql = "SELECT " + user_select_fields() + " FROM " + s.users +
                    " AS auth_user WHERE auth_user.deleted_at IS NULL";
  if (!arms.empty()) {
    sql += " AND auth_user.id IN (";
    for (std::size_t i = 0; i < arms.size(); ++i)
      sql += (i == 0 ? "" : " UNION ") + arms[i];
    sql += ")";
  }
  if (search.after_id) {
    params.emplace_back(*search.after_id);
    sql += " AND auth_user.id > $" + std::to_string(params.size()) + "::uuid";
    combination |= 8U;
  }
  params.emplace_back(std::to_string(search.limit));
  sql += " ORDER BY auth_user.id LIMIT $" + std::to_string(params.size()) + "::bigint";
  auto rows = s.autocommit("listing users", [&](const lease& borrowed, pqxx::transaction_base& tx) {
    return detail::exec_statement_list(
        borrowed, tx, s.name("list_users") + "_" + std::to_string(combination), sql, params);
  });
  std::vector<user> found;
  found.reserve(detail::row_count(rows));
  for (const auto& row : rows)
    found.push_back(decode_user(row));
  return found;
}

void auth_store::set_password(std::string_view user_id, std::string_view password) {
  auto& s = *m_state;
  auto hash = s.hash_password(password);
  if (!is_uuid(user_id))
    throw no_live_user("setting a password");
  if (s.exec("setting a password", s.set_password, std::string{user_id}, hash).affected_rows() == 0)
    throw no_live_user("setting a password");
}

std::optional<user> auth_store::verify_password(std::string_view email, std::string_view password) {
  auto& s = *m_state;
  std::optional<user> found;
  std::optional<std::string> hash;
  bool banned = false;
  auto rows = s.exec("verifying a password", s.password_of, std::string{email});
  if (!rows.empty()) {
    found = decode_user(rows[0]);
    hash = optional_text(rows[0][k_user_columns]);
    banned = rows[0][k_user_columns + 1].as<bool>();
  }
  // The same argon2id work whether the email is unknown, has no password, or is banned.
  bool matches = s.password_matches(hash.value_or(s.dummy_hash), password);
  if (!found || !hash || !matches || banned)
    return std::nullopt;
  if (crypto_pwhash_str_needs_rehash(hash->c_str(), s.options.password_ops_limit,
                                     static_cast<std::size_t>(s.options.password_mem_limit)) != 0) {
    s.exec("rehashing a password", s.rehash, found->id, s.hash_password(password), *hash);
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
  auto rows = s.exec("signing in", s.sign_in, who->id, bytes(digest), ip, user_agent,
                     std::int64_t{s.options.session_ttl.count()});
  if (rows.empty())
    return std::nullopt;  // deleted between the password check and now
  return signed_in{decode_user(rows[0]), decode_session_at(rows[0], k_user_columns),
                   std::move(token)};
}

std::string auth_store::create_session(std::string_view user_id, std::optional<std::string> ip,
                                       std::optional<std::string> user_agent,
                                       std::optional<std::chrono::seconds> ttl) {
  auto& s = *m_state;
  auto lifetime = ttl.value_or(s.options.session_ttl);
  check_positive(lifetime, "a session's ttl");
  if (!is_uuid(user_id))
    throw no_live_user("creating a session");
  auto token = detail::new_session_key();
  auto digest = detail::session_key_digest(token);
  auto created = s.exec("creating a session", s.create_session, std::string{user_id}, bytes(digest),
                        ip, user_agent, std::int64_t{lifetime.count()});
  if (created.empty())
    throw no_live_user("creating a session");
  return token;
}

std::optional<auth_session> auth_store::get_session(std::string_view token) {
  auto& s = *m_state;
  if (!is_well_formed_session_key(token))
    return std::nullopt;
  auto digest = detail::session_key_digest(token);
  return s.autocommit("reading a session", [&](const lease& borrowed, pqxx::transaction_base& tx) {
    auto rows = s.run(borrowed, tx, s.get_session, bytes(digest));
    std::optional<auth_session> found;
    if (rows.empty())
      return found;
    if (!rows[0][6].as<bool>()) {
      s.run(borrowed, tx, s.remove_expired_session, bytes(digest));
      return found;
    }
    found = decode_session(rows[0]);
    return found;
  });
}

bool auth_store::delete_session(std::string_view token) {
  auto& s = *m_state;
  if (!is_well_formed_session_key(token))
    return false;
  auto digest = detail::session_key_digest(token);
  return s.exec("deleting a session", s.delete_session, bytes(digest)).affected_rows() > 0;
}

std::size_t auth_store::delete_user_sessions(std::string_view user_id) {
  auto& s = *m_state;
  if (!is_uuid(user_id))
    return 0;
  return static_cast<std::size_t>(
      s.exec("deleting a user's sessions", s.delete_user_sessions, std::string{user_id})
          .affected_rows());
}

std::string auth_store::create_one_time_token(std::string_view user_id, token_type type,
                                              std::optional<std::chrono::seconds> ttl) {
  auto& s = *m_state;
  auto lifetime = ttl.value_or(s.options.token_ttl);
  check_positive(lifetime, "a one-time token's ttl");
  const std::string type_name = token_type_name(type);
  if (!is_uuid(user_id))
    throw no_live_user("creating a one-time token");
  auto token = detail::new_session_key();
  auto digest = detail::session_key_digest(token);
  const std::string id{user_id};
  try {
    auto lease = s.connections->acquire();
    pqxx::work tx{*lease};
    if (s.run(lease, tx, s.lock_user, id).empty()) {
      tx.abort();
      throw no_live_user("creating a one-time token");
    }
    s.run(lease, tx, s.retire_tokens, id, type_name);
    s.run(lease, tx, s.insert_token, id, type_name, bytes(digest), std::int64_t{lifetime.count()});
    tx.commit();
  } catch (...) {
    rethrow_auth_error("creating a one-time token", s.schema);
  }
  return token;
}

std::optional<std::string> auth_store::use_one_time_token(std::string_view token, token_type type) {
  auto& s = *m_state;
  const std::string type_name = token_type_name(type);
  if (!is_well_formed_session_key(token))
    return std::nullopt;
  auto digest = detail::session_key_digest(token);
  auto rows = s.exec("using a one-time token", s.use_token, bytes(digest), type_name);
  if (rows.empty())
    return std::nullopt;
  return rows[0][0].as<std::string>();
}

}  // namespace pgkit
