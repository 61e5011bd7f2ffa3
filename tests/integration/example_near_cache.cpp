#include <chrono>
#include <iostream>

#include <pgkit/pgkit.hpp>

int main() {
  using namespace std::chrono_literals;
  try {
    // A near tier of up to 10 000 entries (and 64 MiB) in this process, in front of the table.
    pgkit::cache_options options;
    options.near.emplace();
    options.near->max_entries = 10000;
    options.near->on_event = [](const pgkit::near_event& event) {
      if (event.what == pgkit::near_event::kind::flushed)
        std::cerr << "app: near cache flushed: " << event.reason << '\n';
    };
    pgkit::cache_store store{pgkit::start("main"), options};

    store.set("user", "42", "Ada", 1h);
    std::cout << store.get("user", "42").value_or("(miss)") << '\n';  // from the table
    std::cout << store.get("user", "42").value_or("(miss)") << '\n';  // from this process

    // A committed write, from any process or from plain SQL, drops every process's copy.
    store.set("user", "42", "Grace", 1h);
    std::cout << store.get("user", "42").value_or("(miss)") << '\n';

    pgkit::near_stats stats = store.near_statistics();
    std::cout << "near hits " << stats.hits << ", misses " << stats.misses << '\n';
  } catch (const pgkit::error& e) {
    std::cerr << "app: " << e.what() << '\n';
    if (!e.hint().empty())
      std::cerr << "app: hint: " << e.hint() << '\n';
    return 1;
  }
}
