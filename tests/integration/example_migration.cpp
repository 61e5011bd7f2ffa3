// migrate URL DIR: applies the cache module and the module `app` from DIR, with progress on
// stdout; Ctrl-C stops the run while it waits for the lock or between migrations.
#include <atomic>
#include <csignal>
#include <iostream>

#include <pgkit/error.hpp>
#include <pgkit/migration.hpp>

namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_interrupt(int) {
  g_stop = true;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: migrate URL DIR\n";
    return 2;
  }
  try {
    pqxx::connection connection{argv[1]};
    pgkit::migration_options options;  // schema "pgkit", lock_wait 60 s, lock_timeout 1 s
    options.modules = {"cache", "app"};
    options.migrations_dirs = {argv[2]};
    options.lock_wait = std::chrono::seconds{5};
    options.progress = [](const std::string& line) { std::cout << line << '\n'; };
    options.interrupted = [] { return g_stop.load(); };
    std::signal(SIGINT, on_interrupt);

    auto result = pgkit::apply_modules(connection, options);
    std::cout << result.applied.size() << " applied, " << result.drifted.size() << " drifted\n";
  } catch (const pgkit::error& e) {
    std::cerr << "migrate: " << e.what() << '\n';
    if (!e.hint().empty())
      std::cerr << "migrate: hint: " << e.hint() << '\n';
    return 1;
  }
}
