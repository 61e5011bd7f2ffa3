// `pgkit session-purge` end to end: the counts a cron job sees in text and JSON, what stays in
// the tables, dry runs, --only, modules that are not applied, bad options, --quiet.

#include <doctest/doctest.h>

#include <pqxx/pqxx>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "harness.hpp"
#include "pgkit/migration.hpp"

using pgkit_test::query_value;
using pgkit_test::run_pgkit;
using pgkit_test::scratch_database;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

void run_sql(const std::string& url, const std::string& sql) {
  pqxx::connection connection{url};
  pqxx::nontransaction tx{connection};
  tx.exec(sql);
}

std::string count(const scratch_database& db, const std::string& table) {
  return query_value(db.url(), "SELECT count(*) FROM " + table);
}

// 20 000 expired and 500 live sessions; 300 expired and 40 live auth sessions; 4 one-time
// tokens of which 3 are spent (expired, used, deleted).
void fill(const scratch_database& db, const std::string& schema = "pgkit") {
  run_sql(db.url(), "INSERT INTO " + schema +
                        ".session (key_hash, expires_at) SELECT sha256(('old' || i)::bytea), "
                        "now() - interval '1 minute' FROM generate_series(1, 20000) i");
  run_sql(db.url(), "INSERT INTO " + schema +
                        ".session (key_hash, expires_at) SELECT sha256(('new' || i)::bytea), "
                        "now() + interval '1 hour' FROM generate_series(1, 500) i");
  if (query_value(db.url(), "SELECT to_regclass('" + schema + ".auth_session') IS NULL") == "t")
    return;
  run_sql(db.url(), "INSERT INTO " + schema + ".auth_user (email) VALUES ('a@example.com')");
  run_sql(db.url(), "INSERT INTO " + schema +
                        ".auth_session (user_id, expires_at) SELECT (SELECT id FROM " + schema +
                        ".auth_user), now() - interval '1 day' FROM generate_series(1, 300)");
  run_sql(db.url(), "INSERT INTO " + schema +
                        ".auth_session (user_id, expires_at) SELECT (SELECT id FROM " + schema +
                        ".auth_user), now() + interval '1 day' FROM generate_series(1, 40)");
  run_sql(db.url(), "INSERT INTO " + schema +
                        ".auth_one_time_token (user_id, token_type, token_hash, expires_at, "
                        "used_at, deleted_at) SELECT (SELECT id FROM " +
                        schema +
                        ".auth_user), t, sha256(t::bytea), now() + e::interval, u, d FROM (VALUES "
                        "('password_reset', '-1 minute', NULL::timestamptz, NULL::timestamptz), "
                        "('magic_link', '1 hour', now(), NULL), "
                        "('email_confirmation', '1 hour', NULL, now()), "
                        "('phone_number_confirmation', '1 hour', NULL, NULL)) v(t, e, u, d)");
}

void apply(const scratch_database& db, const std::vector<std::string>& modules,
           const std::string& schema = "pgkit") {
  pqxx::connection connection{db.url()};
  pgkit::apply_modules(connection, modules, schema);
}

}  // namespace

TEST_CASE("pgkit session-purge") {
  scratch_database db{"cli_session_purge"};
  auto addr = "--addr=" + db.url();

  SUBCASE("20 000 expired and 500 live sessions: --json counts per table, the 500 remain") {
    apply(db, {"session", "auth"});
    fill(db);
    auto result = run_pgkit({"session-purge", addr, "--json"});
    REQUIRE_MESSAGE(result.exit_code == 0, result.err);
    CHECK(result.err.empty());
    auto json = nlohmann::json::parse(result.out);
    CHECK(json["session"] == 20000);
    CHECK(json["auth_session"] == 300);
    CHECK(json["auth_one_time_token"] == 3);
    CHECK(json["dry_run"] == false);
    CHECK(json["complete"] == true);
    CHECK(json["skipped_modules"].empty());
    CHECK(json["seconds"].is_number());
    CHECK(count(db, "pgkit.session") == "500");
    CHECK(count(db, "pgkit.session WHERE expires_at > now()") == "500");
    CHECK(count(db, "pgkit.auth_session") == "40");
    CHECK(count(db, "pgkit.auth_session WHERE expires_at > now()") == "40");
    CHECK(query_value(db.url(),
                      "SELECT string_agg(token_type, ',') FROM pgkit.auth_one_time_token") ==
          "phone_number_confirmation");

    auto again = run_pgkit({"session-purge", addr, "--json"});
    CHECK(again.exit_code == 0);
    auto second = nlohmann::json::parse(again.out);
    CHECK(second["session"] == 0);
    CHECK(second["auth_session"] == 0);
    CHECK(second["auth_one_time_token"] == 0);
  }

  SUBCASE("the text summary names every table and its count") {
    apply(db, {"session", "auth"});
    fill(db);
    auto result =
        run_pgkit({"session-purge", addr, "--batch-size", "5000", "--max-seconds", "600"});
    REQUIRE_MESSAGE(result.exit_code == 0, result.err);
    CHECK(result.err.rfind("deleted 20000 rows from session, 300 from auth_session and 3 from "
                           "auth_one_time_token in ",
                           0) == 0);
    CHECK(contains(result.err, " s\n"));
    CHECK(result.out.empty());
    CHECK(count(db, "pgkit.session") == "500");
  }

  SUBCASE("--dry-run counts and deletes nothing") {
    apply(db, {"session", "auth"});
    fill(db);
    auto result = run_pgkit({"session-purge", addr, "--dry-run"});
    REQUIRE_MESSAGE(result.exit_code == 0, result.err);
    CHECK(result.err ==
          "would delete 20000 rows from session, 300 from auth_session and 3 from "
          "auth_one_time_token (dry run)\n");
    auto json = run_pgkit({"session-purge", addr, "--dry-run", "--json"});
    CHECK(nlohmann::json::parse(json.out)["session"] == 20000);
    CHECK(nlohmann::json::parse(json.out)["dry_run"] == true);
    CHECK(count(db, "pgkit.session") == "20500");
    CHECK(count(db, "pgkit.auth_session") == "340");
  }

  SUBCASE("--only session and --only auth") {
    apply(db, {"session", "auth"});
    fill(db);
    auto auth = run_pgkit({"session-purge", addr, "--only", "auth"});
    REQUIRE_MESSAGE(auth.exit_code == 0, auth.err);
    CHECK(auth.err.rfind("deleted 300 rows from auth_session and 3 from auth_one_time_token in ",
                         0) == 0);
    CHECK(count(db, "pgkit.session") == "20500");
    auto session = run_pgkit({"session-purge", addr, "--only=session", "--json"});
    REQUIRE_MESSAGE(session.exit_code == 0, session.err);
    auto json = nlohmann::json::parse(session.out);
    CHECK(json["session"] == 20000);
    CHECK_FALSE(json.contains("auth_session"));
    CHECK(count(db, "pgkit.session") == "500");
  }

  SUBCASE("a module that is not applied is skipped with a note; -q silences everything") {
    apply(db, {"session"});
    fill(db);
    auto result = run_pgkit({"session-purge", addr});
    REQUIRE_MESSAGE(result.exit_code == 0, result.err);
    CHECK(result.err.rfind(
              "pgkit: note: the auth module is not applied in schema pgkit; skipping its tables\n"
              "deleted 20000 rows from session in ",
              0) == 0);
    CHECK(result.out.empty());
    auto json = run_pgkit({"session-purge", addr, "--json"});
    CHECK(nlohmann::json::parse(json.out)["skipped_modules"] == nlohmann::json{"auth"});

    run_sql(db.url(), "UPDATE pgkit.session SET expires_at = now() - interval '1 second'");
    auto quiet = run_pgkit({"session-purge", addr, "-q"});
    CHECK(quiet.exit_code == 0);
    CHECK(quiet.out.empty());
    CHECK(quiet.err.empty());
    CHECK(count(db, "pgkit.session") == "0");
  }

  SUBCASE("no module applied: exit 1 with the hint to apply them") {
    auto result = run_pgkit({"session-purge", addr});
    CHECK(result.exit_code == 1);
    CHECK(result.out.empty());
    CHECK(result.err ==
          "pgkit: error: neither the session nor the auth module is applied in schema pgkit\n"
          "pgkit: hint: run pgkit apply session auth (or the one you use)\n");
    apply(db, {"session"});
    auto auth = run_pgkit({"session-purge", addr, "--only", "auth"});
    CHECK(auth.exit_code == 1);
    CHECK(contains(auth.err, "pgkit: error: the auth module is not applied in schema pgkit"));
    CHECK(contains(auth.err, "pgkit: hint: run pgkit apply auth"));
  }

  SUBCASE("--schema selects the schema") {
    apply(db, {"session"}, "web");
    fill(db, "web");
    auto result =
        run_pgkit({"session-purge", addr, "--schema", "web", "--json", "--only", "session"});
    REQUIRE_MESSAGE(result.exit_code == 0, result.err);
    CHECK(nlohmann::json::parse(result.out)["session"] == 20000);
    CHECK(count(db, "web.session") == "500");
  }

  SUBCASE("bad options exit 2 and touch nothing") {
    apply(db, {"session"});
    fill(db);
    for (const auto& bad : std::vector<std::vector<std::string>>{{"--batch-size", "0"},
                                                                 {"--batch-size", "-3"},
                                                                 {"--batch-size", "many"},
                                                                 {"--max-seconds", "0"},
                                                                 {"--max-seconds", "-1"},
                                                                 {"--only", "cache"},
                                                                 {"--unknown-option"}}) {
      std::vector<std::string> arguments{"session-purge", addr};
      arguments.insert(arguments.end(), bad.begin(), bad.end());
      auto result = run_pgkit(arguments);
      CAPTURE(bad[0]);
      CHECK(result.exit_code == 2);
      CHECK(contains(result.err, "pgkit: error: "));
    }
    CHECK(count(db, "pgkit.session") == "20500");
  }

  SUBCASE("a server that cannot be reached is exit 1") {
    auto result = run_pgkit({"session-purge", "--addr=postgresql://nobody@127.0.0.1:1/none"});
    CHECK(result.exit_code == 1);
    CHECK(contains(result.err, "pgkit: error: "));
  }
}
