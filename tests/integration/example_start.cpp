#include <iostream>
#include <string_view>

#include <pgkit/pgkit.hpp>
#include <pqxx/pqxx>

int main() {
  try {
    // Reads ./database.toml (else ./config/database.toml), connection "main", and opens it.
    std::shared_ptr<pgkit::pool> pool = pgkit::start("main");

    // A transaction retried on serialization failure or deadlock.
    auto greeting = pgkit::run_transaction(*pool, [](pqxx::work& tx) {
      return tx.exec("SELECT 'hello from ' || current_database()")[0][0].as<std::string>();
    });
    std::cout << greeting << '\n';

    // A connection of your own for a while; it goes back to the pool at the end of the scope.
    pgkit::lease lease = pool->acquire(std::chrono::seconds{2});
    pqxx::work tx{*lease};
    std::cout << "pool of " << pool->config().pool_size << ", server "
              << tx.exec("SHOW server_version_num")[0][0].as<int>() / 10000 << '\n';
    tx.commit();
  } catch (const pgkit::error& e) {
    std::cerr << "app: " << e.what() << '\n';
    // pgkit::start's errors end with their hint already (so that one left uncaught shows it).
    if (!e.hint().empty() && std::string_view{e.what()}.find(e.hint()) == std::string_view::npos)
      std::cerr << "app: hint: " << e.hint() << '\n';
    return 1;
  }
}
