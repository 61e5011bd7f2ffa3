#include "number_option.hpp"

#include <charconv>
#include <cmath>
#include <functional>
#include <system_error>

#include <fmt/format.h>

#include "pgkit/error.hpp"

namespace pgkit::cli {
namespace {

// A value is echoed as given, but never as a wall of digits.
std::string shown_value(std::string_view text) {
  constexpr std::size_t longest = 32;
  if (text.size() <= longest)
    return "'" + std::string{text} + "'";
  return "'" + std::string{text.substr(0, longest)} + "...' (" + std::to_string(text.size()) +
         " characters)";
}

std::string seconds_range(zero_seconds zero) {
  return fmt::format("{} to {}", zero == zero_seconds::allowed ? "0" : "0.001",
                     static_cast<double>(max_option_duration.count()) / 1000.0);
}

[[noreturn]] void refuse(std::string_view command, std::string_view option, std::string_view text,
                         const std::string& what) {
  throw usage_error(std::string{option} + " must be " + what + ", not " + shown_value(text),
                    "run 'pgkit " + std::string{command} + " --help' for every option's range");
}

// The one place a duration option is registered; the overloads differ only in where the value goes.
CLI::Option* add_seconds(CLI::App& command, const std::string& name,
                         std::function<void(std::chrono::milliseconds)> set, zero_seconds zero,
                         const std::string& description) {
  auto store = [command = command.get_name(), name, set = std::move(set),
                zero](const std::string& text) { set(parse_seconds(command, name, text, zero)); };
  return command
      .add_option_function<std::string>(name, store, description + " (" + seconds_range(zero) + ")")
      ->option_text("SECONDS");
}

}  // namespace

std::chrono::milliseconds parse_seconds(std::string_view command, std::string_view option,
                                        std::string_view text, zero_seconds zero) {
  std::string what = "a number of seconds from " + seconds_range(zero);
  double seconds = 0;
  const char* end = text.data() + text.size();
  auto [stop, failure] = std::from_chars(text.data(), end, seconds);
  bool in_range = failure == std::errc{} && stop == end && std::isfinite(seconds) &&
                  (zero == zero_seconds::allowed ? seconds >= 0 : seconds > 0) &&
                  seconds * 1000.0 <= static_cast<double>(max_option_duration.count());
  if (!in_range)
    refuse(command, option, text, what);
  // Microseconds first, so that 0.007 s (7.000000000000001 ms in binary) is 7 ms, not 8.
  auto micros = std::llround(seconds * 1e6);
  std::chrono::milliseconds rounded{(micros + 999) / 1000};
  if (seconds > 0 && rounded.count() == 0)
    rounded = std::chrono::milliseconds{1};
  return std::min(rounded, max_option_duration);
}

std::size_t parse_count(std::string_view command, std::string_view option, std::string_view text,
                        std::size_t min, std::size_t max) {
  std::size_t count = 0;
  const char* end = text.data() + text.size();
  auto [stop, failure] = std::from_chars(text.data(), end, count);
  if (failure != std::errc{} || stop != end || count < min || count > max)
    refuse(command, option, text, fmt::format("a whole number from {} to {}", min, max));
  return count;
}

CLI::Option* add_seconds_option(CLI::App& command, const std::string& name,
                                std::chrono::milliseconds& target, zero_seconds zero,
                                const std::string& description) {
  return add_seconds(
      command, name, [&target](std::chrono::milliseconds value) { target = value; }, zero,
      description);
}

CLI::Option* add_seconds_option(CLI::App& command, const std::string& name,
                                std::optional<std::chrono::milliseconds>& target, zero_seconds zero,
                                const std::string& description) {
  return add_seconds(
      command, name, [&target](std::chrono::milliseconds value) { target = value; }, zero,
      description);
}

CLI::Option* add_count_option(CLI::App& command, const std::string& name, std::size_t& target,
                              std::size_t min, std::size_t max, const std::string& description) {
  auto store = [command = command.get_name(), name, &target, min, max](const std::string& text) {
    target = parse_count(command, name, text, min, max);
  };
  return command
      .add_option_function<std::string>(name, store,
                                        fmt::format("{} ({} to {})", description, min, max))
      ->option_text("N");
}

CLI::Option* add_integer_option(CLI::App& command, const std::string& name, int& target, int min,
                                int max, const std::string& description) {
  auto store = [command = command.get_name(), name, &target, min, max](const std::string& text) {
    int number = 0;
    const char* end = text.data() + text.size();
    auto [stop, failure] = std::from_chars(text.data(), end, number);
    if (failure != std::errc{} || stop != end || number < min || number > max)
      refuse(command, name, text, fmt::format("a whole number from {} to {}", min, max));
    target = number;
  };
  return command
      .add_option_function<std::string>(name, store,
                                        fmt::format("{} ({} to {})", description, min, max))
      ->option_text("N");
}

}  // namespace pgkit::cli
