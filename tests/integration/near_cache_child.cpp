// The second process of the near cache's tests: a pgkit::cache_store with the near tier on, driven
// line by line on stdin, answering on stdout; the tier's events go to stderr.
//   near_cache_child URL [MAX_ENTRIES]
// Commands: "get TYPE KEY" -> "hit VALUE" | "miss" | "error MESSAGE"; "set TYPE KEY VALUE" -> "ok";
// "stats" -> "hits H misses M invalidations I flushes F entries E bytes B".

#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "pgkit/cache.hpp"
#include "pgkit/config.hpp"
#include "pgkit/pool.hpp"

namespace {

const char* kind_name(pgkit::near_event::kind kind) {
  switch (kind) {
    case pgkit::near_event::kind::flushed:
      return "flushed";
    case pgkit::near_event::kind::listener_lost:
      return "listener_lost";
    case pgkit::near_event::kind::listener_back:
      return "listener_back";
  }
  return "unknown";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: near_cache_child URL [MAX_ENTRIES]\n";
    return 2;
  }
  try {
    auto config = pgkit::config_from_url(argv[1], "child");
    config.pool_size = 2;
    auto connections = std::make_shared<pgkit::pool>(config);
    pgkit::cache_options options;
    options.near.emplace();
    if (argc > 2)
      options.near->max_entries = std::stoul(argv[2]);
    options.near->on_event = [](const pgkit::near_event& event) {
      std::fprintf(stderr, "event %s: %s\n", kind_name(event.what), event.reason.c_str());
      std::fflush(stderr);
    };
    pgkit::cache_store store{connections, options};
    std::cout << "ready" << std::endl;
    std::string line;
    while (std::getline(std::cin, line)) {
      std::istringstream words{line};
      std::string command, type, key, value;
      words >> command >> type >> key >> value;
      if (command == "get") {
        try {
          auto found = store.get(type, key);
          std::cout << (found ? "hit " + *found : std::string{"miss"}) << std::endl;
        } catch (const pgkit::error& e) {
          // A pooled connection broken by a server restart fails once; the test asks again.
          std::cout << "error " << e.what() << std::endl;
        }
      } else if (command == "set") {
        store.set(type, key, value);
        std::cout << "ok" << std::endl;
      } else if (command == "stats") {
        auto stats = store.near_statistics();
        std::cout << "hits " << stats.hits << " misses " << stats.misses << " invalidations "
                  << stats.invalidations << " flushes " << stats.flushes << " entries "
                  << stats.entries << " bytes " << stats.bytes << std::endl;
      } else {
        std::cout << "unknown command" << std::endl;
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "near_cache_child: " << e.what() << '\n';
    return 1;
  }
}
