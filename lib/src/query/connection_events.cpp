#include "query/connection_events.hpp"

#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/notices.hpp"
#include "core/pqxx_compat.hpp"
#include "core/text.hpp"
#include "pgkit/query.hpp"
#include "wire/wire.hpp"

namespace pgkit {
namespace {

// The callbacks kept for one connection (see listening_of).
struct listening {
  int backend_pid = 0;
  std::vector<std::pair<std::string, notification_callback>> callbacks;
};

// Where close() is for one connection, and who waits for its end.
struct ending {
  bool closing = false;
  bool closed = false;
  int waiters = 0;
};

std::mutex g_mutex;
std::condition_variable g_closed;
std::unordered_map<pg_conn*, listening> g_listening;
std::unordered_map<pg_conn*, ending> g_ending;
// The server's last words to a connection that status() found failed (libpq keeps only its
// own "server closed the connection unexpectedly"), until close().
// Kept with the backend's process id: another connection at the same address starts afresh.
std::unordered_map<pg_conn*, std::pair<int, std::string>> g_farewells;
std::atomic<bool> g_any_listening{false};

// The callbacks kept for `handle` (g_mutex held), or nullptr. An entry of another backend at
// this address was left by a connection destroyed without close(): it is dropped, not this
// connection's.
listening* listening_of(pg_conn* handle) {
  auto found = g_listening.find(handle);
  if (found == g_listening.end())
    return nullptr;
  if (found->second.backend_pid != PQbackendPID(handle)) {
    g_listening.erase(found);
    return nullptr;
  }
  return &found->second;
}

// Leaves g_ending[handle] once nobody needs the entry.
void release_ending(pg_conn* handle) {
  auto found = g_ending.find(handle);
  if (found != g_ending.end() && found->second.waiters == 0 &&
      (found->second.closed || !found->second.closing)) {
    g_ending.erase(found);
  }
}

std::uint32_t read_length(const char* at) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(at);
  return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) |
         (std::uint32_t{bytes[2]} << 8) | std::uint32_t{bytes[3]};
}

// Why a connection whose server hung up ended: the primary message of the ErrorResponse the
// server sent last, read without taking it from the socket (libpq may still read it), else
// the socket's error. TLS hides the message: the general words remain.
std::string end_reason(int fd) {
  char buffer[8192];
  const auto got = ::recv(fd, buffer, sizeof buffer, MSG_PEEK | MSG_DONTWAIT);
  std::size_t at = 0;
  while (got > 0 && at + 5 <= static_cast<std::size_t>(got)) {
    const std::size_t length = read_length(buffer + at + 1);
    if (length < 4 || at + 1 + length > static_cast<std::size_t>(got))
      break;
    if (buffer[at] == 'E') {
      // Fields: a code byte and a NUL-terminated string each, ended by a zero byte.
      std::size_t field = at + 5;
      const std::size_t end = at + 1 + length;
      while (field < end && buffer[field] != '\0') {
        const char code = buffer[field];
        const char* text = buffer + field + 1;
        const std::size_t text_length = ::strnlen(text, end - field - 1);
        if (code == 'M')
          return "the server ended the session: " + std::string{text, text_length};
        field += text_length + 2;
      }
      break;
    }
    at += 1 + length;
  }
  int problem = 0;
  socklen_t size = sizeof problem;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &problem, &size) == 0 && problem != 0)
    return "the connection was lost: " + std::string{std::strerror(problem)};
  return "the server closed the connection";
}

// The status of a connection libpq found broken; g_mutex is held.
connection_status failed_status(pg_conn* handle) {
  connection_status failed;
  failed.state = connection_state::failed;
  // A FATAL that arrived while no statement ran reached the notice routing on this thread.
  std::string farewell = detail::take_server_farewell();
  auto& [backend, kept] = g_farewells[handle];
  if (backend != PQbackendPID(handle))
    kept.clear();
  backend = PQbackendPID(handle);
  if (!farewell.empty())
    kept = "the server ended the session: " + farewell;
  failed.error = kept.empty() ? detail::trimmed(PQerrorMessage(handle)) : kept;
  if (failed.error.empty())
    failed.error = "the connection to the server was lost";
  failed.resources_released = PQsocket(handle) < 0;
  return failed;
}

// Milliseconds until `deadline` for poll(), -1 without one.
int poll_timeout(const detail::stop_control& control) {
  if (!control.deadline)
    return -1;
  auto left =
      std::chrono::ceil<std::chrono::milliseconds>(*control.deadline - detail::steady_clock::now());
  return static_cast<int>(std::clamp<long long>(left.count(), 0, 24 * 3600 * 1000));
}

}  // namespace

namespace detail {

std::size_t dispatch_notifications(pg_conn* handle) {
  if (handle == nullptr || !g_any_listening.load(std::memory_order_acquire))
    return 0;
  {
    std::lock_guard<std::mutex> lock{g_mutex};
    if (listening_of(handle) == nullptr)
      return 0;
  }
  std::size_t taken = 0;
  while (PGnotify* raw = PQnotifies(handle)) {
    std::string channel = raw->relname;
    std::string payload = raw->extra;
    const int sender = raw->be_pid;
    PQfreemem(raw);
    ++taken;
    std::vector<notification_callback> matching;
    {
      std::lock_guard<std::mutex> lock{g_mutex};
      const auto* kept = listening_of(handle);
      if (kept == nullptr)
        continue;
      for (const auto& [name, callback] : kept->callbacks) {
        if (name == channel)
          matching.push_back(callback);
      }
    }
    for (const auto& callback : matching)
      callback(sender, payload);
  }
  return taken;
}

}  // namespace detail

connection_status status(const pqxx::connection& conn) {
  // Held throughout: a close() on another thread marks the connection closing under this lock
  // before it frees anything, so the connection is either closing or not freed while read.
  std::lock_guard<std::mutex> lock{g_mutex};
  PGconn* handle = detail::libpq_handle(conn);
  if (handle == nullptr)
    return {connection_state::closed, {}, true};
  auto closing = g_ending.find(handle);
  if (closing != g_ending.end() && closing->second.closing)
    return {connection_state::closing, {}, false};
  if (PQstatus(handle) != CONNECTION_OK)
    return failed_status(handle);
  if (PQisBusy(handle) != 0 || PQtransactionStatus(handle) == PQTRANS_ACTIVE)
    return {connection_state::busy, {}, false};
  // What the server sent while the connection sat idle: a termination notice and the end of
  // the stream mark it failed. Reading never blocks (libpq's socket is non-blocking).
  pollfd readable{PQsocket(handle), POLLIN, 0};
  if (readable.fd >= 0 && ::poll(&readable, 1, 0) > 0) {
    PQconsumeInput(handle);
    if (PQstatus(handle) != CONNECTION_OK)
      return failed_status(handle);
  }
  return {connection_state::open, {}, false};
}

void close(pqxx::connection& conn) noexcept {
  pg_conn* handle = detail::libpq_handle(conn);
  if (handle == nullptr)
    return;
  try {
    std::lock_guard<std::mutex> lock{g_mutex};
    g_listening.erase(handle);
    g_farewells.erase(handle);
    g_ending[handle].closing = true;
  } catch (...) {
    // Out of memory: close_finished then reports the end as the server's hang-up.
  }
  detail::close(conn);
  std::lock_guard<std::mutex> lock{g_mutex};
  auto found = g_ending.find(handle);
  if (found != g_ending.end()) {
    found->second.closed = true;
    release_ending(handle);
  }
  g_closed.notify_all();
}

std::optional<connection_end> close_finished(const pqxx::connection& conn,
                                             const query_options& options) {
  const auto control = detail::stop_control::from(options);
  pg_conn* handle = nullptr;
  struct leave {
    pg_conn* handle;
    ~leave() {
      std::lock_guard<std::mutex> lock{g_mutex};
      --g_ending[handle].waiters;
      release_ending(handle);
    }
  };
  // Waits for a close() that has begun; false when none has.
  auto closed_by_close = [&](std::unique_lock<std::mutex>& lock) -> bool {
    auto& entry = g_ending[handle];
    if (!entry.closing)
      return false;
    g_closed.wait(lock, [&] { return entry.closed; });
    return true;
  };
  int fd = -1;
  {
    // Under the lock a close() on another thread cannot free the connection meanwhile.
    std::unique_lock<std::mutex> lock{g_mutex};
    handle = detail::libpq_handle(conn);
    if (handle == nullptr)
      return connection_end{true, {}};
    auto& entry = g_ending[handle];
    ++entry.waiters;
    if (closed_by_close(lock) || PQstatus(handle) != CONNECTION_OK || PQsocket(handle) < 0) {
      const bool graceful = entry.closing;
      auto reason = graceful ? std::string{} : failed_status(handle).error;
      --entry.waiters;
      release_ending(handle);
      return connection_end{graceful, reason};
    }
    // A duplicate of libpq's socket: it stays open when libpq closes its own, so the hang-up
    // is seen either way, and polling it reads nothing libpq would read.
    fd = ::fcntl(PQsocket(handle), F_DUPFD_CLOEXEC, 0);
  }
  leave leaving{handle};
  if (fd < 0)
    throw error(error_kind::internal, "waiting for the connection's end: no file descriptor left");
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } closing{fd};
  for (;;) {
    pollfd waits[2] = {{fd, POLLRDHUP, 0}, {-1, POLLIN, 0}};
    if (control.stop != nullptr)
      waits[1].fd = control.stop->wait_handle();
    if (control.expired())
      return std::nullopt;
    const int ready = ::poll(waits, 2, poll_timeout(control));
    if (ready < 0 && errno != EINTR)
      throw error(error_kind::internal,
                  "waiting for the connection's end: " + std::string{std::strerror(errno)});
    if (ready > 0 && waits[0].revents != 0)
      break;
  }
  std::unique_lock<std::mutex> lock{g_mutex};
  if (closed_by_close(lock))
    return connection_end{true, {}};
  return connection_end{false, end_reason(fd)};
}

void listen_to_notifications(pqxx::connection& conn, std::string_view channel,
                             notification_callback callback, const query_options& options) {
  if (channel.empty())
    throw usage_error("listen_to_notifications: the channel name is empty",
                      "give the channel name NOTIFY sends on");
  if (!callback)
    throw usage_error("listen_to_notifications: the callback is empty",
                      "give a function to call with each notification");
  const auto on = detail::wire::of(conn);
  const std::string quoted = detail::quote_identifier(channel);
  on.run("LISTEN " + quoted, {}, detail::result_format::text, "listening on " + quoted,
         detail::stop_control::from(options));
  std::lock_guard<std::mutex> lock{g_mutex};
  auto* entry = listening_of(on.handle());
  if (entry == nullptr)
    entry = &(g_listening[on.handle()] = listening{PQbackendPID(on.handle()), {}});
  entry->callbacks.emplace_back(std::string{channel}, std::move(callback));
  g_any_listening.store(true, std::memory_order_release);
}

std::size_t wait_for_notifications(pqxx::connection& conn, const query_options& options) {
  const std::string context = "waiting for notifications";
  const auto control = detail::stop_control::from(options);
  pg_conn* handle = detail::libpq_handle(conn);
  if (handle == nullptr) {
    throw usage_error(context + ": the connection was closed (pgkit::close)",
                      "open a new connection (pgkit::connect)");
  }
  {
    std::lock_guard<std::mutex> lock{g_mutex};
    if (listening_of(handle) == nullptr) {
      throw usage_error(context + ": no callbacks are kept for this connection",
                        "call listen_to_notifications first");
    }
  }
  for (;;) {
    if (PQstatus(handle) != CONNECTION_OK)
      throw detail::connection_lost_error(context, detail::trimmed(PQerrorMessage(handle)));
    if (PQisBusy(handle) != 0 || PQtransactionStatus(handle) == PQTRANS_ACTIVE) {
      throw usage_error(context + ": a statement or COPY is still running on the connection",
                        "wait after the statement has finished, or use a pgkit::listener");
    }
    if (auto taken = detail::dispatch_notifications(handle))
      return taken;
    if (control.expired())
      return 0;
    pollfd waits[2] = {{PQsocket(handle), POLLIN, 0}, {-1, POLLIN, 0}};
    if (control.stop != nullptr)
      waits[1].fd = control.stop->wait_handle();
    const int ready = ::poll(waits, 2, poll_timeout(control));
    if (ready < 0 && errno != EINTR)
      throw error(error_kind::internal, context + ": " + std::strerror(errno));
    if (ready > 0 && waits[0].revents != 0)
      PQconsumeInput(handle);
  }
}

}  // namespace pgkit
