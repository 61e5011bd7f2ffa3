#pragma once
// Cron expressions for periodic jobs: the five fields minute, hour, day of month, month and day
// of week, read in UTC, each `*`, a number, a range `A-B`, any of those with a step `/N`, or a
// comma-separated list of them; or one of @yearly, @annually, @monthly, @weekly, @daily,
// @midnight, @hourly. Day of week 0 and 7 are Sunday. As in cron, when both day fields are
// restricted, a day matches when either does.

#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>

namespace pgkit::detail {

class cron_expression {
 public:
  /// Throws usage_error naming the field that is wrong and what it takes.
  explicit cron_expression(std::string_view text);

  /// Whether the minute that starts `minute_ms` milliseconds after the Unix epoch matches.
  bool matches(std::int64_t minute_ms) const;

 private:
  std::bitset<60> m_minutes;
  std::bitset<24> m_hours;
  std::bitset<32> m_days;     // 1..31
  std::bitset<13> m_months;   // 1..12
  std::bitset<7> m_weekdays;  // 0 = Sunday
  bool m_any_day = true;
  bool m_any_weekday = true;
};

}  // namespace pgkit::detail
