// database.toml reader: any text gives a parsed file or a pgkit::error, never a crash, a hang
// or another exception; and a parsed connection can always be described and turned into a
// conninfo string (or refused with a pgkit::error).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "pgkit/config.hpp"
#include "pgkit/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text{reinterpret_cast<const char*>(data), size};
  auto env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "SET")
      return std::string{"value"};
    return std::nullopt;
  };
  try {
    auto file = pgkit::parse_config(text, "database.toml", env);
    for (const auto& name : file.names()) {
      const auto& connection = file.connection(name);
      connection.describe();
      connection.conninfo();
    }
  } catch (const pgkit::error&) {
    // Refusing bad input with a pgkit::error is the expected outcome.
  }
  return 0;
}
