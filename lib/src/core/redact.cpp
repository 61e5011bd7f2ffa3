#include "pgkit/redact.hpp"

#include <cctype>

namespace pgkit {
namespace {

bool starts_with_nocase(std::string_view text, std::size_t at, std::string_view prefix) {
  if (text.size() - at < prefix.size())
    return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    auto a = static_cast<unsigned char>(text[at + i]);
    if (std::tolower(a) != static_cast<unsigned char>(prefix[i]))
      return false;
  }
  return true;
}

bool ends_authority(char c) {
  return c == '/' || c == '?' || c == '#' || c == '"' || c == '\'' || c == '`' || c == '<' ||
         c == '>' || std::isspace(static_cast<unsigned char>(c)) != 0;
}

// Copies a URL's authority with the password part of its user info masked.
std::size_t copy_authority(std::string_view text, std::size_t from, std::string& out) {
  std::size_t end = from;
  while (end < text.size() && !ends_authority(text[end]))
    ++end;
  std::string_view authority = text.substr(from, end - from);
  auto at = authority.rfind('@');
  if (at == std::string_view::npos) {
    out += authority;
    return end;
  }
  std::string_view user_info = authority.substr(0, at);
  auto colon = user_info.find(':');
  if (colon == std::string_view::npos) {
    out += authority;
  } else {
    out += user_info.substr(0, colon + 1);
    out += "***";
    out += authority.substr(at);
  }
  return end;
}

// Skips a conninfo or query-string value that starts at `from`; returns where it ends.
std::size_t skip_value(std::string_view text, std::size_t from) {
  if (from < text.size() && text[from] == '\'') {
    std::size_t i = from + 1;
    while (i < text.size() && text[i] != '\'') {
      i += (text[i] == '\\' && i + 1 < text.size()) ? std::size_t{2} : std::size_t{1};
    }
    return i < text.size() ? i + 1 : i;
  }
  std::size_t i = from;
  while (i < text.size() && text[i] != '&' && text[i] != '"' && text[i] != '#' &&
         std::isspace(static_cast<unsigned char>(text[i])) == 0) {
    ++i;
  }
  return i;
}

}  // namespace

std::string redact_secrets(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    if (starts_with_nocase(text, i, "postgresql://") ||
        starts_with_nocase(text, i, "postgres://")) {
      auto scheme_end = text.find("://", i) + 3;
      out += text.substr(i, scheme_end - i);
      i = copy_authority(text, scheme_end, out);
      continue;
    }
    bool at_word_start = i == 0 || !(std::isalnum(static_cast<unsigned char>(text[i - 1])) != 0 ||
                                     text[i - 1] == '_');
    if (at_word_start && starts_with_nocase(text, i, "password")) {
      std::size_t j = i + 8;
      while (j < text.size() && text[j] == ' ')
        ++j;
      if (j < text.size() && text[j] == '=') {
        ++j;
        while (j < text.size() && text[j] == ' ')
          ++j;
        out += text.substr(i, j - i);
        out += "***";
        i = skip_value(text, j);
        continue;
      }
    }
    out += text[i];
    ++i;
  }
  return out;
}

}  // namespace pgkit
