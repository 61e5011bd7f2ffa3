#pragma once
/// Receiving notifications: a listener owns one dedicated connection, LISTENs on any number of
/// channels, detects a dead server with a heartbeat, reconnects by itself and says so.
/// docs/listen.md describes the guarantees in full.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pgkit/config.hpp"
#include "pgkit/query.hpp"

namespace pgkit {

class pool;

/// One delivered notification.
struct notification {
  std::string channel;  ///< the channel it was sent on, exactly as the sender named it
  std::string payload;  ///< the payload, possibly empty
  int sender_pid = 0;   ///< the backend process id of the session that sent it
  std::chrono::system_clock::time_point received_at;  ///< when the listener read it
};

/// What happened to the listener's connection.
enum class listener_event_kind {
  connection_lost,   ///< the connection broke or missed a heartbeat; reconnecting follows
  reconnect_failed,  ///< one reconnect attempt failed; the next follows after a delay
  reconnected,       ///< connected again and LISTENing on every channel: resync now
};

/// Tells the caller about the connection. Notifications sent between `connection_lost` and
/// `reconnected` are lost: a caller that must not miss anything rereads its state on
/// `reconnected`.
struct listener_event {
  listener_event_kind kind = listener_event_kind::connection_lost;
  std::string reason;    ///< why the connection or the attempt failed; empty for reconnected
  unsigned attempt = 0;  ///< which reconnect attempt failed or succeeded (0 for connection_lost)
  std::chrono::milliseconds next_attempt_in{0};  ///< reconnect_failed: delay before the next
};

/// How a listener connects, watches and reconnects.
struct listener_options {
  /// An empty query is sent after this long without one; no answer within another interval
  /// means the connection is dead. Zero turns the heartbeat off.
  std::chrono::milliseconds heartbeat_interval{std::chrono::seconds{30}};
  /// A connection attempt, and each LISTEN or UNLISTEN, fails after this long.
  std::chrono::milliseconds connect_timeout{std::chrono::seconds{10}};
  /// The delay before the second reconnect attempt (the first is immediate); it doubles per
  /// attempt up to reconnect_max_delay, and each delay is drawn from [delay / 2, delay].
  std::chrono::milliseconds reconnect_initial_delay{250};
  /// The longest delay between two reconnect attempts.
  std::chrono::milliseconds reconnect_max_delay{std::chrono::seconds{30}};
  /// After this many failed attempts in one outage, receive() throws; 0 retries forever.
  unsigned max_reconnect_attempts = 0;
  /// The pooler of the connection's configuration: pooler_mode::pgbouncer_transaction is
  /// refused, because LISTEN cannot work through a transaction-mode pooler.
  pooler_mode pooler = pooler_mode::none;
  /// SQL sent on every new connection before its LISTENs, in the same query (for example
  /// `SET ROLE app_reader`); it counts against connect_timeout, and an error fails the attempt
  /// as a refused LISTEN does. The near cache takes its interest lock here. Empty: none.
  std::string session_setup;
  /// Called with every event, on the thread inside receive(), listen() or unlisten(), after all
  /// notifications received before the event have been returned.
  std::function<void(const listener_event&)> on_event;
};

/// A listener's counters, read together (what pgkit::metrics reports).
struct listener_stats {
  bool connected = false;           ///< the connection is up and LISTENing on every channel
  std::uint64_t reconnects = 0;     ///< reconnections after a lost connection
  std::uint64_t notifications = 0;  ///< notifications received
  /// When the server last answered (the LISTENs or a heartbeat); the epoch when it never did.
  std::chrono::system_clock::time_point last_answer{};
};

/// A LISTEN session on a dedicated connection. Not thread-safe, except stop() and statistics().
class listener {
 public:
  /// Connects to `conninfo` (a libpq URL or conninfo string; "" for libpq's defaults) with TCP
  /// keepalives on. Throws pgkit::config_error for a transaction-mode pooler and pgkit::error
  /// of kind `connection` when the first connection fails (it is not retried).
  explicit listener(std::string conninfo, listener_options options = {});
  /// Connects as `config` describes (its conninfo, connect timeout and pooler: a
  /// transaction-mode pooler is refused with config_error). Throws as the constructor above.
  explicit listener(const connection_config& config, listener_options options = {});
  /// Takes its connection from `from` (liteorm's Listen): a lease held until close(), which
  /// sends UNLISTEN * and then gives the connection back to the pool; a connection that lost
  /// its session, or did not answer the UNLISTEN, or ran options.session_setup, is closed
  /// instead. A reconnect takes a new lease (waiting up to connect_timeout). The pool's
  /// configuration gives the pooler (a transaction-mode pooler is refused with config_error).
  /// The listener keeps the pool alive. Throws pgkit::error of kind `connection` when the first
  /// lease cannot be had (the pool's reason: timeout, a server that is down).
  explicit listener(std::shared_ptr<pool> from, listener_options options = {});
  /// Closes the connection without waiting for the server.
  ~listener();
  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;

  /// LISTENs on `channel` (quoted: case, spaces and quotes are kept); a second call does
  /// nothing. Throws pgkit::usage_error for an invalid name, pgkit::sql_error if the server
  /// refuses (the channel is then not recorded). While disconnected it only records the
  /// channel for the next connection.
  void listen(std::string_view channel);
  /// UNLISTENs `channel`; notifications already received for it are still returned.
  void unlisten(std::string_view channel);
  /// Returns the channels listened on, in the order they were added.
  const std::vector<std::string>& channels() const noexcept;

  /// Returns the next notification, waiting up to `timeout`; std::nullopt on timeout or once
  /// stop() was called. Notifications come in the order the server delivered them and none is
  /// dropped while the caller is busy. Reconnects as needed (see listener_options); throws
  /// pgkit::error of kind `connection_lost` when max_reconnect_attempts is used up.
  std::optional<notification> receive(std::chrono::milliseconds timeout);
  /// Returns the next notification, waiting as long as it takes; std::nullopt after stop().
  std::optional<notification> receive();
  /// Same as receive(timeout), and std::nullopt as soon as `stop` is triggered (from any thread
  /// or a signal handler): this call only is abandoned, like a Go context's cancel, and the
  /// listener stays usable; a later receive() with another interrupt (or none) goes on where
  /// this one stopped, and no notification is lost.
  std::optional<notification> receive(std::chrono::milliseconds timeout, const interrupt& stop);
  /// Same, waiting as long as it takes.
  std::optional<notification> receive(const interrupt& stop);
  /// Calls `handler` with every notification, in order, until stop() is called or `handler`
  /// throws (the exception propagates).
  void run(const std::function<void(const notification&)>& handler);

  /// Makes the current and every later receive() return std::nullopt at once. Safe to call
  /// from any thread and from a signal handler.
  void stop() noexcept;
  /// Returns true once stop() was called.
  bool stopped() const noexcept;

  /// UNLISTENs everything and closes the connection; later calls other than stopped() and
  /// close() throw pgkit::usage_error. Never throws.
  void close() noexcept;

  /// Returns true while the connection is up and LISTENing on every channel.
  bool connected() const noexcept;
  /// Returns the process id of the listener's own backend, or 0 while disconnected.
  int backend_pid() const noexcept;
  /// Returns how many times the listener has reconnected.
  std::size_t reconnects() const noexcept;
  /// Returns the listener's counters. Unlike the rest, safe to call from any thread (a metrics
  /// scrape) while another thread receives.
  listener_stats statistics() const noexcept;

 private:
  void first_connection();

  struct impl;
  std::unique_ptr<impl> m_impl;
};

/// Returns a readable name for `kind` ("connection_lost", "reconnect_failed", "reconnected").
std::string_view to_string(listener_event_kind kind) noexcept;

}  // namespace pgkit
