#include <chrono>
#include <iostream>

#include <pgkit/pgkit.hpp>

int main() {
  using namespace std::chrono_literals;
  try {
    // A pool from ./database.toml, and the cache store on it. check() fails at boot, with the
    // hint "run pgkit apply cache", when the cache module is not applied.
    pgkit::cache_store store{pgkit::start("main")};
    store.check();

    // Bytes in, bytes out (std::string holds any bytes); the ttl runs on the database clock.
    store.set("greeting", "en", "hello", 10min);
    std::cout << store.get("greeting", "en").value_or("(miss)") << '\n';

    // Computed on a miss, then served from the cache until it expires.
    std::string page = store.get_or_set("page", "/about", 5min, [] {
      return std::string{"<h1>About</h1>"};  // render the page here
    });
    std::cout << page << '\n';

    // Many keys in one round trip each way; misses are std::nullopt, in the order asked.
    store.set_many("user", {{"1", "Ada"}, {"2", "Grace"}}, 1h);
    for (const auto& name : store.get_many("user", {"1", "2", "3"}))
      std::cout << name.value_or("(miss)") << '\n';

    // An expired entry is a miss; sweep() (or `pgkit cache-gc` from cron) deletes the ones that
    // nobody reads.
    store.expire("user", "2", 0ms);
    pgkit::sweep_result swept = store.sweep();
    std::cout << "sweep deleted " << swept.deleted << " expired entry\n";
  } catch (const pgkit::error& e) {
    std::cerr << "app: " << e.what() << '\n';
    if (!e.hint().empty())
      std::cerr << "app: hint: " << e.hint() << '\n';
    return 1;
  }
}
