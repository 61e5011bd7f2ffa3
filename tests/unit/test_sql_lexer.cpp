#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "migrate/sql_lexer.hpp"

using pgkit::detail::split_statements;
using pgkit::detail::transaction_control;
using pgkit::detail::with_final_semicolon;

namespace {

// The text of each statement of `sql`, without its `;`.
std::vector<std::string> texts(std::string_view sql) {
  std::vector<std::string> out;
  for (const auto& statement : split_statements(sql))
    out.emplace_back(sql.substr(statement.begin, statement.end - statement.begin));
  return out;
}

// The transaction-control command of each statement ("" for none).
std::vector<std::string> controls(std::string_view sql) {
  std::vector<std::string> out;
  for (const auto& statement : split_statements(sql))
    out.push_back(transaction_control(statement).value_or(""));
  return out;
}

}  // namespace

TEST_CASE("pgkit::detail::split_statements") {
  SUBCASE("plain statements, their lines and whether a ; ends them") {
    std::string sql =
        "-- leading comment\nCREATE TABLE a (id int);\n\n  INSERT INTO a\n  VALUES (1)";
    auto statements = split_statements(sql);
    REQUIRE(statements.size() == 2);
    CHECK(statements[0].line == 2);
    CHECK(statements[0].terminated);
    CHECK(statements[1].line == 4);
    CHECK_FALSE(statements[1].terminated);
    CHECK(texts(sql) ==
          std::vector<std::string>{"CREATE TABLE a (id int)", "INSERT INTO a\n  VALUES (1)"});
    CHECK(statements[1].leading_words == std::vector<std::string>{"INSERT", "INTO", "A"});
  }
  SUBCASE("semicolons inside strings, identifiers and comments do not split") {
    CHECK(texts("SELECT ';', 'it''s;';SELECT 2") ==
          std::vector<std::string>{"SELECT ';', 'it''s;'", "SELECT 2"});
    CHECK(texts("SELECT E'a\\';b'; SELECT 2").size() == 2);
    CHECK(texts("SELECT E'a\\';b'; SELECT 2")[0] == "SELECT E'a\\';b'");
    CHECK(texts("SELECT 'a\\'; SELECT 2").size() == 2);  // no backslash escapes in '' strings
    CHECK(texts("CREATE TABLE \"a;b\"\"c\" (); SELECT 1").size() == 2);
    CHECK(texts("SELECT 1 -- a; comment\n; SELECT 2") ==
          std::vector<std::string>{"SELECT 1", "SELECT 2"});
    CHECK(texts("SELECT /* outer /* inner; */ still; comment */ 1; SELECT 2") ==
          std::vector<std::string>{"SELECT /* outer /* inner; */ still; comment */ 1", "SELECT 2"});
  }
  SUBCASE("lines are counted inside strings, identifiers and comments") {
    auto statements = split_statements("SELECT 'a\nb', E'c\\\nd', \"e\nf\" /* g\n */;\nSELECT 2");
    REQUIRE(statements.size() == 2);
    CHECK(statements[1].line == 6);
  }
  SUBCASE("dollar-quoted bodies, with and without a tag") {
    auto sql =
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n  RETURN 1;\nEND\n$$;\n"
        "DO $body$ BEGIN PERFORM 1; COMMIT; END $body$;\n"
        "SELECT $1, a$b FROM t";
    auto statements = split_statements(sql);
    REQUIRE(statements.size() == 3);
    CHECK(statements[1].line == 6);
    CHECK(statements[1].leading_words == std::vector<std::string>{"DO"});
    CHECK(texts("SELECT $x$ ; $y$ ; $x$; SELECT 2").size() == 2);
  }
  SUBCASE("BEGIN ATOMIC bodies of SQL-standard functions (PostgreSQL 14)") {
    auto sql =
        "CREATE OR REPLACE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql\n"
        "BEGIN ATOMIC\n  SELECT CASE WHEN a > 0 THEN a ELSE 0 END + b;\n  SELECT 1;\nEND;\n"
        "CREATE PROCEDURE p() BEGIN ATOMIC INSERT INTO t VALUES (1); END;\n"
        "SELECT CASE WHEN true THEN 1 END; SELECT 2";
    auto statements = split_statements(sql);
    REQUIRE(statements.size() == 4);
    CHECK(statements[0].line == 1);
    CHECK(statements[1].line == 6);
    CHECK(statements[2].line == 7);
    CHECK(statements[3].line == 7);
  }
  SUBCASE("parentheses keep a ; inside them") {
    CHECK(texts("CREATE RULE r AS ON INSERT TO t DO ALSO (SELECT 1; SELECT 2); SELECT 3").size() ==
          2);
  }
  SUBCASE("empty statements and comment-only text give nothing") {
    CHECK(split_statements(";;  ;\n-- only a comment\n/* and this */").empty());
    CHECK(split_statements("").empty());
  }
  SUBCASE("unterminated strings and comments run to the end without failing") {
    CHECK(texts("SELECT 'open; SELECT 2").size() == 1);
    CHECK(texts("SELECT 1; /* open ; SELECT 2").size() == 1);
    CHECK(texts("SELECT $$ open ; SELECT 2").size() == 1);
    CHECK(texts("SELECT E'\\").size() == 1);
    const char raw[] = "\0\xff\xfe;$\x80$;'";
    std::string bytes{raw, sizeof raw - 1};
    CHECK(split_statements(bytes).size() <= 3);
  }
}

TEST_CASE("pgkit::detail::transaction_control") {
  SUBCASE("statements that end or start a transaction") {
    CHECK(controls("BEGIN; begin work; START TRANSACTION; COMMIT; END; ABORT; ROLLBACK;"
                   "ROLLBACK WORK; PREPARE TRANSACTION 'x'; COMMIT PREPARED 'x'; "
                   "ROLLBACK PREPARED 'x'") ==
          std::vector<std::string>{"BEGIN", "BEGIN", "START TRANSACTION", "COMMIT", "END", "ABORT",
                                   "ROLLBACK", "ROLLBACK", "PREPARE TRANSACTION", "COMMIT PREPARED",
                                   "ROLLBACK PREPARED"});
  }
  SUBCASE("what stays inside the transaction") {
    CHECK(controls("ROLLBACK TO SAVEPOINT s; ROLLBACK TO s; ROLLBACK WORK TO s; SAVEPOINT s; "
                   "PREPARE q AS SELECT 1; SELECT 1 AS begin; \"begin\"") ==
          std::vector<std::string>{"", "", "", "", "", "", ""});
  }
  SUBCASE("BEGIN and COMMIT inside function bodies and DO blocks are not refused") {
    auto sql =
        "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n  NULL;\nEND\n$$;\n"
        "CREATE PROCEDURE p() LANGUAGE plpgsql AS $p$ BEGIN COMMIT; END $p$;\n"
        "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;\n"
        "SELECT CASE WHEN true THEN 1 END";
    CHECK(controls(sql) == std::vector<std::string>{"", "", "", ""});
  }
}

TEST_CASE("pgkit::detail::with_final_semicolon") {
  CHECK(with_final_semicolon("INSERT INTO t VALUES ('viewer')") ==
        "INSERT INTO t VALUES ('viewer');");
  CHECK(with_final_semicolon("SELECT 1; -- done") == "SELECT 1; -- done");
  CHECK(with_final_semicolon("DO $$ BEGIN NULL; END $$ -- trailing") ==
        "DO $$ BEGIN NULL; END $$; -- trailing");
  CHECK(with_final_semicolon("-- only a comment") == "-- only a comment");
}
