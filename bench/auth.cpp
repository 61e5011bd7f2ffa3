// bench/auth: the auth store against its baselines, in one run.
//  1. get_session per second, one thread, beside raw libpq running the same prepared statement
//     (the one the store prepared, read back from pg_prepared_statements) with the same token
//     check and digest work. Best of several one-second windows, the two interleaved.
//  2. list_users by email prefix over 1 000 000 users: time per call beside the plain
//     `email LIKE ANY($1) ... ORDER BY id LIMIT n` query (Pevensie's shape, fixed), and the
//     store's plan from EXPLAIN ANALYZE, which must show the email search index.
//  3. sign_in with libsodium's default argon2id limits, the share of its time that the
//     password verification alone takes, and a failed verify_password for a wrong password
//     beside one for an unknown email (the same work: no timing oracle).
//   bench_auth [URL] [USERS]   (URL default: $PGKIT_BENCH_URL, $DATABASE_URL, else a throwaway
//   server of its own; USERS default 1000000)

#include <libpq-fe.h>
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <pgkit/pgkit.hpp>
#include <pqxx/pqxx>

#include "support.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
constexpr auto k_window = std::chrono::milliseconds{1000};
constexpr int k_rounds = 4;
const char* const k_schema = "bench_auth";

// Calls `work()` until the window closes; returns calls per second.
template <typename Work>
double rate(Work&& work) {
  long done = 0;
  auto started = clock_type::now();
  auto until = started + k_window;
  while (clock_type::now() < until) {
    work();
    ++done;
  }
  return static_cast<double>(done) /
         std::chrono::duration<double>(clock_type::now() - started).count();
}

// Returns how long one call of `work()` takes on average over `calls`, in milliseconds.
template <typename Work>
double millis_per_call(int calls, Work&& work) {
  auto started = clock_type::now();
  for (int i = 0; i < calls; ++i)
    work();
  return std::chrono::duration<double, std::milli>(clock_type::now() - started).count() / calls;
}

void check(PGresult* result, PGconn* connection) {
  auto status = PQresultStatus(result);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    std::string message = PQerrorMessage(connection);
    PQclear(result);
    throw std::runtime_error("raw libpq: " + message);
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    bench::server server{argc, argv, "bench-auth"};
    const long users = argc > 2 ? std::stol(argv[2]) : 1000000;
    if (sodium_init() < 0)
      throw std::runtime_error("libsodium could not be initialised");
    {
      pqxx::connection connection{server.url()};
      pqxx::nontransaction tx{connection};
      tx.exec(std::string{"DROP SCHEMA IF EXISTS "} + k_schema + " CASCADE");
    }
    {
      pqxx::connection connection{server.url()};
      pgkit::apply_modules(connection, {"auth"}, k_schema);
    }
    auto config = pgkit::config_from_url(server.url(), "bench");
    config.pool_size = 1;
    config.schema = k_schema;
    auto pool = std::make_shared<pgkit::pool>(config);
    pgkit::auth_options fast;
    fast.password_ops_limit = crypto_pwhash_OPSLIMIT_MIN;
    fast.password_mem_limit = crypto_pwhash_MEMLIMIT_MIN;
    pgkit::auth_store store{pool, fast};

    // 1. get_session.
    pgkit::new_user someone;
    someone.email = "someone@example.com";
    auto user = store.create_user(someone);
    auto token = store.create_session(user.id, "192.0.2.1", "bench");
    if (!store.get_session(token))
      throw std::runtime_error("the session just created is not there");
    std::string get_session_sql;
    {
      auto lease = pool->acquire();
      pqxx::nontransaction tx{*lease};
      get_session_sql = tx.exec(
                              "SELECT statement FROM pg_prepared_statements WHERE name LIKE "
                              "'pgkit_auth_get_session_%'")[0][0]
                            .as<std::string>();
    }
    PGconn* raw = PQconnectdb(server.url().c_str());
    if (PQstatus(raw) != CONNECTION_OK)
      throw std::runtime_error(std::string{"raw libpq: "} + PQerrorMessage(raw));
    {
      auto* prepared = PQprepare(raw, "get_session", get_session_sql.c_str(), 1, nullptr);
      check(prepared, raw);
      PQclear(prepared);
    }
    auto raw_get_session = [&] {
      if (!pgkit::is_well_formed_session_key(token))
        throw std::runtime_error("malformed token");
      unsigned char digest[crypto_hash_sha256_BYTES];
      crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(token.data()),
                         token.size());
      const char* values[] = {reinterpret_cast<const char*>(digest)};
      int lengths[] = {static_cast<int>(sizeof digest)};
      int formats[] = {1};
      auto* result = PQexecPrepared(raw, "get_session", 1, values, lengths, formats, 0);
      check(result, raw);
      if (PQntuples(result) != 1 || PQgetvalue(result, 0, 6)[0] != 't')
        throw std::runtime_error("raw libpq: the session is missing");
      pgkit::auth_session session;
      session.id = PQgetvalue(result, 0, 0);
      session.user_id = PQgetvalue(result, 0, 1);
      session.ip = std::string{PQgetvalue(result, 0, 2)};
      session.user_agent = std::string{PQgetvalue(result, 0, 3)};
      session.created_at =
          pgkit::timestamp{std::chrono::microseconds{std::stoll(PQgetvalue(result, 0, 4))}};
      session.expires_at =
          pgkit::timestamp{std::chrono::microseconds{std::stoll(PQgetvalue(result, 0, 5))}};
      PQclear(result);
      return session;
    };
    auto store_get_session = [&] {
      if (!store.get_session(token))
        throw std::runtime_error("pgkit: the session is missing");
    };
    double best_raw = 0;
    double best_store = 0;
    for (int round = 0; round < k_rounds; ++round) {
      best_raw = std::max(best_raw, rate(raw_get_session));
      best_store = std::max(best_store, rate(store_get_session));
    }
    PQfinish(raw);
    std::printf("get_session, 1 thread: raw libpq %.0f/s, pgkit %.0f/s, ratio %.2fx\n", best_raw,
                best_store, best_store / best_raw);

    // 2. list_users by email prefix over many users.
    {
      pqxx::connection connection{server.url()};
      pqxx::nontransaction tx{connection};
      auto started = clock_type::now();
      tx.exec(std::string{"INSERT INTO "} + k_schema +
              ".auth_user (email) SELECT 'user' || i || '@example' || (i % 1000) || '.com' "
              "FROM generate_series(1, " +
              std::to_string(users) + ") i");
      tx.exec(std::string{"VACUUM ANALYZE "} + k_schema + ".auth_user");
      std::printf("list_users: %ld users inserted and analyzed in %.1f s\n", users,
                  std::chrono::duration<double>(clock_type::now() - started).count());
    }
    pgkit::user_search search;
    search.emails = {"user12345%"};
    search.limit = 100;
    auto found = store.list_users(search);
    std::string list_name;
    {
      auto lease = pool->acquire();
      pqxx::nontransaction tx{*lease};
      list_name = tx.exec(
                        "SELECT name FROM pg_prepared_statements WHERE name LIKE "
                        "'pgkit_auth_list_users_%'")[0][0]
                      .as<std::string>();
      std::printf("list_users(emails = {\"user12345%%\"}, limit 100): %zu users; the plan:\n",
                  found.size());
      for (const auto& row : tx.exec("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
                                     "EXECUTE " +
                                     list_name + "('{user12345%}', 100)"))
        std::printf("    %s\n", row[0].c_str());
    }
    PGconn* plain = PQconnectdb(server.url().c_str());
    if (PQstatus(plain) != CONNECTION_OK)
      throw std::runtime_error(std::string{"raw libpq: "} + PQerrorMessage(plain));
    {
      const std::string sql = std::string{"SELECT id FROM "} + k_schema +
                              ".auth_user WHERE deleted_at IS NULL AND lower(email) LIKE "
                              "ANY($1::text[]) ORDER BY id LIMIT 100";
      auto* prepared = PQprepare(plain, "plain", sql.c_str(), 1, nullptr);
      check(prepared, plain);
      PQclear(prepared);
    }
    const int calls = 20;
    double store_ms = 1e9;
    double plain_ms = 1e9;
    for (int round = 0; round < 3; ++round) {
      store_ms = std::min(store_ms, millis_per_call(calls, [&] { store.list_users(search); }));
      plain_ms = std::min(plain_ms, millis_per_call(calls, [&] {
                            const char* values[] = {"{user12345%}"};
                            auto* result =
                                PQexecPrepared(plain, "plain", 1, values, nullptr, nullptr, 0);
                            check(result, plain);
                            PQclear(result);
                          }));
    }
    PQfinish(plain);
    std::printf(
        "list_users by email prefix: pgkit %.2f ms per call, plain LIKE ANY %.2f ms, "
        "%.0fx faster\n",
        store_ms, plain_ms, plain_ms / store_ms);

    // 3. sign_in with the default limits, and argon2id's share of it.
    pgkit::auth_store defaults{pool};
    pgkit::new_user signer;
    signer.email = "signer@example.com";
    signer.password = "correct horse battery staple";
    defaults.create_user(signer);
    char hash[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(hash, signer.password->data(), signer.password->size(),
                          crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
      throw std::runtime_error("argon2id: out of memory");
    const int sign_ins = 10;
    double sign_in_ms = 1e9;
    double verify_ms = 1e9;
    for (int round = 0; round < 3; ++round) {
      sign_in_ms = std::min(sign_in_ms, millis_per_call(sign_ins, [&] {
                              if (!defaults.sign_in("signer@example.com", *signer.password))
                                throw std::runtime_error("sign_in failed");
                            }));
      verify_ms = std::min(verify_ms, millis_per_call(sign_ins, [&] {
                             if (crypto_pwhash_str_verify(hash, signer.password->data(),
                                                          signer.password->size()) != 0)
                               throw std::runtime_error("argon2id: no match");
                           }));
    }
    std::printf(
        "sign_in (argon2id m=64 MiB, t=2): %.1f ms per call; argon2id verify alone "
        "%.1f ms, %.0f%% of it\n",
        sign_in_ms, verify_ms, 100.0 * verify_ms / sign_in_ms);
    // A failed sign-in costs the same whether the email exists or not (the dummy hash).
    double wrong_ms = 1e9;
    double unknown_ms = 1e9;
    for (int round = 0; round < 3; ++round) {
      wrong_ms = std::min(wrong_ms, millis_per_call(sign_ins, [&] {
                            if (defaults.verify_password("signer@example.com", "wrong"))
                              throw std::runtime_error("a wrong password matched");
                          }));
      unknown_ms = std::min(unknown_ms, millis_per_call(sign_ins, [&] {
                              if (defaults.verify_password("nobody@example.com", "wrong"))
                                throw std::runtime_error("an unknown email matched");
                            }));
    }
    std::printf("verify_password: wrong password %.1f ms, unknown email %.1f ms, ratio %.2f\n",
                wrong_ms, unknown_ms, unknown_ms / wrong_ms);
    // An account hashed under older, cheaper limits (here libsodium's minimum) and not signed
    // in since they were raised: its refusal must cost what an unknown email costs.
    pgkit::auth_options cheap;
    cheap.password_ops_limit = crypto_pwhash_OPSLIMIT_MIN;
    cheap.password_mem_limit = crypto_pwhash_MEMLIMIT_MIN;
    pgkit::new_user old_user;
    old_user.email = "old-limits@example.com";
    old_user.password = "an old password";
    pgkit::auth_store{pool, cheap}.create_user(old_user);
    double old_ms = 1e9;
    for (int round = 0; round < 3; ++round) {
      old_ms = std::min(old_ms, millis_per_call(sign_ins, [&] {
                          if (defaults.verify_password("old-limits@example.com", "wrong"))
                            throw std::runtime_error("a wrong password matched");
                        }));
    }
    std::printf(
        "verify_password: wrong password for a hash under older limits %.1f ms, unknown email "
        "%.1f ms, ratio %.2f\n",
        old_ms, unknown_ms, unknown_ms / old_ms);
    pool->close();
    pqxx::connection connection{server.url()};
    pqxx::nontransaction tx{connection};
    tx.exec(std::string{"DROP SCHEMA "} + k_schema + " CASCADE");
  } catch (const std::exception& e) {
    std::cerr << "bench_auth: " << e.what() << '\n';
    return 1;
  }
}
