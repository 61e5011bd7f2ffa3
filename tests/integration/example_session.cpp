#include <iostream>

#include <pgkit/pgkit.hpp>

int main() {
  try {
    // The session module must be applied: pgkit apply session
    pgkit::session_store sessions{pgkit::start("main")};

    // At sign-in: the key goes into the cookie; the table holds only its SHA-256 digest.
    std::string key = sessions.generate(R"({"user": 42})");  // expires in a week

    // On a request: std::nullopt when the key is unknown, malformed or expired.
    if (auto session = sessions.get(key)) {
      auto hours = std::chrono::duration_cast<std::chrono::hours>(session->remaining);
      std::cout << session->data << ", " << hours.count() << " h left\n";
      sessions.touch(key);  // slides the expiry; writes at most once a minute

      // A write that must not silently overwrite another request's write.
      auto written = sessions.compare_and_set(key, session->version, R"({"user": 42, "cart": 3})");
      std::cout << (written == pgkit::set_result::updated ? "saved" : "changed meanwhile") << '\n';
    }

    // At sign-out.
    sessions.clear(key);
    std::cout << (sessions.get(key) ? "still signed in" : "signed out") << '\n';

    // What `pgkit session-purge` does from cron.
    pgkit::sweep_result swept = sessions.sweep();
    std::cout << "swept " << swept.rows("session") << " expired sessions\n";
  } catch (const pgkit::error& e) {
    std::cerr << "app: " << e.what() << '\n';
    if (!e.hint().empty())
      std::cerr << "app: hint: " << e.hint() << '\n';
    return 1;
  }
}
