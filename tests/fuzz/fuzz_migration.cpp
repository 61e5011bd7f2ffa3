// Migration file parser: any text (and any file name, taken from the first line) gives a
// migration or a pgkit::error, never a crash, a hang or another exception.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "pgkit/error.hpp"
#include "pgkit/migration.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input{reinterpret_cast<const char*>(data), size};
  std::string file_name = "20260101000000_fuzz.sql";
  std::string_view text = input;
  // An input starting with "name:" chooses the file name too.
  if (input.substr(0, 5) == "name:") {
    auto end = input.find('\n');
    file_name = std::string{input.substr(5, end == std::string_view::npos ? end : end - 5)};
    text = end == std::string_view::npos ? std::string_view{} : input.substr(end + 1);
  }
  try {
    auto parsed = pgkit::parse_migration("fuzz", file_name, text, "fuzz/" + file_name);
    if (parsed.version.size() != 14)
      __builtin_trap();  // the contract: a parsed migration has a 14-digit version
  } catch (const pgkit::error&) {
    // Refusing a malformed file with a pgkit::error is the expected outcome.
  }
  return 0;
}
