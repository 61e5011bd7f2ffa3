// URL and conninfo parser with the redaction property: a secret placed in the password field
// of a fuzzed URL or conninfo string never appears in describe() or in the text of the error
// that refuses the input. The fuzzer's bytes choose the form and fill everything around the
// password; an input whose own bytes contain the secret is skipped (it would show legitimately,
// as a host name for example).

#include <libpq-fe.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "pgkit/config.hpp"
#include "pgkit/error.hpp"

namespace {

// Two secrets: a plain one, and one with the characters that move a URL's boundaries. The
// pieces between those characters are what must never show.
constexpr std::string_view k_secrets[] = {"S3cr3tPW", "S3c/r3t@PW"};
constexpr std::string_view k_pieces[] = {"S3cr3tPW", "S3c", "r3t"};

struct options_deleter {
  void operator()(PQconninfoOption* options) const { PQconninfoFree(options); }
};

// The password libpq would use for `text`, or "".
std::string libpq_password(const std::string& text) {
  char* error = nullptr;
  std::unique_ptr<PQconninfoOption, options_deleter> options{PQconninfoParse(text.c_str(), &error)};
  PQfreemem(error);
  for (auto* option = options.get(); option != nullptr && option->keyword != nullptr; ++option) {
    if (std::string_view{option->keyword} == "password" && option->val != nullptr)
      return option->val;
  }
  return {};
}

bool contains_piece(std::string_view text) {
  for (auto piece : k_pieces) {
    if (text.find(piece) != std::string_view::npos)
      return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1)
    return 0;
  std::string_view rest{reinterpret_cast<const char*>(data) + 1, size - 1};
  if (contains_piece(rest))
    return 0;
  auto split = rest.find('\n');
  std::string before{rest.substr(0, split)};
  std::string after{split == std::string_view::npos ? std::string_view{} : rest.substr(split + 1)};
  std::string secret{k_secrets[(data[0] >> 3) & 1]};
  std::string text;
  switch (data[0] & 7) {
    case 0:
      text = "postgresql://" + before + ":" + secret + "@" + after;
      break;
    case 1:
      text = "postgres://" + before + "?password=" + secret + "&" + after;
      break;
    case 2:
      text = before + " password=" + secret + " " + after;
      break;
    case 3:
      text = before + " password='" + secret + "' " + after;
      break;
    default:
      text = before + secret + after;  // the secret anywhere: it must not show as a password
      break;
  }
  std::string shown;
  try {
    shown = pgkit::config_from_url(text, "--addr").describe();
  } catch (const pgkit::error& e) {
    shown = std::string{e.what()} + "\n" + e.hint();
  }
  // In a URL's user info or password parameter the secret is the password, or the URL is
  // refused; in a conninfo string the surrounding bytes may make it another key's value, so
  // there libpq's own reading decides.
  bool is_password = (data[0] & 7) <= 1 || contains_piece(libpq_password(text));
  if ((data[0] & 7) <= 3 && is_password && contains_piece(shown))
    std::abort();
  return 0;
}
