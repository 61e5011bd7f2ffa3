#pragma once
// A PostgreSQL array literal of text elements, bound as one text parameter and cast in SQL
// (`$1::text[]`): how the stores send a list of keys or patterns in one statement.

#include <string>

namespace pgkit::detail {

/// Returns `{"a","b"}` for the items of `items`, each quoted with `"` and `\` escaped (items
/// must not contain NUL bytes).
template <typename Range>
std::string text_array(const Range& items) {
  std::string out = "{";
  bool first = true;
  for (const auto& item : items) {
    if (!first)
      out += ',';
    first = false;
    out += '"';
    for (char c : item) {
      if (c == '"' || c == '\\')
        out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

}  // namespace pgkit::detail
