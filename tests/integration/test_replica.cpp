// Read replicas: the session store reading a streaming standby first, and the cache refusing a
// standby with a clear error. A primary and a standby of the test's own (never the shared
// fixture server, which other tests use in parallel).

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "harness.hpp"
#include "pgkit/auth.hpp"
#include "pgkit/cache.hpp"
#include "pgkit/error.hpp"
#include "pgkit/pool.hpp"
#include "pgkit/session.hpp"

using pgkit_test::own_sandbox;
using pgkit_test::query_value;

namespace {

std::string sessions_on(const own_sandbox& server) {
  return query_value(server.url(), "SELECT count(*) FROM pgkit.session");
}

}  // namespace

TEST_CASE("read replicas") {
  own_sandbox primary;
  primary.apply({"cache", "session", "auth"});
  own_sandbox standby{own_sandbox::standby_of{primary}};
  auto primary_pool = std::make_shared<pgkit::pool>(pgkit::config_from_url(primary.url()));
  auto replica_pool = std::make_shared<pgkit::pool>(pgkit::config_from_url(standby.url()));
  pgkit::session_options options;
  options.replica = replica_pool;
  pgkit::session_store sessions{primary_pool, options};

  SUBCASE("get reads the replica, and the primary for what the replica has not replayed") {
    auto key = sessions.generate("first");
    REQUIRE(pgkit_test::eventually([&] { return sessions_on(standby) == "1"; }));
    auto reads_before = replica_pool->stats().acquired;
    CHECK(sessions.get(key)->data == "first");
    CHECK(replica_pool->stats().acquired == reads_before + 1);

    // The replica stands still from here: what happens on the primary does not reach it.
    query_value(standby.url(), "SELECT pg_wal_replay_pause()");
    auto fresh = sessions.generate("fresh");
    CHECK(sessions_on(standby) == "1");
    auto found = sessions.get(fresh);  // a miss on the replica, found on the primary
    REQUIRE(found);
    CHECK(found->data == "fresh");
    CHECK(found->version == 1);
    // The staleness docs/scaling.md describes: a change the replica has not replayed yet.
    REQUIRE(sessions.set(key, "second") == pgkit::set_result::updated);
    CHECK(sessions.get(key)->data == "first");

    query_value(standby.url(), "SELECT pg_wal_replay_resume()");
    CHECK(pgkit_test::eventually([&] { return sessions.get(key)->data == "second"; }));
    CHECK(sessions.clear(key));
    CHECK(pgkit_test::eventually([&] { return !sessions.get(key); }));
  }
  SUBCASE("a replica that is down: get reads the primary") {
    auto key = sessions.generate("kept");
    standby.stop();
    auto found = sessions.get(key);
    REQUIRE(found);
    CHECK(found->data == "kept");
  }
  SUBCASE("auth get_session reads the replica, and the primary for what it has not replayed") {
    pgkit::auth_options auth_options;
    auth_options.replica = replica_pool;
    pgkit::auth_store auth{primary_pool, auth_options};
    pgkit::new_user who;
    who.email = "replica@example.com";
    auto user = auth.create_user(who);
    auto token = auth.create_session(user.id);
    auto on_standby = [&] {
      return query_value(standby.url(), "SELECT count(*) FROM pgkit.auth_session");
    };
    REQUIRE(pgkit_test::eventually([&] { return on_standby() == "1"; }));
    auto reads_before = replica_pool->stats().acquired;
    auto found = auth.get_session(token);
    REQUIRE(found);
    CHECK(found->user_id == user.id);
    CHECK(replica_pool->stats().acquired == reads_before + 1);

    query_value(standby.url(), "SELECT pg_wal_replay_pause()");
    auto fresh = auth.create_session(user.id);
    CHECK(on_standby() == "1");
    auto fresh_found = auth.get_session(fresh);  // a miss on the replica, found on the primary
    REQUIRE(fresh_found);
    CHECK(fresh_found->user_id == user.id);
    // The staleness docs/scaling.md describes: a sign-out the replica has not replayed yet.
    CHECK(auth.delete_session(token));
    CHECK(auth.get_session(token));
    query_value(standby.url(), "SELECT pg_wal_replay_resume()");
    CHECK(pgkit_test::eventually([&] { return !auth.get_session(token); }));

    standby.stop();  // a replica that is down: the primary answers
    CHECK(auth.get_session(fresh));
  }
  SUBCASE("the cache on a standby fails with a pgkit error that says why") {
    pgkit::cache_store on_standby{replica_pool};
    for (int write = 0; write < 2; ++write) {
      try {
        if (write == 1)
          on_standby.set("page", "/", "x");
        else
          on_standby.get("page", "/");
        FAIL("the standby served the cache");
      } catch (const pgkit::error& e) {
        CHECK(std::string{e.what()}.find("cannot be used on a standby: it is UNLOGGED") !=
              std::string::npos);
        CHECK(e.hint().find("pool on the primary") != std::string::npos);
        CHECK(e.sqlstate() == (write == 1 ? "25006" : "0A000"));
      }
    }
    // The primary serves it.
    pgkit::cache_store on_primary{primary_pool};
    on_primary.set("page", "/", "x");
    CHECK(on_primary.get("page", "/") == "x");
  }
}

TEST_CASE("the replica example in docs/scaling.md") {
  own_sandbox primary;
  primary.apply({"session"});
  own_sandbox standby{own_sandbox::standby_of{primary}};
  auto app = pgkit_test::in_app_dir(primary.url(),
                                    "replica = \"reader\"\n\n"
                                    "[connections.reader]\nurl = \"" +
                                        standby.url() + "\"\n");
  auto ran = pgkit_test::run_process({PGKIT_EXAMPLE_REPLICA}, app);
  CHECK_MESSAGE(ran.exit_code == 0, ran.err);
  CHECK(ran.out == "user=42\n");
}
