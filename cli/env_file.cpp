#include "env_file.hpp"

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/text.hpp"
#include "pgkit/error.hpp"

namespace pgkit::cli {
namespace {

bool is_name(const std::string& key) {
  if (key.empty() || std::isdigit(static_cast<unsigned char>(key[0])) != 0)
    return false;
  for (char c : key) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '_')
      return false;
  }
  return true;
}

config_error unclosed(const std::string& where, const char* quote) {
  return config_error(where + ": a " + std::string{quote} + " quote is not closed",
                      "close the quote on the same line");
}

// The value after `=` on line `where`.
std::string parse_value(std::string_view raw, const std::string& where) {
  const std::string text = detail::trimmed(raw);
  if (text.empty())
    return {};
  if (text[0] == '\'') {
    auto end = text.find('\'', 1);
    if (end == std::string_view::npos)
      throw unclosed(where, "single");
    return text.substr(1, end - 1);
  }
  if (text[0] == '"') {
    std::string value;
    for (std::size_t i = 1; i < text.size(); ++i) {
      char c = text[i];
      if (c == '"')
        return value;
      if (c == '\\' && i + 1 < text.size()) {
        char next = text[++i];
        value += next == 'n' ? '\n' : next;
        continue;
      }
      value += c;
    }
    throw unclosed(where, "double");
  }
  return detail::trimmed(text.substr(0, text.find(" #")));
}

}  // namespace

void load_env_file(const std::string& path) {
  namespace fs = std::filesystem;
  const bool named = !path.empty();
  const std::string file = named ? path : ".env";
  std::error_code ignored;
  if (!named && !fs::exists(file, ignored))
    return;
  if (!fs::is_regular_file(file, ignored)) {
    throw config_error(
        "cannot read env file " + file + ": " +
            (fs::exists(file, ignored) ? "it is not a regular file" : "no such file"),
        "pass --env-file a dotenv file of KEY=VALUE lines");
  }
  std::ifstream in{file, std::ios::binary};
  if (!in)
    throw config_error("cannot read env file " + file, "check its permissions");
  std::string line;
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    std::string text = detail::trimmed(line);
    if (text.empty() || text[0] == '#')
      continue;
    if (text.substr(0, 7) == "export ")
      text = detail::trimmed(text.substr(7));
    auto equals = text.find('=');
    std::string key = detail::trimmed(text.substr(0, equals));
    const auto where = file + ":" + std::to_string(number);
    if (equals == std::string::npos || !is_name(key)) {
      throw config_error(where + ": not a KEY=VALUE line",
                         "write each variable as NAME=value (NAME of letters, digits and _)");
    }
    auto value = parse_value(text.substr(equals + 1), where);
    ::setenv(key.c_str(), value.c_str(), 0);
  }
}

}  // namespace pgkit::cli
