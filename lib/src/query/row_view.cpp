// row_view's typed reads: text-format values of a few PostgreSQL types converted to C++ types,
// with a usage error that names the column, its type and the fix on a mismatch.

#include <libpq-fe.h>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "pgkit/error.hpp"
#include "pgkit/query.hpp"

namespace pgkit {
namespace {

// The OIDs of the built-in types read here (pg_type.dat; fixed since PostgreSQL 7).
constexpr std::uint32_t k_bool = 16, k_bytea = 17, k_int8 = 20, k_int2 = 21, k_int4 = 23,
                        k_float4 = 700, k_float8 = 701, k_timestamptz = 1184, k_numeric = 1700,
                        k_uuid = 2950;

std::string type_name(std::uint32_t oid) {
  switch (oid) {
    case k_bool:
      return "bool";
    case k_bytea:
      return "bytea";
    case k_int8:
      return "int8";
    case k_int2:
      return "int2";
    case k_int4:
      return "int4";
    case k_float4:
      return "float4";
    case k_float8:
      return "float8";
    case k_timestamptz:
      return "timestamptz";
    case k_numeric:
      return "numeric";
    case k_uuid:
      return "uuid";
    case 25:
      return "text";
    case 1043:
      return "varchar";
    case 1114:
      return "timestamp (without time zone)";
    default:
      return "the type with OID " + std::to_string(oid);
  }
}

template <typename Number>
std::optional<Number> whole(std::string_view text) {
  Number value{};
  auto [end, failure] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (failure != std::errc{} || end != text.data() + text.size())
    return std::nullopt;
  return value;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

// Days from 1970-01-01 to the proleptic Gregorian date y-m-d (era arithmetic: 400-year cycles of
// 146 097 days, years starting in March so that the leap day comes last).
std::int64_t days_from_civil(std::int64_t year, unsigned month, unsigned day) {
  year -= month <= 2 ? 1 : 0;
  const std::int64_t era = (year >= 0 ? year : year - 399) / 400;
  const auto year_of_era = static_cast<unsigned>(year - era * 400);
  const unsigned day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const unsigned day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + static_cast<std::int64_t>(day_of_era) - 719468;
}

// Reads `digits` decimal digits at `at`, moving past them.
std::optional<unsigned> digits_at(std::string_view text, std::size_t& at, std::size_t digits) {
  if (text.size() < at + digits)
    return std::nullopt;
  auto value = whole<unsigned>(text.substr(at, digits));
  if (value)
    at += digits;
  return value;
}

// "2026-12-06 16:26:05.123456+05:30" (ISO DateStyle) as microseconds since the epoch, UTC.
std::optional<std::int64_t> iso_timestamptz(std::string_view text) {
  const auto dash = text.find('-', 1);
  if (dash == std::string_view::npos || dash < 4)
    return std::nullopt;
  auto year = whole<std::int64_t>(text.substr(0, dash));
  std::size_t at = dash + 1;
  auto month = digits_at(text, at, 2);
  if (!year || !month || at >= text.size() || text[at++] != '-')
    return std::nullopt;
  auto day = digits_at(text, at, 2);
  if (!day || at >= text.size() || text[at++] != ' ')
    return std::nullopt;
  auto hour = digits_at(text, at, 2);
  if (!hour || at >= text.size() || text[at++] != ':')
    return std::nullopt;
  auto minute = digits_at(text, at, 2);
  if (!minute || at >= text.size() || text[at++] != ':')
    return std::nullopt;
  auto second = digits_at(text, at, 2);
  if (!second || *month < 1 || *month > 12 || *day < 1 || *day > 31)
    return std::nullopt;
  std::int64_t micros = 0;
  if (at < text.size() && text[at] == '.') {
    ++at;
    int places = 0;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9' && places < 6) {
      micros = micros * 10 + (text[at++] - '0');
      ++places;
    }
    if (places == 0)
      return std::nullopt;
    for (; places < 6; ++places)
      micros *= 10;
  }
  if (at >= text.size() || (text[at] != '+' && text[at] != '-'))
    return std::nullopt;
  const int sign = text[at++] == '-' ? -1 : 1;
  auto offset_hours = digits_at(text, at, 2);
  if (!offset_hours)
    return std::nullopt;
  unsigned offset_minutes = 0, offset_seconds = 0;
  if (at < text.size() && text[at] == ':') {
    ++at;
    auto read = digits_at(text, at, 2);
    if (!read)
      return std::nullopt;
    offset_minutes = *read;
    if (at < text.size() && text[at] == ':') {
      ++at;
      read = digits_at(text, at, 2);
      if (!read)
        return std::nullopt;
      offset_seconds = *read;
    }
  }
  if (at != text.size())
    return std::nullopt;  // " BC", or not ISO
  const std::int64_t local_seconds =
      days_from_civil(*year, *month, *day) * 86400 + *hour * 3600 + *minute * 60 + *second;
  const std::int64_t offset =
      sign *
      static_cast<std::int64_t>(offset_hours.value() * 3600 + offset_minutes * 60 + offset_seconds);
  return (local_seconds - offset) * 1000000 + micros;
}

[[noreturn]] void cannot_convert(std::size_t column, const char* name, std::string_view type,
                                 std::string_view value, const std::string& fix) {
  const std::string shown =
      value.size() > 40 ? std::string{value.substr(0, 40)} + "..." : std::string{value};
  throw usage_error("column " + std::to_string(column) + " (\"" + name + "\", " +
                        std::string{type} + ") holds '" + shown + "', which " + fix,
                    "read it with get() as text");
}

}  // namespace

std::optional<std::string_view> row_view::typed(std::size_t column, const char* wanted,
                                                std::initializer_list<std::uint32_t> types) const {
  check(column);
  const int index = static_cast<int>(column);
  const auto oid = static_cast<std::uint32_t>(PQftype(m_result, index));
  bool accepted = false;
  for (auto type : types)
    accepted = accepted || type == oid;
  if (!accepted) {
    throw usage_error("column " + std::to_string(column) + " (\"" + PQfname(m_result, index) +
                          "\") is " + type_name(oid) + ", which " + wanted + " does not read",
                      "cast it in SQL to a type " + std::string{wanted} +
                          " reads, or read it with get() as text");
  }
  if (PQfformat(m_result, index) != 0) {
    throw usage_error("column " + std::to_string(column) + " is in binary format",
                      "the typed reads take the text format, which stream_query delivers");
  }
  return get(column);
}

std::optional<std::int32_t> row_view::get_int32(std::size_t column) const {
  auto text = typed(column, "get_int32", {k_int2, k_int4});
  if (!text)
    return std::nullopt;
  auto value = whole<std::int32_t>(*text);
  if (!value)
    cannot_convert(column, PQfname(m_result, static_cast<int>(column)), "int4", *text,
                   "is not a whole number");
  return value;
}

std::optional<std::int64_t> row_view::get_int64(std::size_t column) const {
  auto text = typed(column, "get_int64", {k_int2, k_int4, k_int8});
  if (!text)
    return std::nullopt;
  auto value = whole<std::int64_t>(*text);
  if (!value)
    cannot_convert(column, PQfname(m_result, static_cast<int>(column)), "int8", *text,
                   "is not a whole number");
  return value;
}

std::optional<double> row_view::get_double(std::size_t column) const {
  auto text = typed(column, "get_double", {k_float4, k_float8, k_numeric});
  if (!text)
    return std::nullopt;
  if (*text == "NaN")
    return std::numeric_limits<double>::quiet_NaN();
  if (*text == "Infinity")
    return std::numeric_limits<double>::infinity();
  if (*text == "-Infinity")
    return -std::numeric_limits<double>::infinity();
  double value = 0;
  auto [end, failure] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (failure != std::errc{} || end != text->data() + text->size()) {
    cannot_convert(column, PQfname(m_result, static_cast<int>(column)), "a floating type", *text,
                   "does not fit a double");
  }
  return value;
}

std::optional<bool> row_view::get_bool(std::size_t column) const {
  auto text = typed(column, "get_bool", {k_bool});
  if (!text)
    return std::nullopt;
  return *text == "t";
}

std::optional<std::string> row_view::get_bytes(std::size_t column) const {
  auto text = typed(column, "get_bytes", {k_bytea});
  if (!text)
    return std::nullopt;
  if (text->size() % 2 != 0 || text->substr(0, 2) != "\\x") {
    cannot_convert(column, PQfname(m_result, static_cast<int>(column)), "bytea", *text,
                   "is not in the hex format: set bytea_output to 'hex'");
  }
  std::string bytes;
  bytes.reserve(text->size() / 2 - 1);
  for (std::size_t i = 2; i < text->size(); i += 2) {
    const int high = hex_digit((*text)[i]);
    const int low = hex_digit((*text)[i + 1]);
    if (high < 0 || low < 0) {
      cannot_convert(column, PQfname(m_result, static_cast<int>(column)), "bytea", *text,
                     "is not in the hex format");
    }
    bytes.push_back(static_cast<char>(high * 16 + low));
  }
  return bytes;
}

std::optional<std::chrono::system_clock::time_point> row_view::get_time(std::size_t column) const {
  auto text = typed(column, "get_time", {k_timestamptz});
  if (!text)
    return std::nullopt;
  auto micros = iso_timestamptz(*text);
  if (!micros) {
    cannot_convert(column, PQfname(m_result, static_cast<int>(column)), "timestamptz", *text,
                   "is not a finite time in ISO DateStyle (SET DateStyle = ISO; infinity and BC "
                   "dates have no time_point)");
  }
  return std::chrono::system_clock::time_point{
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::microseconds{*micros})};
}

std::optional<std::string_view> row_view::get_uuid(std::size_t column) const {
  return typed(column, "get_uuid", {k_uuid});
}

}  // namespace pgkit
