// Cron expressions of periodic jobs (queue_schedule::cron): which minutes match, in UTC, and
// what is refused with which message.

#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "pgkit/error.hpp"
#include "stores/cron.hpp"

namespace {

// Milliseconds since the epoch of a UTC minute (days from 1970-01-01, a Thursday).
std::int64_t minute_at(std::int64_t days, int hour, int minute) {
  return ((days * 24 + hour) * 60 + minute) * 60000;
}

// 2026-12-06 is a Sunday, 20 793 days after the epoch.
constexpr std::int64_t k_sunday = 20793;

std::string refusal(const std::string& text) {
  try {
    pgkit::detail::cron_expression{text};
  } catch (const pgkit::usage_error& e) {
    CHECK(!e.hint().empty());
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("cron expressions of periodic jobs") {
  using pgkit::detail::cron_expression;

  SUBCASE("every minute, steps, ranges and lists") {
    CHECK(cron_expression{"* * * * *"}.matches(minute_at(k_sunday, 13, 7)));
    cron_expression quarter{"*/15 * * * *"};
    CHECK(quarter.matches(minute_at(k_sunday, 13, 0)));
    CHECK(quarter.matches(minute_at(k_sunday, 13, 45)));
    CHECK_FALSE(quarter.matches(minute_at(k_sunday, 13, 20)));
    cron_expression office{"30 9-17/4 * * *"};
    CHECK(office.matches(minute_at(k_sunday, 9, 30)));
    CHECK(office.matches(minute_at(k_sunday, 13, 30)));
    CHECK(office.matches(minute_at(k_sunday, 17, 30)));
    CHECK_FALSE(office.matches(minute_at(k_sunday, 11, 30)));
    CHECK_FALSE(office.matches(minute_at(k_sunday, 21, 30)));
    cron_expression listed{"5,10,50-52 * * * *"};
    CHECK(listed.matches(minute_at(k_sunday, 0, 10)));
    CHECK(listed.matches(minute_at(k_sunday, 0, 51)));
    CHECK_FALSE(listed.matches(minute_at(k_sunday, 0, 11)));
    CHECK(cron_expression{"7/20 * * * *"}.matches(minute_at(k_sunday, 0, 47)));
  }

  SUBCASE("days of the week, months and days of the month, read in UTC") {
    cron_expression weekdays{"0 3 * * 1-5"};
    CHECK_FALSE(weekdays.matches(minute_at(k_sunday, 3, 0)));
    CHECK(weekdays.matches(minute_at(k_sunday + 1, 3, 0)));                  // Monday
    CHECK_FALSE(weekdays.matches(minute_at(k_sunday + 6, 3, 0)));            // Saturday
    CHECK(cron_expression{"0 3 * * 7"}.matches(minute_at(k_sunday, 3, 0)));  // 7 is Sunday too
    CHECK(cron_expression{"0 3 * * 0"}.matches(minute_at(k_sunday, 3, 0)));
    cron_expression december_sixth{"0 0 6 12 *"};
    CHECK(december_sixth.matches(minute_at(k_sunday, 0, 0)));
    CHECK_FALSE(december_sixth.matches(minute_at(k_sunday + 1, 0, 0)));
    CHECK_FALSE(cron_expression{"0 0 6 11 *"}.matches(minute_at(k_sunday, 0, 0)));
    // Both day fields restricted: either one matching is enough, as in cron.
    cron_expression either{"0 0 1 * 1"};
    CHECK(either.matches(minute_at(k_sunday + 1, 0, 0)));        // a Monday, 7th
    CHECK_FALSE(either.matches(minute_at(k_sunday + 2, 0, 0)));  // a Tuesday, 8th
  }

  SUBCASE("the @ shorthands") {
    CHECK(cron_expression{"@daily"}.matches(minute_at(k_sunday, 0, 0)));
    CHECK_FALSE(cron_expression{"@daily"}.matches(minute_at(k_sunday, 1, 0)));
    CHECK(cron_expression{"@hourly"}.matches(minute_at(k_sunday, 1, 0)));
    CHECK(cron_expression{"@weekly"}.matches(minute_at(k_sunday, 0, 0)));
    CHECK_FALSE(cron_expression{"@monthly"}.matches(minute_at(k_sunday, 0, 0)));
    CHECK(cron_expression{"@yearly"}.matches(minute_at(0, 0, 0)));
  }

  SUBCASE("what is refused says what is wrong") {
    CHECK(refusal("* * * *") ==
          "the cron expression \"* * * *\" is not valid: it has 4 fields, not 5");
    CHECK(refusal("61 * * * *").find("the minute field takes 0 to 59, not 61") !=
          std::string::npos);
    CHECK(refusal("* * * jan *").find("the month field takes numbers, not \"jan\"") !=
          std::string::npos);
    CHECK(refusal("*/0 * * * *").find("not 0") != std::string::npos);
    CHECK(refusal("5-1 * * * *").find("runs backwards") != std::string::npos);
    CHECK(refusal("1,,2 * * * *") != "");
    CHECK(refusal("@often") != "");
    CHECK(refusal("") != "");
  }
}
