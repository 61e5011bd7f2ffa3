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
  /// When its current holder got it from someone else (another thread, the queue, a fresh
  /// open): the start of the slice in which the holder may take it back without queueing.
  clock::time_point slice_start;
  /// While callers queue, a connection given back within its slice waits for last_thread until
  /// then (idle, reserved); afterwards it goes to the first queued caller.
  clock::time_point reserved_until;
};

}  // namespace pgkit::detail
