#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "notify/listener_backoff.hpp"
#include "pgkit/error.hpp"
#include "pgkit/notify.hpp"

using namespace std::chrono_literals;

TEST_CASE("pgkit::check_channel_name and pgkit::check_payload") {
  SUBCASE("any name of 1 to 63 bytes without NUL is accepted") {
    for (const std::string& name :
         std::vector<std::string>{"a", "Upper Case", "quo\"te", "ünïcødé ✓", std::string(63, 'x')})
      CHECK_NOTHROW(pgkit::check_channel_name(name));
  }
  SUBCASE("empty, NUL and 64-byte names are usage errors") {
    CHECK_THROWS_AS(pgkit::check_channel_name(""), pgkit::usage_error);
    CHECK_THROWS_AS(pgkit::check_channel_name(std::string{"a\0b", 3}), pgkit::usage_error);
    CHECK_THROWS_AS(pgkit::check_channel_name(std::string(64, 'x')), pgkit::usage_error);
    // 32 two-byte characters are 64 bytes: the limit is in bytes.
    std::string wide;
    for (int i = 0; i < 32; ++i)
      wide += "é";
    CHECK_THROWS_AS(pgkit::check_channel_name(wide), pgkit::usage_error);
  }
  SUBCASE("payloads up to 7999 bytes pass; 8000 and NUL are refused") {
    CHECK_NOTHROW(pgkit::check_payload(""));
    CHECK_NOTHROW(pgkit::check_payload(std::string(7999, 'p')));
    CHECK_THROWS_AS(pgkit::check_payload(std::string(8000, 'p')), pgkit::usage_error);
    CHECK_THROWS_AS(pgkit::check_payload(std::string{"a\0b", 3}), pgkit::usage_error);
  }
  SUBCASE("quote_channel doubles quotes and keeps everything else") {
    CHECK(pgkit::quote_channel("jobs") == "\"jobs\"");
    CHECK(pgkit::quote_channel("Say \"hi\"") == "\"Say \"\"hi\"\"\"");
  }
}

TEST_CASE("pgkit::detail::reconnect_delay") {
  using pgkit::detail::reconnect_delay;
  SUBCASE("doubles per failure within [delay / 2, delay]") {
    CHECK(reconnect_delay(1, 250ms, 30s, 0.0) == 125ms);
    CHECK(reconnect_delay(1, 250ms, 30s, 0.999999) == 249ms);
    CHECK(reconnect_delay(2, 250ms, 30s, 0.0) == 250ms);
    CHECK(reconnect_delay(3, 250ms, 30s, 0.0) == 500ms);
    CHECK(reconnect_delay(4, 250ms, 30s, 1.0) == 2000ms);
  }
  SUBCASE("is capped at the maximum, however many failures") {
    CHECK(reconnect_delay(20, 250ms, 30s, 1.0) == 30s);
    CHECK(reconnect_delay(1000000, 250ms, 30s, 0.0) == 15s);
  }
}
