#include "stores/cron.hpp"

#include <ctime>
#include <sstream>
#include <vector>

#include "pgkit/error.hpp"

namespace pgkit::detail {
namespace {

const char* const k_form =
    "write five fields (minute hour day-of-month month day-of-week), e.g. \"*/15 * * * *\" or "
    "\"0 3 * * 1-5\", or @hourly, @daily, @weekly, @monthly, @yearly";

struct field {
  const char* name;
  int low;
  int high;
};

[[noreturn]] void refuse(std::string_view text, const std::string& what) {
  throw usage_error("the cron expression \"" + std::string{text} + "\" is not valid: " + what,
                    k_form);
}

int number_in(std::string_view text, std::string_view part, const field& spec) {
  if (part.empty() || part.size() > 3 || part.find_first_not_of("0123456789") != part.npos) {
    refuse(text, std::string{"the "} + spec.name + " field takes numbers, not \"" +
                     std::string{part} + "\"");
  }
  int value = std::stoi(std::string{part});
  if (value < spec.low || value > spec.high) {
    refuse(text, std::string{"the "} + spec.name + " field takes " + std::to_string(spec.low) +
                     " to " + std::to_string(spec.high) + ", not " + std::to_string(value));
  }
  return value;
}

// Sets the bits one field selects; returns false when the field starts with `*` (which, as in
// cron, leaves the other day field alone to decide).
template <std::size_t N>
bool parse_field(std::string_view text, std::string_view value, const field& spec,
                 std::bitset<N>& bits) {
  bool restricted = value.empty() || value.front() != '*';
  std::size_t start = 0;
  while (start <= value.size()) {
    auto end = value.find(',', start);
    auto item = value.substr(start, end == value.npos ? value.npos : end - start);
    int step = 1;
    if (auto slash = item.find('/'); slash != item.npos) {
      step = number_in(text, item.substr(slash + 1), {spec.name, 1, spec.high});
      item = item.substr(0, slash);
    }
    int from = spec.low;
    int to = spec.high;
    if (item != "*") {
      auto dash = item.find('-');
      from = number_in(text, item.substr(0, dash), spec);
      to = dash == item.npos ? (step > 1 ? spec.high : from)
                             : number_in(text, item.substr(dash + 1), spec);
      if (to < from) {
        refuse(text, std::string{"the range \""} + std::string{item} + "\" of the " + spec.name +
                         " field runs backwards");
      }
    }
    for (int at = from; at <= to; at += step)
      bits.set(static_cast<std::size_t>(at));
    if (end == value.npos)
      break;
    start = end + 1;
  }
  return restricted;
}

std::string_view expand(std::string_view text) {
  if (text == "@yearly" || text == "@annually")
    return "0 0 1 1 *";
  if (text == "@monthly")
    return "0 0 1 * *";
  if (text == "@weekly")
    return "0 0 * * 0";
  if (text == "@daily" || text == "@midnight")
    return "0 0 * * *";
  if (text == "@hourly")
    return "0 * * * *";
  return text;
}

}  // namespace

cron_expression::cron_expression(std::string_view text) {
  std::istringstream in{std::string{expand(text)}};
  std::vector<std::string> fields;
  for (std::string part; in >> part;)
    fields.push_back(part);
  if (fields.size() != 5) {
    refuse(text, "it has " + std::to_string(fields.size()) + " field" +
                     (fields.size() == 1 ? "" : "s") + ", not 5");
  }
  parse_field(text, fields[0], {"minute", 0, 59}, m_minutes);
  parse_field(text, fields[1], {"hour", 0, 23}, m_hours);
  m_any_day = !parse_field(text, fields[2], {"day-of-month", 1, 31}, m_days);
  parse_field(text, fields[3], {"month", 1, 12}, m_months);
  std::bitset<8> weekdays;
  m_any_weekday = !parse_field(text, fields[4], {"day-of-week", 0, 7}, weekdays);
  for (std::size_t day = 0; day < 7; ++day)
    m_weekdays[day] = weekdays[day] || (day == 0 && weekdays[7]);
}

bool cron_expression::matches(std::int64_t minute_ms) const {
  auto seconds = static_cast<std::time_t>(minute_ms / 1000);
  std::tm at{};
  ::gmtime_r(&seconds, &at);
  if (!m_minutes[static_cast<std::size_t>(at.tm_min)] ||
      !m_hours[static_cast<std::size_t>(at.tm_hour)] ||
      !m_months[static_cast<std::size_t>(at.tm_mon + 1)]) {
    return false;
  }
  bool day = m_days[static_cast<std::size_t>(at.tm_mday)];
  bool weekday = m_weekdays[static_cast<std::size_t>(at.tm_wday)];
  if (m_any_day && m_any_weekday)
    return true;
  if (m_any_day)
    return weekday;
  if (m_any_weekday)
    return day;
  return day || weekday;
}

}  // namespace pgkit::detail
