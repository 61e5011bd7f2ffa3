// A pool destroyed while its maintenance thread is inside connect() detaches that thread, which
// may still parse connection settings while the process exits, after static destructors ran.
// This program does that on purpose: its atexit handler, registered before the library built
// any of its tables, parses a URL once they would have been destroyed. Under AddressSanitizer
// (the asan suite) a table that does not outlive them is a heap-use-after-free and fails it.

#include <cstdio>
#include <cstdlib>
#include <string>

#include "pgkit/config.hpp"

namespace {

const char* const k_url = "postgresql://app@127.0.0.1:5432/app?sslmode=disable&connect_timeout=5";

void parse_after_static_destructors() {
  try {
    auto config = pgkit::config_from_url(k_url, "exit");
    if (config.conninfo().find("sslmode") == std::string::npos) {
      std::fputs("exit_order: the parsed settings lost sslmode\n", stderr);
      std::_Exit(1);
    }
  } catch (...) {
    std::fputs("exit_order: parsing failed at exit\n", stderr);
    std::_Exit(1);
  }
}

}  // namespace

int main() {
  // Handlers run in reverse order of registration, interleaved with static destructors: this
  // one runs after the destructors of everything constructed below.
  std::atexit(parse_after_static_destructors);
  auto config = pgkit::config_from_url(k_url, "exit");
  return config.conninfo().empty() ? 1 : 0;
}
