// `${VAR}` and `${VAR:-fallback}` expansion of configuration values, and the env_lookup that
// reads the process environment. Both are declared in pgkit/config.hpp.

#include "pgkit/config.hpp"

#include <cctype>
#include <cstdlib>

#include "pgkit/error.hpp"

namespace pgkit {

env_lookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    if (const char* value = std::getenv(name.c_str()); value != nullptr)
      return std::string{value};
    return std::nullopt;
  };
}

std::string expand_variables(std::string_view text, const env_lookup& env, std::string_view what) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      out += text[i++];
      continue;
    }
    auto close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      throw config_error(std::string{what} + " has a '${' without a closing '}'",
                         "write ${NAME} or ${NAME:-fallback}, or $${ for a literal ${");
    }
    std::string_view inner = text.substr(i + 2, close - i - 2);
    std::optional<std::string_view> fallback;
    auto separator = inner.find(":-");
    std::string name{inner.substr(0, separator)};
    if (separator != std::string_view::npos)
      fallback = inner.substr(separator + 2);
    bool valid_name = !name.empty() && std::isdigit(static_cast<unsigned char>(name[0])) == 0;
    for (char c : name) {
      if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '_')
        valid_name = false;
    }
    if (!valid_name) {
      // The text is not quoted: it may be part of a password ("S3c${r3t PW}x").
      throw config_error(std::string{what} + " has a '${' at character " + std::to_string(i + 1) +
                             " that is not followed by a variable name and '}'",
                         "write ${NAME} or ${NAME:-fallback}, or $${ for a literal ${");
    }
    std::optional<std::string> value = env ? env(name) : std::nullopt;
    if (value && !value->empty()) {
      out += *value;
    } else if (fallback) {
      out += *fallback;
    } else if (value) {
      out += *value;  // set but empty, and no fallback: the empty value
    } else {
      throw config_error(std::string{what} + " uses ${" + name + "}, but " + name + " is not set",
                         "set " + name + " in the environment, or write ${" + name + ":-fallback}");
    }
    i = close + 1;
  }
  return out;
}

}  // namespace pgkit
