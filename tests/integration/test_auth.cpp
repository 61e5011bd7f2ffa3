// The auth store against a real PostgreSQL: users (unique live emails and phone numbers, soft
// delete, search), passwords (argon2id, rehash, banned users), sessions and one-time tokens
// (digests only, database clock, single use under concurrency), the upgrade from the first
// auth migration, and a test per bug of Pevensie's driver that must not come back.

#include <doctest/doctest.h>

#include <pqxx/pqxx>

#include <sodium.h>

#include <atomic>
#include <chrono>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "pgkit/auth.hpp"
#include "pgkit/connection.hpp"
#include "pgkit/error.hpp"
#include "pgkit/migration.hpp"
#include "pgkit/query.hpp"
#include "pgkit/session.hpp"

using namespace std::chrono_literals;
using pgkit_test::query_value;

namespace {

// The count a one-value query returns, with `token` as $1.
int count_of(pqxx::transaction_base& tx, const std::string& sql, const std::string& token) {
  int count = -1;
  pgkit::stream_query(tx, sql, {token}, {}, [&](const pgkit::row_view& row) {
    count = std::stoi(std::string{row.get(0).value_or("-1")});
    return pgkit::row_action::next;
  });
  return count;
}

// Fast argon2id for the suite; one test uses libsodium's defaults.
pgkit::auth_options fast(pgkit::auth_options options = {}) {
  options.password_ops_limit = crypto_pwhash_OPSLIMIT_MIN;
  options.password_mem_limit = crypto_pwhash_MEMLIMIT_MIN;
  return options;
}

// A scratch database with the auth module applied and a store on a pool of `pool_size`.
struct auth_fixture {
  explicit auth_fixture(const std::string& label, pgkit::auth_options options = fast(),
                        std::size_t pool_size = 4)
      : db{label} {
    pqxx::connection connection{db.url()};
    pgkit::apply_modules(connection, {"auth"});
    auto config = pgkit::config_from_url(db.url(), "test");
    config.pool_size = pool_size;
    pool = std::make_shared<pgkit::pool>(config);
    store = std::make_unique<pgkit::auth_store>(pool, options);
  }

  std::string sql(const std::string& statement) const { return query_value(db.url(), statement); }
  void run(const std::string& statement) const {
    pqxx::connection connection{db.url()};
    pqxx::nontransaction tx{connection};
    tx.exec(statement);
  }
  pgkit::user user(const std::string& email, const std::string& password = "correct horse") {
    pgkit::new_user u;
    u.email = email;
    u.password = password;
    return store->create_user(u);
  }

  pgkit_test::scratch_database db;
  std::shared_ptr<pgkit::pool> pool;
  std::unique_ptr<pgkit::auth_store> store;
};

std::set<std::string> emails_of(const std::vector<pgkit::user>& users) {
  std::set<std::string> out;
  for (const auto& u : users)
    out.insert(u.email.value_or("(none)"));
  return out;
}

pgkit::user_search by_email(std::vector<std::string> patterns) {
  pgkit::user_search search;
  search.emails = std::move(patterns);
  return search;
}

}  // namespace

TEST_CASE("pgkit::auth_store users") {
  SUBCASE("create_user returns the stored user; get_user and get_user_by_email find it") {
    auth_fixture f{"auth_create"};
    pgkit::new_user u;
    u.email = "Ada@Example.org";
    u.phone_number = "+44 20 7946 0000";
    u.role = "admin";
    u.app_metadata = R"({"plan": "pro"})";
    u.user_metadata = R"({"name": "Ada"})";
    auto created = f.store->create_user(u);
    CHECK(created.id.size() == 36);
    CHECK(created.id[14] == '7');  // UUIDv7
    CHECK(created.role == "admin");
    CHECK(created.email == "Ada@Example.org");
    CHECK(created.phone_number == "+44 20 7946 0000");
    CHECK(created.app_metadata == R"({"plan": "pro"})");
    CHECK(created.user_metadata == R"({"name": "Ada"})");
    CHECK_FALSE(created.last_sign_in);
    CHECK_FALSE(created.banned_until);
    CHECK(created.created_at == created.updated_at);
    CHECK(std::chrono::abs(created.created_at - std::chrono::system_clock::now()) < 1h);

    auto found = f.store->get_user(created.id);
    REQUIRE(found);
    CHECK(found->email == "Ada@Example.org");
    CHECK(found->created_at == created.created_at);
    auto by_email = f.store->get_user_by_email("ada@EXAMPLE.org");
    REQUIRE(by_email);
    CHECK(by_email->id == created.id);
    CHECK_FALSE(f.store->get_user_by_email("bob@example.org"));
    CHECK_FALSE(f.store->get_user("0190d1a0-0000-7000-8000-000000000000"));
    CHECK_FALSE(f.store->get_user("not a uuid' OR 1=1 --"));

    pgkit::new_user defaults;
    defaults.phone_number = "+1 555 0100";
    auto plain = f.store->create_user(defaults);
    CHECK(plain.role == "user");
    CHECK(plain.app_metadata == "{}");
    CHECK_FALSE(plain.email);
  }

  SUBCASE("the password is stored as an argon2id hash, never as given") {
    auth_fixture f{"auth_hash"};
    auto u = f.user("a@example.org", "s3cret-passw0rd");
    auto hash = f.sql("SELECT password_hash FROM pgkit.auth_user");
    CHECK(hash.rfind("$argon2id$v=19$", 0) == 0);
    CHECK(hash.find("s3cret-passw0rd") == std::string::npos);
    CHECK(f.sql("SELECT count(*) FROM pgkit.auth_user u WHERE u::text LIKE "
                "'%s3cret-passw0rd%'") == "0");
    pgkit::new_user no_password;
    no_password.email = "b@example.org";
    f.store->create_user(no_password);
    CHECK(f.sql("SELECT password_hash IS NULL FROM pgkit.auth_user WHERE email = "
                "'b@example.org'") == "t");
  }

  SUBCASE("email is unique among live users ignoring case, phone numbers exactly") {
    auth_fixture f{"auth_unique"};
    pgkit::new_user u;
    u.email = "Grace@Example.org";
    u.phone_number = "+1 555 0101";
    auto first = f.store->create_user(u);

    pgkit::new_user same_email;
    same_email.email = "grace@example.ORG";
    auto taken = pgkit_test::expect_error([&] { f.store->create_user(same_email); });
    CHECK(taken.kind() == pgkit::error_kind::unique_violation);
    CHECK(taken.sqlstate() == "23505");
    CHECK(std::string{taken.what()} == "creating a user: a live user already has this email");
    CHECK(taken.hint().find("ignoring case") != std::string::npos);

    pgkit::new_user same_phone;
    same_phone.phone_number = "+1 555 0101";
    auto phone = pgkit_test::expect_error([&] { f.store->create_user(same_phone); });
    CHECK(phone.kind() == pgkit::error_kind::unique_violation);
    CHECK(std::string{phone.what()} ==
          "creating a user: a live user already has this phone number");
    same_phone.phone_number = "+15550101";  // phone numbers compare exactly
    CHECK_NOTHROW(f.store->create_user(same_phone));

    // A deleted user's email and phone number can sign up again.
    CHECK(f.store->delete_user(first.id));
    same_email.phone_number = "+1 555 0101";
    auto again = f.store->create_user(same_email);
    CHECK(again.id != first.id);
    CHECK(f.sql("SELECT count(*) FROM pgkit.auth_user WHERE lower(email) = "
                "'grace@example.org'") == "2");
  }

  SUBCASE("two concurrent create_user with one email: exactly one succeeds") {
    auth_fixture f{"auth_race", fast(), 8};
    for (int round = 0; round < 20; ++round) {
      std::atomic<int> created{0}, refused{0}, other{0};
      std::atomic<bool> go{false};
      std::vector<std::thread> racers;
      for (int t = 0; t < 2; ++t) {
        racers.emplace_back([&, t] {
          pgkit::new_user u;
          u.email = "race" + std::to_string(round) + (t == 0 ? "@example.org" : "@EXAMPLE.org");
          while (!go.load())
            std::this_thread::yield();
          try {
            f.store->create_user(u);
            ++created;
          } catch (const pgkit::error& e) {
            ++(e.kind() == pgkit::error_kind::unique_violation ? refused : other);
          }
        });
      }
      go = true;
      for (auto& racer : racers)
        racer.join();
      CHECK(created == 1);
      CHECK(refused == 1);
      CHECK(other == 0);
    }
    CHECK(f.sql("SELECT count(*) FROM pgkit.auth_user") == "20");
  }

  SUBCASE("update_user writes only the fields set; an inner nullopt writes NULL") {
    auth_fixture f{"auth_update"};
    auto u = f.user("c@example.org");
    pgkit::user_update change;
    change.user_metadata = R"({"theme": "dark"})";
    auto updated = f.store->update_user(u.id, change);
    REQUIRE(updated);
    CHECK(updated->user_metadata == R"({"theme": "dark"})");
    CHECK(updated->email == "c@example.org");
    CHECK(updated->role == "user");
    CHECK(updated->updated_at >= u.updated_at);

    pgkit::user_update more;
    more.email = std::optional<std::string>{};
    more.phone_number = std::optional<std::string>{"+1 555 0199"};
    more.role = "editor";
    auto ban = std::chrono::system_clock::now() + 24h;
    more.banned_until = ban;
    updated = f.store->update_user(u.id, more);
    REQUIRE(updated);
    CHECK_FALSE(updated->email);
    CHECK(updated->phone_number == "+1 555 0199");
    CHECK(updated->role == "editor");
    REQUIRE(updated->banned_until);
    CHECK(std::chrono::abs(*updated->banned_until - ban) < 1us);
    CHECK(updated->user_metadata == R"({"theme": "dark"})");

    pgkit::user_update unban;
    unban.banned_until = std::optional<pgkit::timestamp>{};
    CHECK_FALSE(f.store->update_user(u.id, unban)->banned_until);
    CHECK(f.store->update_user(u.id, {})->id == u.id);

    auto other = f.user("d@example.org");
    pgkit::user_update steal;
    steal.phone_number = std::optional<std::string>{"+1 555 0199"};
    CHECK(pgkit_test::expect_error([&] { f.store->update_user(other.id, steal); }).kind() ==
          pgkit::error_kind::unique_violation);
    pgkit::user_update bad_json;
    bad_json.app_metadata = "{not json";
    CHECK(pgkit_test::expect_error([&] { f.store->update_user(other.id, bad_json); }).kind() ==
          pgkit::error_kind::usage);
    pgkit::user_update empty;
    empty.email = std::optional<std::string>{""};
    CHECK_THROWS_AS(f.store->update_user(other.id, empty), pgkit::usage_error);
    CHECK_FALSE(f.store->update_user("0190d1a0-0000-7000-8000-000000000000", change));
  }

  SUBCASE("list_users: lists combine with OR, LIKE wildcards, keyset pagination by id") {
    auth_fixture f{"auth_list"};
    for (int i = 0; i < 25; ++i) {
      pgkit::new_user u;
      u.email = "user" + std::to_string(i) + (i % 2 == 0 ? "@Even.example" : "@odd.example");
      u.phone_number = "+1 555 01" + std::to_string(10 + i);
      f.store->create_user(u);
    }
    // Every live user, in id order, one page of 10 after another.
    std::vector<pgkit::user> all;
    pgkit::user_search page;
    page.limit = 10;
    for (;;) {
      auto found = f.store->list_users(page);
      all.insert(all.end(), found.begin(), found.end());
      if (found.size() < page.limit)
        break;
      page.after_id = found.back().id;
    }
    REQUIRE(all.size() == 25);
    for (std::size_t i = 1; i < all.size(); ++i)
      CHECK(all[i - 1].id < all[i].id);

    CHECK(f.store->list_users(by_email({"%@even.example"})).size() == 13);  // ignores case
    CHECK(emails_of(f.store->list_users(by_email({"user1_@odd.example"}))) ==
          std::set<std::string>{"user11@odd.example", "user13@odd.example", "user15@odd.example",
                                "user17@odd.example", "user19@odd.example"});
    CHECK(emails_of(f.store->list_users(by_email({"user2@%", "user3@%"}))) ==
          std::set<std::string>{"user2@Even.example", "user3@odd.example"});
    pgkit::user_search mixed;
    mixed.emails = {"user4@%"};
    mixed.phone_numbers = {"+1 555 0130"};  // user20
    mixed.ids = {all[0].id};
    CHECK(f.store->list_users(mixed).size() == 3);
    pgkit::user_search by_id_prefix;
    by_id_prefix.ids = {all[0].id.substr(0, 30) + "%"};
    CHECK(f.store->list_users(by_id_prefix).size() >= 1);
    // A backslash escapes a wildcard, as in LIKE.
    f.user("under_score@example.org");
    f.user("underXscore@example.org");
    CHECK(emails_of(f.store->list_users(by_email({"under\\_score@%"}))) ==
          std::set<std::string>{"under_score@example.org"});
    CHECK(f.store->list_users(by_email({"nobody%"})).empty());
  }

  SUBCASE("list_users refuses a limit outside 1..1000 and a malformed after_id") {
    auth_fixture f{"auth_list_limits"};
    pgkit::user_search search;
    search.limit = 0;
    auto refused = pgkit_test::expect_error([&] { f.store->list_users(search); });
    CHECK(refused.kind() == pgkit::error_kind::usage);
    CHECK(std::string{refused.what()} == "a user search's limit must be 1..1000, not 0");
    search.limit = 1001;
    CHECK_THROWS_AS(f.store->list_users(search), pgkit::usage_error);
    search.limit = 1000;
    CHECK(f.store->list_users(search).empty());
    search.after_id = "x";
    CHECK_THROWS_AS(f.store->list_users(search), pgkit::usage_error);
  }
}

TEST_CASE("pgkit::auth_store passwords and sign-in") {
  SUBCASE("verify_password: the right password, a wrong one, an unknown email, no password") {
    auth_fixture f{"auth_verify"};
    auto u = f.user("e@example.org", "right password");
    auto verified = f.store->verify_password("E@example.org", "right password");
    REQUIRE(verified);
    CHECK(verified->id == u.id);
    CHECK_FALSE(f.store->verify_password("e@example.org", "wrong password"));
    CHECK_FALSE(f.store->verify_password("e@example.org", ""));
    CHECK_FALSE(f.store->verify_password("nobody@example.org", "right password"));
    pgkit::new_user passwordless;
    passwordless.email = "p@example.org";
    f.store->create_user(passwordless);
    CHECK_FALSE(f.store->verify_password("p@example.org", ""));
    CHECK_FALSE(f.store->sign_in("p@example.org", "anything"));
    CHECK_THROWS_AS(f.store->set_password(u.id, ""), pgkit::usage_error);
  }

  SUBCASE("set_password replaces the password; unknown users are refused") {
    auth_fixture f{"auth_set_password"};
    auto u = f.user("f@example.org", "old password");
    f.store->set_password(u.id, "new password");
    CHECK_FALSE(f.store->verify_password("f@example.org", "old password"));
    CHECK(f.store->verify_password("f@example.org", "new password"));
    auto missing = pgkit_test::expect_error(
        [&] { f.store->set_password("0190d1a0-0000-7000-8000-000000000000", "x"); });
    CHECK(missing.kind() == pgkit::error_kind::foreign_key_violation);
  }

  SUBCASE("a successful verify rehashes when the limits changed") {
    auth_fixture f{"auth_rehash"};
    f.user("g@example.org", "pw");
    auto before = f.sql("SELECT password_hash FROM pgkit.auth_user");
    CHECK(before.find("t=1") != std::string::npos);
    auto stronger = fast();
    stronger.password_ops_limit = crypto_pwhash_OPSLIMIT_MIN + 1;
    pgkit::auth_store upgraded{f.pool, stronger};
    CHECK_FALSE(upgraded.verify_password("g@example.org", "wrong"));
    CHECK(f.sql("SELECT password_hash FROM pgkit.auth_user") == before);
    CHECK(upgraded.verify_password("g@example.org", "pw"));
    auto after = f.sql("SELECT password_hash FROM pgkit.auth_user");
    CHECK(after != before);
    CHECK(after.find("t=2") != std::string::npos);
    CHECK(f.store->verify_password("g@example.org", "pw"));
  }

  SUBCASE("with libsodium's default limits the hash is argon2id INTERACTIVE") {
    auth_fixture f{"auth_defaults", pgkit::auth_options{}};
    f.user("h@example.org", "pw");
    CHECK(f.sql("SELECT password_hash FROM pgkit.auth_user")
              .rfind("$argon2id$v=19$m=65536,t=2,p=1$", 0) == 0);
    CHECK(f.store->sign_in("h@example.org", "pw"));
  }

  SUBCASE("limits outside libsodium's range are refused") {
    auto config = pgkit::config_from_url("postgresql://localhost/x", "test");
    auto pool = std::make_shared<pgkit::pool>(config);
    pgkit::auth_options options;
    options.password_mem_limit = 1024;
    CHECK_THROWS_AS(pgkit::auth_store(pool, options), pgkit::usage_error);
    options = {};
    options.session_ttl = 0s;
    CHECK_THROWS_AS(pgkit::auth_store(pool, options), pgkit::usage_error);
  }

  SUBCASE("sign_in returns the user, a new session and its token; banned users are refused") {
    auth_fixture f{"auth_sign_in"};
    auto u = f.user("i@example.org", "pw");
    auto in = f.store->sign_in("I@example.org", "pw", "192.0.2.10", "curl/8");
    REQUIRE(in);
    CHECK(in->who.id == u.id);
    REQUIRE(in->who.last_sign_in);
    CHECK(pgkit::is_well_formed_session_key(in->token));
    CHECK(in->session.user_id == u.id);
    CHECK(in->session.ip == "192.0.2.10");
    CHECK(in->session.user_agent == "curl/8");
    REQUIRE(in->session.expires_at);
    CHECK(*in->session.expires_at - in->session.created_at == std::chrono::hours{24 * 30});
    auto session = f.store->get_session(in->token);
    REQUIRE(session);
    CHECK(session->id == in->session.id);
    CHECK_FALSE(f.store->sign_in("i@example.org", "wrong"));
    CHECK_FALSE(f.store->sign_in("nobody@example.org", "pw"));
    CHECK(f.sql("SELECT count(*) FROM pgkit.auth_session") == "1");

    pgkit::user_update ban;
    ban.banned_until = std::chrono::system_clock::now() + 1h;
    f.store->update_user(u.id, ban);
    CHECK_FALSE(f.store->verify_password("i@example.org", "pw"));
    CHECK_FALSE(f.store->sign_in("i@example.org", "pw"));
    CHECK_FALSE(f.store->get_session(in->token));
    // A ban that has run out on the database clock no longer counts.
    f.run("UPDATE pgkit.auth_user SET banned_until = now() - interval '1 second'");
    CHECK(f.store->sign_in("i@example.org", "pw"));
    CHECK(f.store->get_session(in->token));
  }
}

TEST_CASE("pgkit::auth_store sessions and one-time tokens") {
  SUBCASE("create_session, get_session, delete_session, delete_user_sessions") {
    auth_fixture f{"auth_sessions"};
    auto u = f.user("j@example.org");
    auto token = f.store->create_session(u.id, std::nullopt, std::nullopt, 90s);
    CHECK(pgkit::is_well_formed_session_key(token));
    auto session = f.store->get_session(token);
    REQUIRE(session);
    CHECK_FALSE(session->ip);
    CHECK(*session->expires_at - session->created_at == 90s);
    auto second = f.store->create_session(u.id, "2001:db8::1");
    CHECK(f.store->get_session(second)->ip == "2001:db8::1");
    CHECK(f.store->delete_session(token));
    CHECK_FALSE(f.store->delete_session(token));
    CHECK_FALSE(f.store->get_session(token));
    f.store->create_session(u.id);
    CHECK(f.store->delete_user_sessions(u.id) == 2);
    CHECK_FALSE(f.store->get_session(second));
    CHECK_FALSE(f.store->get_session("not a token"));
    CHECK(pgkit_test::expect_error([&] {
            f.store->create_session("0190d1a0-0000-7000-8000-000000000000");
          }).kind() == pgkit::error_kind::foreign_key_violation);
    CHECK_THROWS_AS(f.store->create_session(u.id, std::nullopt, std::nullopt, 0s),
                    pgkit::usage_error);
  }

  SUBCASE("an expired session reads as nullopt and its row is gone") {
    auth_fixture f{"auth_session_expiry"};
    auto u = f.user("k@example.org");
    auto token = f.store->create_session(u.id);
    auto other = f.store->create_session(u.id);
    f.run("UPDATE pgkit.auth_session SET expires_at = now() - interval '1 second' WHERE id = '" +
          f.store->get_session(token)->id + "'");
    CHECK_FALSE(f.store->get_session(token));
    CHECK(f.sql("SELECT count(*) FROM pgkit.auth_session") == "1");
    CHECK(f.store->get_session(other));
  }

  SUBCASE("a one-time token works once, for its type, until it expires") {
    auth_fixture f{"auth_tokens"};
    auto u = f.user("l@example.org");
    auto token = f.store->create_one_time_token(u.id, pgkit::token_type::password_reset);
    CHECK(pgkit::is_well_formed_session_key(token));
    CHECK_FALSE(f.store->use_one_time_token(token, pgkit::token_type::magic_link));
    CHECK(f.store->use_one_time_token(token, pgkit::token_type::password_reset) == u.id);
    CHECK_FALSE(f.store->use_one_time_token(token, pgkit::token_type::password_reset));
    CHECK_FALSE(f.store->use_one_time_token("garbage", pgkit::token_type::password_reset));
    CHECK(f.sql("SELECT used_at IS NOT NULL FROM pgkit.auth_one_time_token") == "t");
  }

  SUBCASE("a new token of a type retires the user's live one of that type") {
    auth_fixture f{"auth_token_replace"};
    auto u = f.user("m@example.org");
    auto first = f.store->create_one_time_token(u.id, pgkit::token_type::magic_link);
    auto other_type = f.store->create_one_time_token(u.id, pgkit::token_type::email_confirmation);
    auto second = f.store->create_one_time_token(u.id, pgkit::token_type::magic_link, 10min);
    CHECK_FALSE(f.store->use_one_time_token(first, pgkit::token_type::magic_link));
    CHECK(f.store->use_one_time_token(second, pgkit::token_type::magic_link) == u.id);
    CHECK(f.store->use_one_time_token(other_type, pgkit::token_type::email_confirmation) == u.id);
    CHECK(f.sql("SELECT count(*) FROM pgkit.auth_one_time_token WHERE deleted_at IS NOT NULL") ==
          "1");
    CHECK(f.sql("SELECT expires_at - created_at FROM pgkit.auth_one_time_token WHERE token_type "
                "= 'magic_link' AND deleted_at IS NULL") == "00:10:00");
    CHECK(pgkit_test::expect_error([&] {
            f.store->create_one_time_token("0190d1a0-0000-7000-8000-000000000000",
                                           pgkit::token_type::magic_link);
          }).kind() == pgkit::error_kind::foreign_key_violation);
  }

  SUBCASE("concurrent creations of one user's token of one type leave one live token") {
    auth_fixture f{"auth_token_create_race", fast(), 8};
    auto u = f.user("race@example.org");
    std::vector<std::future<std::string>> created;
    for (int i = 0; i < 8; ++i) {
      created.push_back(std::async(std::launch::async, [&] {
        return f.store->create_one_time_token(u.id, pgkit::token_type::magic_link);
      }));
    }
    int working = 0;
    std::vector<std::string> tokens;
    for (auto& token : created)
      tokens.push_back(token.get());
    for (const auto& token : tokens)
      working += f.store->use_one_time_token(token, pgkit::token_type::magic_link) ? 1 : 0;
    CHECK(working == 1);
    CHECK(f.sql("SELECT count(*) FROM pgkit.auth_one_time_token") == "8");
  }

  SUBCASE("50 concurrent uses of one token: exactly one gets the user id") {
    auth_fixture f{"auth_token_race", fast(), 16};
    auto u = f.user("n@example.org");
    auto token = f.store->create_one_time_token(u.id, pgkit::token_type::password_reset);
    std::atomic<bool> go{false};
    std::vector<std::future<std::optional<std::string>>> uses;
    for (int i = 0; i < 50; ++i) {
      uses.push_back(std::async(std::launch::async, [&] {
        while (!go.load())
          std::this_thread::yield();
        return f.store->use_one_time_token(token, pgkit::token_type::password_reset);
      }));
    }
    go = true;
    int winners = 0;
    for (auto& use : uses) {
      auto result = use.get();
      if (result) {
        ++winners;
        CHECK(*result == u.id);
      }
    }
    CHECK(winners == 1);
  }

  SUBCASE("a deleted user is gone everywhere; their sessions and tokens stop working") {
    auth_fixture f{"auth_delete"};
    pgkit::new_user u;
    u.email = "gone@example.org";
    u.phone_number = "+1 555 0666";
    u.password = "pw";
    auto gone = f.store->create_user(u);
    auto kept = f.user("kept@example.org");
    auto in = f.store->sign_in("gone@example.org", "pw");
    REQUIRE(in);
    auto token = f.store->create_one_time_token(gone.id, pgkit::token_type::password_reset);

    CHECK(f.store->delete_user(gone.id));
    CHECK_FALSE(f.store->delete_user(gone.id));
    CHECK_FALSE(f.store->get_user(gone.id));
    CHECK_FALSE(f.store->get_user_by_email("gone@example.org"));
    CHECK_FALSE(f.store->update_user(gone.id, {}));
    CHECK_FALSE(f.store->sign_in("gone@example.org", "pw"));
    CHECK_FALSE(f.store->get_session(in->token));
    CHECK_FALSE(f.store->use_one_time_token(token, pgkit::token_type::password_reset));
    CHECK_THROWS_AS(f.store->set_password(gone.id, "pw2"), pgkit::error);
    CHECK(f.sql("SELECT count(*) FROM pgkit.auth_session") == "0");
    CHECK(f.sql("SELECT deleted_at IS NOT NULL FROM pgkit.auth_one_time_token") == "t");

    // Absent from every kind of search: each field, wildcards, pagination.
    auto search_finds_gone = [&](pgkit::user_search search) {
      for (const auto& found : f.store->list_users(search)) {
        if (found.id == gone.id)
          return true;
      }
      return false;
    };
    CHECK_FALSE(search_finds_gone({}));
    CHECK_FALSE(search_finds_gone(by_email({"gone@example.org"})));
    CHECK_FALSE(search_finds_gone(by_email({"%"})));
    pgkit::user_search ids;
    ids.ids = {gone.id, "%"};
    CHECK_FALSE(search_finds_gone(ids));
    pgkit::user_search phones;
    phones.phone_numbers = {"+1 555 0666", "%"};
    CHECK_FALSE(search_finds_gone(phones));
    pgkit::user_search paged;
    paged.limit = 1;
    paged.after_id = "00000000-0000-0000-0000-000000000000";
    auto first_page = f.store->list_users(paged);
    REQUIRE(first_page.size() == 1);
    CHECK(first_page[0].id == kept.id);
  }

  SUBCASE("no raw token in any table: every text and bytea column is scanned") {
    auth_fixture f{"auth_no_raw_token"};
    auto u = f.user("o@example.org", "pw");
    std::vector<std::string> tokens{
        f.store->sign_in("o@example.org", "pw", "192.0.2.1", "agent")->token,
        f.store->create_session(u.id),
        f.store->create_one_time_token(u.id, pgkit::token_type::magic_link),
        f.store->create_one_time_token(u.id, pgkit::token_type::password_reset)};
    pqxx::connection connection{f.db.url()};
    pqxx::nontransaction tx{connection};
    auto columns = tx.exec(
        "SELECT format('%I.%I', table_schema, table_name), quote_ident(column_name), data_type "
        "FROM information_schema.columns WHERE table_schema = 'pgkit' AND data_type IN "
        "('text', 'bytea', 'character varying', 'jsonb', 'inet')");
    CHECK(columns.size() >= 10);
    for (const auto& token : tokens) {
      for (const auto& column : columns) {
        auto table = column[0].as<std::string>();
        auto name = column[1].as<std::string>();
        bool bytea = column[2].as<std::string>() == "bytea";
        auto hits =
            count_of(tx,
                     "SELECT count(*) FROM " + table + " WHERE " +
                         (bytea ? "position(convert_to($1, 'UTF8') IN " + name +
                                      ") > 0 OR position(decode(translate($1, '-_', '+/') || '=', "
                                      "'base64') IN " +
                                      name + ") > 0"
                                : "position($1 IN " + name + "::text) > 0"),
                     token);
        INFO(table << "." << name);
        CHECK(hits == 0);
      }
      CHECK(count_of(tx,
                     "SELECT count(*) FROM pgkit.auth_session WHERE token_hash = "
                     "sha256(convert_to($1, 'UTF8'))",
                     token) +
                count_of(tx,
                         "SELECT count(*) FROM pgkit.auth_one_time_token WHERE "
                         "token_hash = sha256(convert_to($1, 'UTF8'))",
                         token) ==
            1);
    }
  }

  SUBCASE("session-purge cleans the store's expired sessions and spent tokens") {
    auth_fixture f{"auth_purge"};
    auto u = f.user("p@example.org");
    auto expired = f.store->create_session(u.id);
    auto live = f.store->create_session(u.id);
    auto used = f.store->create_one_time_token(u.id, pgkit::token_type::magic_link);
    f.store->use_one_time_token(used, pgkit::token_type::magic_link);
    f.store->create_one_time_token(u.id, pgkit::token_type::password_reset);
    f.run("UPDATE pgkit.auth_session SET expires_at = now() - interval '1 minute' WHERE id = '" +
          f.store->get_session(expired)->id + "'");
    pqxx::connection connection{f.db.url()};
    pgkit::sweep_options options;
    options.scope = pgkit::sweep_scope::auth;
    auto purged = pgkit::sweep_expired_sessions(connection, "pgkit", options);
    CHECK(purged.rows("auth_session") == 1);
    CHECK(purged.rows("auth_one_time_token") == 1);
    CHECK(f.store->get_session(live));
  }

  SUBCASE("the store's sweep() cleans the auth tables only, by the millisecond ttl") {
    auth_fixture f{"auth_sweep"};
    auto u = f.user("w@example.org");
    auto brief = f.store->create_session(u.id, {}, {}, 300ms);
    auto live = f.store->create_session(u.id);
    CHECK(f.store->get_session(brief));
    std::this_thread::sleep_for(400ms);
    pgkit::sweep_options counting;
    counting.dry_run = true;
    auto would = f.store->sweep(counting);
    CHECK(would.rows("auth_session") == 1);
    CHECK(would.rows("session") == 0);
    auto swept = f.store->sweep();
    CHECK(swept.deleted == 1);
    CHECK(swept.tables.size() == 2);
    CHECK(f.store->get_session(live));
    pgkit::sweep_options sessions_only;
    sessions_only.scope = pgkit::sweep_scope::session;
    CHECK_THROWS_AS(f.store->sweep(sessions_only), pgkit::usage_error);
  }

  SUBCASE("behind a transaction-mode pooler every statement is sent unnamed") {
    pgkit_test::scratch_database db{"auth_pooler"};
    pqxx::connection connection{db.url()};
    pgkit::apply_modules(connection, {"auth"});
    auto config = pgkit::config_from_url(db.url(), "test");
    config.pool_size = 1;
    config.pooler = pgkit::pooler_mode::pgbouncer_transaction;
    auto pool = std::make_shared<pgkit::pool>(config);
    pgkit::auth_store store{pool, fast()};
    store.check();
    pgkit::new_user u;
    u.email = "r@example.org";
    u.password = "pw";
    auto created = store.create_user(u);
    auto in = store.sign_in("r@example.org", "pw", "192.0.2.3");
    REQUIRE(in);
    CHECK(store.get_session(in->token));
    pgkit::user_update change;
    change.role = "admin";
    CHECK(store.update_user(created.id, change)->role == "admin");
    CHECK(store.list_users(by_email({"r@%"})).size() == 1);
    auto token = store.create_one_time_token(created.id, pgkit::token_type::magic_link);
    CHECK(store.use_one_time_token(token, pgkit::token_type::magic_link) == created.id);
    CHECK(store.delete_user(created.id));
    auto lease = pool->acquire();
    pqxx::nontransaction tx{*lease};
    CHECK(tx.exec("SELECT count(*) FROM pg_prepared_statements")[0][0].as<int>() == 0);
  }

  SUBCASE("stores on other schemas share one pool") {
    auth_fixture f{"auth_schemas"};
    pqxx::connection connection{f.db.url()};
    pgkit::apply_modules(connection, {"auth"}, "tenant_b");
    pgkit::auth_options b = fast();
    b.schema = "tenant_b";
    pgkit::auth_store other{f.pool, b};
    other.check();
    auto in_a = f.user("same@example.org");
    pgkit::new_user u;
    u.email = "same@example.org";
    auto in_b = other.create_user(u);
    CHECK(in_a.id != in_b.id);
    CHECK_FALSE(other.get_user(in_a.id));
    CHECK(f.sql("SELECT count(*) FROM tenant_b.auth_user") == "1");
  }
}

TEST_CASE("pgkit::decode_user and decode_session in custom queries") {
  auth_fixture f{"auth_decode"};
  auto u = f.user("q@example.org");
  auto token = f.store->create_session(u.id, "192.0.2.9");
  pqxx::connection connection{f.db.url()};
  std::vector<pgkit::user> users;
  std::vector<pgkit::auth_session> sessions;
  pgkit::stream_query(
      connection,
      "SELECT " + pgkit::auth_store::user_select_fields() + ", " +
          pgkit::auth_store::session_select_fields() +
          " FROM pgkit.auth_user JOIN pgkit.auth_session ON auth_session.user_id = auth_user.id "
          "WHERE auth_user.email LIKE $1",
      {std::string{"q@%"}}, [](const std::vector<pgkit::column_info>&) {},
      [&](const pgkit::row_view& row) {
        users.push_back(pgkit::decode_user(row));
        return pgkit::row_action::next;
      });
  pgkit::stream_query(
      connection,
      "SELECT " + pgkit::auth_store::session_select_fields() + " FROM pgkit.auth_session", {},
      [](const std::vector<pgkit::column_info>&) {},
      [&](const pgkit::row_view& row) {
        sessions.push_back(pgkit::decode_session(row));
        return pgkit::row_action::next;
      });
  REQUIRE(users.size() == 1);
  CHECK(users[0].id == u.id);
  CHECK(users[0].created_at == u.created_at);
  CHECK(users[0].email == "q@example.org");
  REQUIRE(sessions.size() == 1);
  CHECK(sessions[0].id == f.store->get_session(token)->id);
  CHECK(sessions[0].ip == "192.0.2.9");
  pgkit::stream_query(
      connection, "SELECT 1", {}, [](const std::vector<pgkit::column_info>&) {},
      [&](const pgkit::row_view& row) {
        CHECK_THROWS_AS(pgkit::decode_user(row), pgkit::usage_error);
        return pgkit::row_action::next;
      });
}

TEST_CASE("pgkit::auth_store check and the upgrade from the first auth migration") {
  SUBCASE("check() hints `pgkit apply auth` until the module is applied") {
    pgkit_test::scratch_database db{"auth_check"};
    auto pool = std::make_shared<pgkit::pool>(pgkit::config_from_url(db.url(), "test"));
    pgkit::auth_store store{pool, fast()};
    auto missing = pgkit_test::expect_error([&] { store.check(); });
    CHECK(missing.kind() == pgkit::error_kind::undefined_object);
    CHECK(missing.hint() == "run pgkit apply auth");
    auto create = pgkit_test::expect_error([&] { store.create_user({}); });
    CHECK(create.kind() == pgkit::error_kind::undefined_object);
    CHECK(create.hint() == missing.hint());
    pqxx::connection connection{db.url()};
    pgkit::apply_modules(connection, {"auth"});
    CHECK_NOTHROW(store.check());
  }

  SUBCASE("rows written under the first auth migration survive the upgrade and work") {
    pgkit_test::scratch_database db{"auth_upgrade"};
    pqxx::connection connection{db.url()};
    pgkit::apply_modules(connection, {"auth"});
    pgkit::migration_options options;
    options.modules = {"auth"};
    auto rolled_back = pgkit::rollback_module(connection, options, "auth", {});
    REQUIRE(rolled_back.size() == 1);
    CHECK(rolled_back[0].version == "20261201140000");
    // Today's auth module, as released: no token_hash yet.
    CHECK(query_value(db.url(),
                      "SELECT count(*) FROM information_schema.columns WHERE "
                      "table_name = 'auth_session' AND column_name = 'token_hash'") == "0");
    auto pool = std::make_shared<pgkit::pool>(pgkit::config_from_url(db.url(), "test"));
    pgkit::auth_store store{pool, fast()};
    CHECK(pgkit_test::expect_error([&] { store.check(); }).hint().find("pgkit apply") !=
          std::string::npos);
    {
      pqxx::nontransaction tx{connection};
      tx.exec(
          "INSERT INTO pgkit.auth_user (email, app_metadata) VALUES ('old@example.org', "
          "'{\"v\": 1}')");
      tx.exec(
          "INSERT INTO pgkit.auth_session (user_id, ip) SELECT id, '192.0.2.5' FROM "
          "pgkit.auth_user");
      tx.exec(
          "INSERT INTO pgkit.auth_one_time_token (user_id, token_type, token_hash) SELECT "
          "id, 'password_reset', sha256('old') FROM pgkit.auth_user");
    }
    auto upgraded = pgkit::apply_modules(connection, {"auth"});
    REQUIRE(upgraded.applied.size() == 1);
    CHECK(upgraded.applied[0].name == "auth_store");
    CHECK_NOTHROW(store.check());
    CHECK(query_value(db.url(),
                      "SELECT count(*) || ' ' || bool_and(token_hash IS NULL) FROM "
                      "pgkit.auth_session") == "1 true");
    auto old = store.get_user_by_email("old@example.org");
    REQUIRE(old);
    CHECK(old->app_metadata == R"({"v": 1})");
    store.set_password(old->id, "pw");
    auto in = store.sign_in("old@example.org", "pw");
    REQUIRE(in);
    CHECK(store.get_session(in->token));
    CHECK(store.delete_user_sessions(old->id) == 2);
    // The old token is retired by a new one of its type.
    auto token = store.create_one_time_token(old->id, pgkit::token_type::password_reset);
    CHECK(store.use_one_time_token(token, pgkit::token_type::password_reset) == old->id);
    CHECK(query_value(db.url(),
                      "SELECT deleted_at IS NOT NULL FROM pgkit.auth_one_time_token "
                      "WHERE token_hash = sha256('old')") == "t");
  }
}

TEST_CASE("Pevensie bugs that must not come back") {
  SUBCASE("pevensie: deleted users leak from search (a OR b AND deleted_at IS NULL)") {
    auth_fixture f{"pevensie_or"};
    pgkit::new_user u;
    u.email = "leak@example.org";
    u.phone_number = "+1 555 0777";
    auto deleted = f.store->create_user(u);
    f.store->delete_user(deleted.id);
    // Pevensie's `email LIKE ANY(...) OR phone_number LIKE ANY(...) AND deleted_at IS NULL`
    // returned the deleted user through the email arm.
    pgkit::user_search search;
    search.emails = {"leak@%"};
    search.phone_numbers = {"+1 555 0777"};
    CHECK(f.store->list_users(search).empty());
    search.ids = {deleted.id};
    CHECK(f.store->list_users(search).empty());
  }

  SUBCASE("pevensie: list_users with no filter is invalid SQL") {
    auth_fixture f{"pevensie_no_filter"};
    f.user("a@example.org");
    f.store->delete_user(f.user("b@example.org").id);
    auto all = f.store->list_users({});
    REQUIRE(all.size() == 1);
    CHECK(all[0].email == "a@example.org");
  }

  SUBCASE("pevensie: one-time-token SQL is invalid and its expiry test inverted") {
    auth_fixture f{"pevensie_token_expiry"};
    auto u = f.user("t@example.org");
    auto live = f.store->create_one_time_token(u.id, pgkit::token_type::email_confirmation, 1h);
    auto expired = f.store->create_one_time_token(u.id, pgkit::token_type::magic_link);
    f.run(
        "UPDATE pgkit.auth_one_time_token SET expires_at = now() - interval '1 second' WHERE "
        "token_type = 'magic_link'");
    // Pevensie accepted only tokens whose expiry had passed.
    CHECK_FALSE(f.store->use_one_time_token(expired, pgkit::token_type::magic_link));
    CHECK(f.store->use_one_time_token(live, pgkit::token_type::email_confirmation) == u.id);
  }

  SUBCASE("pevensie: the stored token hash contains the token") {
    auth_fixture f{"pevensie_token_hash"};
    auto u = f.user("h@example.org");
    auto token = f.store->create_one_time_token(u.id, pgkit::token_type::password_reset);
    auto session = f.store->create_session(u.id);
    CHECK(f.sql("SELECT encode(token_hash, 'hex') FROM pgkit.auth_one_time_token") ==
          f.sql("SELECT encode(sha256('" + token + "'), 'hex')"));
    CHECK(f.sql("SELECT encode(token_hash, 'hex') FROM pgkit.auth_session") ==
          f.sql("SELECT encode(sha256('" + session + "'), 'hex')"));
    CHECK(f.sql("SELECT count(*) FROM pgkit.auth_one_time_token t WHERE position('" + token +
                "' IN t::text) > 0 OR position('" + token + "'::bytea IN t.token_hash) > 0") ==
          "0");
  }

  SUBCASE("pevensie: select fields and decoders with a table alias and in a join") {
    auth_fixture f{"pevensie_alias_join"};
    auto ada = f.user("ada@example.org");
    auto token = f.store->create_session(ada.id, std::string{"192.0.2.7"}, std::nullopt, 1h);
    auto connection = pgkit::connect(f.db.url());
    std::vector<std::pair<pgkit::user, pgkit::auth_session>> found;
    pgkit::stream_query(
        *connection,
        "SELECT " + pgkit::auth_store::user_select_fields("u") + ", " +
            pgkit::auth_store::session_select_fields("Session List") +
            " FROM pgkit.auth_user AS u JOIN pgkit.auth_session AS \"Session List\" "
            "ON \"Session List\".user_id = u.id WHERE u.deleted_at IS NULL",
        {}, {}, [&](const pgkit::row_view& row) {
          found.emplace_back(pgkit::decode_user(row), pgkit::decode_session(row, 12));
          return pgkit::row_action::next;
        });
    REQUIRE(found.size() == 1);
    CHECK(found[0].first.id == ada.id);
    CHECK(found[0].first.email == "ada@example.org");
    CHECK(found[0].second.user_id == ada.id);
    CHECK(found[0].second.ip == "192.0.2.7");
    CHECK(f.store->get_session(token)->id == found[0].second.id);
    // A decoder told to start where too few columns are left says so.
    pgkit::stream_query(
        *connection,
        "SELECT " + pgkit::auth_store::user_select_fields("x") + " FROM pgkit.auth_user AS x", {},
        {}, [&](const pgkit::row_view& row) {
          CHECK_THROWS_WITH_AS(pgkit::decode_session(row, 8), doctest::Contains("from column 8"),
                               pgkit::usage_error);
          return pgkit::row_action::next;
        });
    CHECK_THROWS_AS(pgkit::auth_store::user_select_fields(""), pgkit::usage_error);
  }

  SUBCASE("pevensie: TTLs and IPs are spliced into SQL") {
    auth_fixture f{"pevensie_splice", fast(), 1};
    auto u = f.user("s@example.org", "pw");
    f.store->create_session(u.id, "198.51.100.23", "agent'); DROP TABLE pgkit.auth_user; --",
                            std::chrono::seconds{4242});
    f.store->create_one_time_token(u.id, pgkit::token_type::magic_link, std::chrono::seconds{3131});
    CHECK(f.sql("SELECT user_agent FROM pgkit.auth_session") ==
          "agent'); DROP TABLE pgkit.auth_user; --");
    auto refused = pgkit_test::expect_error([&] {
      f.store->create_session(u.id, "1.2.3.4'::inet, now()); DROP TABLE pgkit.auth_user; --");
    });
    CHECK(refused.kind() == pgkit::error_kind::usage);
    CHECK(f.sql("SELECT count(*) FROM pgkit.auth_user") == "1");
    // The statements on the store's one connection hold placeholders, not the values.
    auto lease = f.pool->acquire();
    pqxx::nontransaction tx{*lease};
    auto text = tx.exec("SELECT string_agg(statement, ' ') FROM pg_prepared_statements")[0][0]
                    .as<std::string>();
    CHECK(text.find("$3::inet") != std::string::npos);
    CHECK(text.find("198.51.100.23") == std::string::npos);
    CHECK(text.find("4242") == std::string::npos);
    CHECK(text.find("3131") == std::string::npos);
  }
}

TEST_CASE("pgkit::auth_store under attack (the probe's findings)") {
  SUBCASE("an email or phone number that is a NUL byte is refused before anything is sent") {
    auth_fixture f{"auth_nul_email"};
    const std::string nul(1, '\0');
    for (int field = 0; field < 2; ++field) {
      pgkit::new_user u;
      (field == 0 ? u.email : u.phone_number) = nul;
      u.password = "correct horse";
      CHECK_THROWS_WITH_AS(f.store->create_user(u),
                           doctest::Contains("must not contain a NUL byte"), pgkit::usage_error);
    }
    auto existing = f.user("nul@example.org");
    pgkit::user_update changes;
    changes.email = std::optional<std::string>{"a" + nul};
    CHECK_THROWS_WITH_AS(f.store->update_user(existing.id, changes),
                         doctest::Contains("must not contain a NUL byte"), pgkit::usage_error);
    CHECK(f.sql("SELECT count(*) FROM pgkit.auth_user") == "1");
    CHECK(f.sql("SELECT email FROM pgkit.auth_user") == "nul@example.org");
  }

  SUBCASE("a refused row never shows in the error: no hash, salt or user id from DETAIL") {
    auth_fixture f{"auth_row_data"};
    // An application's own constraint on the store's table, which the server reports with
    // the whole failing row (the password hash in it).
    f.run(
        "ALTER TABLE pgkit.auth_user ADD CONSTRAINT small_metadata "
        "CHECK (length(user_metadata::text) < 40)");
    pgkit::new_user u;
    u.email = "row@example.org";
    u.password = "correct horse";
    u.user_metadata = R"({"note": "this metadata is longer than forty characters"})";
    try {
      f.store->create_user(u);
      FAIL("the constraint did not refuse the row");
    } catch (const pgkit::error& e) {
      const std::string message = e.what();
      INFO(message);
      CHECK(message.find("small_metadata") != std::string::npos);
      CHECK(message.find("Failing row") == std::string::npos);
      CHECK(message.find("argon2id") == std::string::npos);
      CHECK(message.find("row@example.org") == std::string::npos);
    }
    // A unique violation's DETAIL names the key's values (here the user id of a token).
    auto owner = f.user("token@example.org");
    f.run("CREATE TABLE pgkit.token_audit (user_id uuid PRIMARY KEY)");
    f.run("INSERT INTO pgkit.token_audit VALUES ('" + owner.id + "')");
    f.run(
        "CREATE FUNCTION pgkit.audit_token() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "INSERT INTO pgkit.token_audit VALUES (NEW.user_id); RETURN NEW; END $$");
    f.run(
        "CREATE TRIGGER audit AFTER INSERT ON pgkit.auth_one_time_token FOR EACH ROW "
        "EXECUTE FUNCTION pgkit.audit_token()");
    try {
      f.store->create_one_time_token(owner.id, pgkit::token_type::magic_link);
      FAIL("the audit table's key did not refuse the second row");
    } catch (const pgkit::error& e) {
      INFO(e.what());
      CHECK(e.kind() == pgkit::error_kind::unique_violation);
      CHECK(std::string{e.what()}.find(owner.id) == std::string::npos);
    }
  }

  SUBCASE("a wrong password for a hash under older limits takes as long as an unknown email") {
    // The store's limits cost tens of milliseconds; the account's hash was made under the
    // minimum (a few), before the limits were raised.
    auth_fixture f{"auth_timing"};
    f.user("old@example.org", "old password");
    auto raised = fast();
    raised.password_ops_limit = 3;
    raised.password_mem_limit = 32U << 20U;
    pgkit::auth_store upgraded{f.pool, raised};
    auto elapsed = [&](const std::string& email) {
      auto started = std::chrono::steady_clock::now();
      CHECK_FALSE(upgraded.verify_password(email, "wrong password"));
      return std::chrono::steady_clock::now() - started;
    };
    auto unknown = elapsed("nobody@example.org");
    auto known = elapsed("old@example.org");
    // A lower bound only: the refusal waits at least as long as the store's last verify at its
    // own limits, which the unknown email's call measured; half of that call leaves room for
    // its round trip.
    CHECK(known * 2 >= unknown);
    // The account still signs in, and is then rehashed under the raised limits.
    CHECK(upgraded.verify_password("old@example.org", "old password"));
    CHECK(f.sql("SELECT password_hash FROM pgkit.auth_user").find("m=32768,t=3") !=
          std::string::npos);
  }

  SUBCASE("1 200 concurrent create_one_time_token calls for one user and type all succeed") {
    auth_fixture f{"auth_token_storm", fast(), 12};
    auto u = f.user("storm@example.org");
    std::atomic<int> failures{0};
    std::string first_failure;
    std::vector<std::thread> workers;
    for (int worker = 0; worker < 12; ++worker) {
      workers.emplace_back([&] {
        for (int call = 0; call < 100; ++call) {
          try {
            f.store->create_one_time_token(u.id, pgkit::token_type::password_reset);
          } catch (const pgkit::error& e) {
            if (failures++ == 0)
              first_failure = e.what();
          }
        }
      });
    }
    for (auto& worker : workers)
      worker.join();
    INFO(first_failure);
    CHECK(failures.load() == 0);
    CHECK(f.sql("SELECT count(*) FROM pgkit.auth_one_time_token WHERE deleted_at IS NULL") == "1");
  }
}
