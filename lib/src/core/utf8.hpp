#pragma once
// The one UTF-8 check: text that will be sent to the server as text (a channel, a payload, a
// resource type) is refused as a usage error before anything is sent, instead of failing on
// the server with an encoding error.

#include <cstddef>
#include <string>
#include <string_view>

#include "pgkit/error.hpp"

namespace pgkit {

/// Returns the offset of the first byte of `text` that is not part of a well-formed UTF-8
/// sequence (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), or
/// std::string_view::npos when all of it is well formed.
inline std::size_t invalid_utf8_offset(std::string_view text) noexcept {
  std::size_t i = 0;
  while (i < text.size()) {
    auto lead = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    unsigned char low = 0x80;   // the range of the second byte, which rules out overlong forms,
    unsigned char high = 0xBF;  // surrogates and code points past U+10FFFF
    if (lead < 0x80) {
      ++i;
      continue;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      low = lead == 0xE0 ? 0xA0 : 0x80;
      high = lead == 0xED ? 0x9F : 0xBF;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      low = lead == 0xF0 ? 0x90 : 0x80;
      high = lead == 0xF4 ? 0x8F : 0xBF;
    } else {
      return i;
    }
    if (i + length > text.size())
      return i;
    for (std::size_t k = 1; k < length; ++k) {
      auto byte = static_cast<unsigned char>(text[i + k]);
      if (byte < (k == 1 ? low : 0x80) || byte > (k == 1 ? high : 0xBF))
        return i;
    }
    i += length;
  }
  return std::string_view::npos;
}

/// Throws usage_error saying that `what` (e.g. "the payload") is not valid UTF-8 and where,
/// unless `text` is well-formed UTF-8.
inline void check_utf8(std::string_view what, std::string_view text) {
  auto offset = invalid_utf8_offset(text);
  if (offset == std::string_view::npos)
    return;
  static const char digits[] = "0123456789abcdef";
  auto byte = static_cast<unsigned char>(text[offset]);
  std::string hex{"0x"};
  hex += digits[byte >> 4];
  hex += digits[byte & 0xF];
  throw usage_error(std::string{what} + " is not valid UTF-8 (byte " + hex + " at offset " +
                        std::to_string(offset) + ")",
                    "PostgreSQL takes text in UTF-8; convert it first (iconv -t UTF-8)");
}

}  // namespace pgkit
