#include <doctest/doctest.h>

#include <pqxx/except>

#include <stdexcept>

#include "pgkit/error.hpp"

TEST_CASE("pgkit::error") {
  using pgkit::error_kind;

  SUBCASE("SQLSTATEs map to the kinds a caller branches on") {
    CHECK(pgkit::kind_from_sqlstate("23505") == error_kind::unique_violation);
    CHECK(pgkit::kind_from_sqlstate("23503") == error_kind::foreign_key_violation);
    CHECK(pgkit::kind_from_sqlstate("23514") == error_kind::check_violation);
    CHECK(pgkit::kind_from_sqlstate("40001") == error_kind::serialization_failure);
    CHECK(pgkit::kind_from_sqlstate("40P01") == error_kind::deadlock);
    CHECK(pgkit::kind_from_sqlstate("55P03") == error_kind::lock_timeout);
    CHECK(pgkit::kind_from_sqlstate("57014") == error_kind::canceled);
    CHECK(pgkit::kind_from_sqlstate("08006") == error_kind::connection_lost);
    CHECK(pgkit::kind_from_sqlstate("57P01") == error_kind::connection_lost);
    CHECK(pgkit::kind_from_sqlstate("42P01") == error_kind::undefined_object);
    CHECK(pgkit::kind_from_sqlstate("42601") == error_kind::sql);
  }
  SUBCASE("class 08 is a lost connection, except a protocol violation: the caller's mistake") {
    CHECK(pgkit::kind_from_sqlstate("08003") == error_kind::connection_lost);
    CHECK(pgkit::kind_from_sqlstate("08P01") == error_kind::usage);
    CHECK(pgkit::sql_error("x", "08P01").hint().find("still usable") != std::string::npos);
  }
  SUBCASE("pgkit::translate gives libpqxx's exceptions their kinds") {
    CHECK(pgkit::translate(pqxx::sql_error{"dup", "INSERT", "23505"}).kind() ==
          error_kind::unique_violation);
    CHECK(pgkit::translate(pqxx::sql_error{"dup", "INSERT", "23505"}).sqlstate() == "23505");
    CHECK(pgkit::translate(pqxx::broken_connection{"gone"}).kind() == error_kind::connection_lost);
    CHECK(pgkit::translate(pqxx::in_doubt_error{"commit?"}).kind() == error_kind::connection_lost);
    CHECK(pgkit::translate(pqxx::usage_error{"closed"}).kind() == error_kind::usage);
    CHECK(pgkit::translate(std::runtime_error{"other"}).kind() == error_kind::internal);
    const pgkit::error own{error_kind::timeout, "mine"};
    CHECK(pgkit::translate(own).kind() == error_kind::timeout);
  }
  SUBCASE("only serialization failures and deadlocks are transient") {
    CHECK(pgkit::sql_error("x", "40001").is_transient());
    CHECK(pgkit::sql_error("x", "40P01").is_transient());
    CHECK_FALSE(pgkit::sql_error("x", "23505").is_transient());
  }
  SUBCASE("messages, hints and queries never carry a password") {
    pgkit::sql_error e{"failed on postgresql://a:secret@h/d", "42601",
                       "SELECT 'postgresql://a:secret@h/d'", "try password=secret"};
    CHECK(std::string{e.what()} == "failed on postgresql://a:***@h/d");
    CHECK(e.query() == "SELECT 'postgresql://a:***@h/d'");
    CHECK(e.hint() == "try password=***");
    CHECK(e.sqlstate() == "42601");
  }
  SUBCASE("the subclasses carry their kinds") {
    CHECK(pgkit::usage_error("x").kind() == error_kind::usage);
    CHECK(pgkit::config_error("x").kind() == error_kind::config);
    CHECK(pgkit::check_failed("x").kind() == error_kind::check_failed);
    CHECK(pgkit::to_string(error_kind::lock_timeout) == "lock_timeout");
  }
}
