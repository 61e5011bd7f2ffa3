#pragma once
// Small text helpers every folder uses: SQL quoting, trimming, a message's context prefix and
// the one stable hash. Each exists once; nothing here talks to a server.

#include <cstdint>
#include <string>
#include <string_view>

namespace pgkit::detail {

/// Returns `"name"` (the name must have passed validate_schema_name or be otherwise safe).
inline std::string quote_identifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    out += c;
    if (c == '"')
      out += '"';
  }
  return out + "\"";
}

/// Returns `'text'` as a standard-conforming SQL string literal.
inline std::string quote_literal(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    out += c;
    if (c == '\'')
      out += '\'';
  }
  return out + "'";
}

/// Returns `text` without trailing newlines and spaces (libpq ends its messages with one).
inline std::string trimmed(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.remove_suffix(1);
  return std::string{text};
}

/// Returns "context: message" (message trimmed), or the message alone without a context.
inline std::string with_context(std::string_view context, std::string_view message) {
  if (context.empty())
    return trimmed(message);
  return std::string{context} + ": " + trimmed(message);
}

/// 64-bit FNV-1a of `text`: stable across builds and platforms (statement names, lock keys).
inline std::uint64_t stable_hash(std::string_view text) noexcept {
  std::uint64_t hash = 14695981039346656037ULL;
  for (char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ULL;
  }
  return hash;
}

}  // namespace pgkit::detail
