#pragma once
// One connection owned by a pool, with what the pool knows about it. The statements prepared
// on it live here, so a connection that is closed and replaced starts with none.

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>

#include <pqxx/connection>

namespace pgkit::detail {

struct pooled_connection {
  using clock = std::chrono::steady_clock;

  std::unique_ptr<pqxx::connection> connection;
  /// Statement name -> SQL text, for every statement prepared on this connection.
  std::unordered_map<std::string, std::string> prepared;
  clock::time_point created;
  /// When the connection was last given back (or opened).
  clock::time_point last_used;
  /// The thread that last gave it back: acquire() prefers handing it to that thread again.
  std::thread::id last_thread;
  /// After this the connection is closed instead of reused (max_lifetime minus jitter).
  clock::time_point expires = clock::time_point::max();
};

}  // namespace pgkit::detail
