#pragma once
// The one validator behind every numeric option: finite, within a documented range, durations
// rounded up to the millisecond the server takes (a positive value never becomes 0, which
// PostgreSQL reads as "off"). Anything else is a usage error (exit 2) naming the option, the
// value as given and the range.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

namespace pgkit::cli {

/// The longest duration any option takes: PostgreSQL's lock_timeout and statement_timeout are
/// an int of milliseconds, 2147483.647 s (about 24.8 days).
inline constexpr std::chrono::milliseconds max_option_duration{2147483647};

/// Whether 0 is a valid value of a duration option.
enum class zero_seconds {
  refused,  ///< the range starts above 0 (the smallest positive value is 1 ms)
  allowed,  ///< 0 is in range (each option says what it means: none, off, try once)
};

/// Returns the milliseconds that `text`, a number of seconds for `option` of `command`, stands
/// for: rounded up to whole milliseconds, at least 1 ms when positive. Throws usage_error naming
/// option, value and range when `text` is not a finite number from 0 (or above 0) to
/// max_option_duration.
std::chrono::milliseconds parse_seconds(std::string_view command, std::string_view option,
                                        std::string_view text, zero_seconds zero);

/// Returns the whole number `text` stands for. Throws usage_error naming option, value and
/// range when it is not a whole number from `min` to `max`.
std::size_t parse_count(std::string_view command, std::string_view option, std::string_view text,
                        std::size_t min, std::size_t max);

/// Adds `name` (e.g. "--lock-timeout") as a number of seconds stored into `target` through
/// parse_seconds. `description` should end with the default; the range is appended.
CLI::Option* add_seconds_option(CLI::App& command, const std::string& name,
                                std::chrono::milliseconds& target, zero_seconds zero,
                                const std::string& description);

/// Same, for an option without a default: `target` is set only when the option is given.
CLI::Option* add_seconds_option(CLI::App& command, const std::string& name,
                                std::optional<std::chrono::milliseconds>& target, zero_seconds zero,
                                const std::string& description);

/// Adds `name` as a whole number from `min` to `max`, stored into `target` through parse_count.
CLI::Option* add_count_option(CLI::App& command, const std::string& name, std::size_t& target,
                              std::size_t min, std::size_t max, const std::string& description);

/// Adds `name` as a whole number, possibly negative, from `min` to `max`, stored into `target`.
CLI::Option* add_integer_option(CLI::App& command, const std::string& name, int& target, int min,
                                int max, const std::string& description);

}  // namespace pgkit::cli
