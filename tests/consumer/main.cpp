// Connects to the URL given as the only argument and prints what the server says.
#include <iostream>

#include <pgkit/pgkit.hpp>
#include <pqxx/pqxx>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: consumer URL\n";
    return 2;
  }
  try {
    auto connection = pgkit::connect(argv[1]);
    pqxx::nontransaction tx{*connection};
    std::cout << "pgkit " << pgkit::version() << " says "
              << tx.exec("SELECT 'hello from ' || current_database()")[0][0].c_str() << '\n';
  } catch (const pgkit::error& e) {
    std::cerr << "consumer: " << e.what() << '\n';
    return 1;
  }
}
