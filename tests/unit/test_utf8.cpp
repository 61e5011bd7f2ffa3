#include <doctest/doctest.h>

#include <string>

#include "core/utf8.hpp"
#include "pgkit/error.hpp"

using pgkit::invalid_utf8_offset;

TEST_CASE("pgkit::invalid_utf8_offset") {
  constexpr auto valid = std::string_view::npos;

  SUBCASE("well-formed text of every sequence length is valid") {
    CHECK(invalid_utf8_offset("") == valid);
    CHECK(invalid_utf8_offset("jobs") == valid);
    CHECK(invalid_utf8_offset("caf\xc3\xa9") == valid);                // U+00E9
    CHECK(invalid_utf8_offset("\xe2\x82\xac") == valid);               // U+20AC
    CHECK(invalid_utf8_offset("\xef\xbf\xbf") == valid);               // U+FFFF
    CHECK(invalid_utf8_offset("\xf0\x9f\x98\x80") == valid);           // U+1F600
    CHECK(invalid_utf8_offset("\xf4\x8f\xbf\xbf") == valid);           // U+10FFFF
    CHECK(invalid_utf8_offset(std::string_view{"a\0b", 3}) == valid);  // NUL is checked elsewhere
  }
  SUBCASE("the offset of the first bad sequence") {
    CHECK(invalid_utf8_offset("ab\xff") == 2);
    CHECK(invalid_utf8_offset("caf\xe9") == 3);             // Latin-1, not UTF-8
    CHECK(invalid_utf8_offset("\x80") == 0);                // a lone continuation byte
    CHECK(invalid_utf8_offset("x\xc3") == 1);               // cut short at the end
    CHECK(invalid_utf8_offset("\xc3\x28") == 0);            // a bad continuation byte
    CHECK(invalid_utf8_offset("\xc0\xaf") == 0);            // overlong '/'
    CHECK(invalid_utf8_offset("\xe0\x80\xaf") == 0);        // overlong, three bytes
    CHECK(invalid_utf8_offset("\xf0\x80\x80\xaf") == 0);    // overlong, four bytes
    CHECK(invalid_utf8_offset("\xed\xa0\x80") == 0);        // a UTF-16 surrogate
    CHECK(invalid_utf8_offset("\xf4\x90\x80\x80") == 0);    // past U+10FFFF
    CHECK(invalid_utf8_offset("ok\xf5\x80\x80\x80") == 2);  // a lead byte that never occurs
  }
  SUBCASE("check_utf8 names what was wrong and where, as a usage error") {
    CHECK_NOTHROW(pgkit::check_utf8("the payload", "fine"));
    try {
      pgkit::check_utf8("the payload", "ok\xc0\xaf");
      FAIL("no exception");
    } catch (const pgkit::error& e) {
      CHECK(e.kind() == pgkit::error_kind::usage);
      CHECK(std::string{e.what()} == "the payload is not valid UTF-8 (byte 0xc0 at offset 2)");
    }
  }
}
