#include <doctest/doctest.h>

#include "pgkit/redact.hpp"

TEST_CASE("pgkit::redact_secrets") {
  using pgkit::redact_secrets;

  SUBCASE("masks the password of a URL and keeps the rest") {
    CHECK(redact_secrets("postgresql://app:s3cret@db.internal:5432/app?sslmode=require") ==
          "postgresql://app:***@db.internal:5432/app?sslmode=require");
    CHECK(redact_secrets("postgres://u:p@h/d") == "postgres://u:***@h/d");
  }
  SUBCASE("masks URLs inside longer messages, whatever the scheme's case") {
    CHECK(redact_secrets("cannot connect to 'POSTGRESQL://a:b@c/d': timeout") ==
          "cannot connect to 'POSTGRESQL://a:***@c/d': timeout");
  }
  SUBCASE("leaves URLs without a password alone") {
    CHECK(redact_secrets("postgresql://app@db/app") == "postgresql://app@db/app");
    CHECK(redact_secrets("postgresql://db/app") == "postgresql://db/app");
  }
  SUBCASE("a password containing @ is masked whole") {
    CHECK(redact_secrets("postgresql://app:p@ss@db/app") == "postgresql://app:***@db/app");
  }
  SUBCASE("masks password= in conninfo strings and query parameters") {
    CHECK(redact_secrets("host=db password=hunter2 user=app") == "host=db password=*** user=app");
    CHECK(redact_secrets("host=db password = 'with space\\' quote' user=app") ==
          "host=db password = *** user=app");
    CHECK(redact_secrets("postgresql://db/app?user=a&password=x&sslmode=disable") ==
          "postgresql://db/app?user=a&password=***&sslmode=disable");
  }
  SUBCASE("does not touch words that merely contain 'password'") {
    CHECK(redact_secrets("column password_hash is null") == "column password_hash is null");
    CHECK(redact_secrets("fe_sendauth: no password supplied") ==
          "fe_sendauth: no password supplied");
  }
}
