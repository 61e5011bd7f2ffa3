// What Pevensie's users (seed 001) look for besides what test_auth.cpp covers: typed user
// metadata through the application's encoder and decoder, and ids that sort in creation order
// also within one millisecond (RFC 9562's counter method, core migration 20261206200000).

#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "pgkit/auth.hpp"
#include "pgkit/connection.hpp"
#include "pgkit/error.hpp"
#include "pgkit/migration.hpp"
#include "pgkit/query.hpp"

using pgkit_test::query_value;

namespace {

struct plan {
  std::string name;
  int seats = 0;
};

std::string encode_plan(const plan& p) {
  return R"({"name": ")" + p.name + R"(", "seats": )" + std::to_string(p.seats) + "}";
}

// Reads what jsonb prints back: {"name": "...", "seats": N} (jsonb orders keys by length).
plan decode_plan(std::string_view json) {
  const std::string name_key = R"({"name": ")";
  const std::string seats_key = R"(", "seats": )";
  auto seats_at = json.find(seats_key);
  if (json.rfind(name_key, 0) != 0 || seats_at == std::string_view::npos)
    throw std::runtime_error("not a plan: " + std::string{json});
  auto number = json.substr(seats_at + seats_key.size());
  number.remove_suffix(1);
  return {std::string{json.substr(name_key.size(), seats_at - name_key.size())},
          std::stoi(std::string{number})};
}

struct store_fixture {
  explicit store_fixture(const std::string& label) : db{label} {
    auto connection = pgkit::connect(db.url());
    pgkit::apply_modules(*connection, {"auth"});
    pgkit::auth_options options;
    options.password_ops_limit = 1;
    options.password_mem_limit = 8192;
    store = std::make_unique<pgkit::auth_store>(
        std::make_shared<pgkit::pool>(pgkit::config_from_url(db.url(), "test")), options);
  }
  pgkit_test::scratch_database db;
  std::unique_ptr<pgkit::auth_store> store;
};

}  // namespace

TEST_CASE("pevensie: user_metadata_encoder and user_metadata_decoder") {
  store_fixture f{"pevensie_typed"};
  pgkit::typed_users<plan> users{*f.store, {encode_plan, decode_plan}};
  pgkit::new_user u;
  u.email = "typed@example.org";
  auto created = users.create_user(u, plan{"team", 5});
  CHECK(created.metadata.name == "team");
  CHECK(created.metadata.seats == 5);
  CHECK(query_value(f.db.url(), "SELECT user_metadata->>'seats' FROM pgkit.auth_user") == "5");

  auto read = users.get_user(created.fields.id);
  REQUIRE(read.has_value());
  CHECK(read->metadata.name == "team");
  CHECK(users.get_user_by_email("typed@example.org")->metadata.seats == 5);

  auto updated = users.update_user(created.fields.id, {}, plan{"enterprise", 50});
  REQUIRE(updated.has_value());
  CHECK(updated->metadata.name == "enterprise");
  pgkit::user_search everyone;
  auto listed = users.list_users(everyone);
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].metadata.seats == 50);
  CHECK_FALSE(users.get_user("00000000-0000-7000-8000-000000000000").has_value());

  SUBCASE("a stored value the decoder cannot read: usage, naming the user and the reason") {
    pgkit::user_update raw;
    raw.user_metadata = R"({"colour": "blue"})";
    f.store->update_user(created.fields.id, raw);
    auto e = pgkit_test::expect_error([&] { users.get_user(created.fields.id); });
    CHECK(e.kind() == pgkit::error_kind::usage);
    CHECK(std::string{e.what()}.find(created.fields.id) != std::string::npos);
    CHECK(std::string{e.what()}.find("not a plan") != std::string::npos);
  }
  SUBCASE("an encoder that does not give JSON is refused and nothing is written") {
    pgkit::typed_users<plan> broken{
        *f.store, {[](const plan&) { return std::string{"{oops"}; }, decode_plan}};
    pgkit::new_user other;
    other.email = "broken@example.org";
    CHECK(pgkit_test::expect_error([&] { broken.create_user(other, plan{}); }).kind() ==
          pgkit::error_kind::usage);
    CHECK(query_value(f.db.url(), "SELECT count(*) FROM pgkit.auth_user") == "1");
  }
  SUBCASE("a codec without both functions is refused") {
    CHECK_THROWS_AS((pgkit::typed_users<plan>{*f.store, {encode_plan, {}}}), pgkit::usage_error);
  }
}

TEST_CASE("pevensie: ids monotonic within one millisecond") {
  store_fixture f{"pevensie_ids"};

  SUBCASE("uuid7() many times in one statement: strictly increasing, version 7, variant 10") {
    CHECK(query_value(f.db.url(),
                      "SELECT bool_and(id < next) FROM (SELECT id, lead(id) OVER (ORDER BY n) "
                      "AS next FROM (SELECT n, pgkit.uuid7() AS id FROM generate_series(1, "
                      "20000) AS n) AS made) AS pairs WHERE next IS NOT NULL") == "t");
    CHECK(query_value(f.db.url(),
                      "SELECT substring(pgkit.uuid7()::text FROM 15 FOR 1) || "
                      "substring(pgkit.uuid7()::text FROM 20 FOR 1) ~ '^7[89ab]$'") == "t");
    // The caller's search_path does not matter: the counter is found where it was made.
    CHECK(query_value(f.db.url(),
                      "SET search_path = pg_catalog; SELECT pgkit.uuid7() IS NOT NULL") == "t");
  }

  SUBCASE("users made one after the other list in the order they were made") {
    std::vector<std::string> made;
    for (int i = 0; i < 60; ++i) {
      pgkit::new_user u;
      u.email = "user" + std::to_string(i) + "@example.org";
      made.push_back(f.store->create_user(u).id);
    }
    pgkit::user_search all;
    all.limit = 1000;
    std::vector<std::string> listed;
    for (const auto& u : f.store->list_users(all))
      listed.push_back(u.id);
    CHECK(listed == made);
  }

  SUBCASE("ids made by two sessions at once are all distinct and each session's increase") {
    std::vector<std::string> first, second;
    auto make = [&](std::vector<std::string>& out) {
      auto conn = pgkit::connect(f.db.url());
      pgkit::stream_query(*conn, "SELECT pgkit.uuid7()::text FROM generate_series(1, 5000)", {}, {},
                          [&](const pgkit::row_view& row) {
                            out.emplace_back(*row.get(0));
                            return pgkit::row_action::next;
                          });
    };
    std::thread other{[&] { make(second); }};
    make(first);
    other.join();
    CHECK(std::is_sorted(first.begin(), first.end()));
    CHECK(std::is_sorted(second.begin(), second.end()));
    std::vector<std::string> both = first;
    both.insert(both.end(), second.begin(), second.end());
    std::sort(both.begin(), both.end());
    CHECK(std::adjacent_find(both.begin(), both.end()) == both.end());
  }
}
