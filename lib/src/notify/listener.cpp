// The listener is a small state machine over one non-blocking libpq connection, driven by
// whoever calls receive(), listen() or unlisten(). It waits with poll() on the connection's
// socket and on a self-pipe that stop() writes to, so it never blocks past its deadline and
// can be woken from any thread or a signal handler.

#include "pgkit/listener.hpp"

#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <deque>
#include <random>
#include <utility>

#include "core/notices.hpp"
#include "core/pqxx_compat.hpp"
#include "core/sqlstate.hpp"
#include "notify/listener_backoff.hpp"
#include "pgkit/error.hpp"
#include "pgkit/notify.hpp"
#include "pgkit/pool.hpp"
#include "pgkit/query.hpp"
#include "pgkit/redact.hpp"
#include "wire/wire.hpp"

namespace pgkit {
namespace {

using steady = std::chrono::steady_clock;

// The first non-empty line of a libpq message: later lines repeat boilerplate ("This probably
// means the server terminated abnormally ...").
std::string first_line(const char* message) {
  std::string_view text = message == nullptr ? std::string_view{} : std::string_view{message};
  while (!text.empty()) {
    auto end = text.find('\n');
    auto line = text.substr(0, end);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r'))
      line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t'))
      line.remove_prefix(1);
    if (!line.empty())
      return std::string{line};
    if (end == std::string_view::npos)
      break;
    text.remove_prefix(end + 1);
  }
  return {};
}

std::string connection_error(const PGconn* connection) {
  auto message = first_line(PQerrorMessage(connection));
  return message.empty() ? std::string{"the server closed the connection"} : message;
}

std::string seconds_text(std::chrono::milliseconds duration) {
  auto tenths = (duration.count() + 50) / 100;
  return std::to_string(tenths / 10) + (tenths % 10 != 0 ? "." + std::to_string(tenths % 10) : "") +
         " s";
}

// Adds `timeout` to now without overflowing for "wait forever".
steady::time_point deadline_after(std::chrono::milliseconds timeout) {
  constexpr auto forever = std::chrono::hours{24 * 365 * 100};
  if (timeout >= forever)
    return steady::time_point::max();
  return steady::now() + std::max(timeout, std::chrono::milliseconds{0});
}

}  // namespace

std::string_view to_string(listener_event_kind kind) noexcept {
  switch (kind) {
    case listener_event_kind::connection_lost:
      return "connection_lost";
    case listener_event_kind::reconnect_failed:
      return "reconnect_failed";
    case listener_event_kind::reconnected:
      return "reconnected";
  }
  return "unknown";
}

struct listener::impl {
  enum class state { disconnected, connecting, subscribing, ready, failed, closed };
  enum class command { none, heartbeat, subscribe, user };

  std::string conninfo;
  std::string address;  // conninfo for messages, without its password
  listener_options options;
  std::vector<std::string> channels;
  std::deque<notification> queue;

  PGconn* connection = nullptr;
  state current = state::disconnected;
  PostgresPollingStatusType connect_poll = PGRES_POLLING_WRITING;
  command in_flight = command::none;
  bool want_write = false;  // libpq holds unsent output (non-blocking mode)
  // The server's error for the command in flight.
  std::unique_ptr<pg_result, detail::result_deleter> command_failure;
  steady::time_point phase_deadline;      // connect, subscribe or user command gives up
  steady::time_point heartbeat_due;       // when the next empty query goes out
  steady::time_point heartbeat_deadline;  // when the one in flight must have been answered
  int backend_pid = 0;

  bool first_connect = true;  // failures throw instead of scheduling a retry
  bool closing = false;       // close(): no events, no retries, stop() ignored
  bool in_outage = false;     // lost since the last time it was ready
  unsigned attempts = 0;      // failed reconnect attempts in this outage
  steady::time_point retry_at;
  std::size_t reconnect_count = 0;
  std::string failure;  // why it gave up, once current == failed
  std::mt19937 random{std::random_device{}()};

  int wake_read = -1;
  int wake_write = -1;
  std::atomic<bool> stop_requested{false};
  // The interrupt of the receive() in progress, which ends that call only.
  const interrupt* call_stop = nullptr;

  // A listener built from a pool: its connection is a lease, given back on close() once
  // UNLISTEN * has cleared the session (`clean`), closed instead otherwise.
  std::shared_ptr<pool> source;
  lease leased;
  bool clean = false;

  // statistics(), read from any thread (metrics); written by the thread that drives the listener.
  std::atomic<bool> up{false};
  std::atomic<std::uint64_t> reconnected{0};
  std::atomic<std::uint64_t> notifications{0};
  std::atomic<std::int64_t> answered_at_ns{0};  // system_clock; 0: never

  void server_answered() noexcept {
    auto now = std::chrono::system_clock::now().time_since_epoch();
    answered_at_ns.store(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count(),
                         std::memory_order_relaxed);
  }

  impl(std::string conninfo_, std::string address_, listener_options options_)
      : conninfo(std::move(conninfo_)), address(std::move(address_)), options(std::move(options_)) {
    int fds[2];
    if (::pipe(fds) != 0) {
      throw error(error_kind::internal, std::string{"cannot create the listener's wake-up pipe: "} +
                                            std::strerror(errno));
    }
    wake_read = fds[0];
    wake_write = fds[1];
    for (int fd : fds) {
      ::fcntl(fd, F_SETFD, FD_CLOEXEC);
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
  }

  ~impl() {
    close_connection();
    ::close(wake_read);
    ::close(wake_write);
  }

  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  bool should_stop() const { return !closing && stop_requested.load(); }

  void emit(listener_event_kind kind, const std::string& reason, unsigned attempt,
            std::chrono::milliseconds next_attempt_in = {}) {
    if (closing || !options.on_event)
      return;
    listener_event event;
    event.kind = kind;
    event.reason = redact_secrets(reason);
    event.attempt = attempt;
    event.next_attempt_in = next_attempt_in;
    options.on_event(event);
  }

  bool call_stopped() const { return call_stop != nullptr && call_stop->triggered(); }

  void close_connection() noexcept {
    if (leased) {
      // Back to the pool only without a LISTEN or setting of the listener's left on it; a
      // dropped connection is one the pool closes.
      if (connection != nullptr && (!clean || !options.session_setup.empty()))
        detail::wire{connection}.drop();
      else if (connection != nullptr)
        PQsetnonblocking(connection, 0);
      connection = nullptr;
      leased.release();
      clean = false;
    }
    if (connection != nullptr)
      PQfinish(connection);
    connection = nullptr;
    up.store(false, std::memory_order_relaxed);
    in_flight = command::none;
    want_write = false;
    backend_pid = 0;
  }

  // Waits until `fd` is ready for `events`, stop() is called or `until` passes. Returns the
  // events that happened on `fd` (0 when none did).
  short wait_for(int fd, short events, steady::time_point until) const {
    pollfd fds[3] = {{wake_read, POLLIN, 0}, {fd, events, 0}, {-1, POLLIN, 0}};
    if (call_stop != nullptr)
      fds[2].fd = call_stop->wait_handle();
    auto now = steady::now();
    long long wait_ms = 0;
    if (until > now) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
      wait_ms = std::min<long long>(left, INT_MAX);
    }
    if (should_stop() || call_stopped())
      wait_ms = 0;
    if (closing)
      fds[0].events = 0;                                    // stop() must not cut close() short
    int ready = ::poll(fds, 3, static_cast<int>(wait_ms));  // a negative fd is ignored
    if (ready <= 0)
      return 0;
    return fds[1].revents;
  }

  // --- connection lifecycle ---

  void start_connect() {
    static const char* const keywords[] = {"keepalives",
                                           "keepalives_idle",
                                           "keepalives_interval",
                                           "keepalives_count",
                                           "fallback_application_name",
                                           "dbname",
                                           nullptr};
    // Later entries win, and the caller's conninfo (expanded from dbname) comes last, so its
    // own keepalive settings override these defaults.
    const char* const values[] = {"1",    "30", "10", "3", "pgkit listener", conninfo.c_str(),
                                  nullptr};
    close_connection();
    if (source) {
      try {
        leased = source->acquire(options.connect_timeout);
      } catch (const error& e) {
        attempt_failed(e.what());
        return;
      }
      connection = detail::libpq_handle(*leased);
      connected();
      return;
    }
    connection = PQconnectStartParams(keywords, values, 1);
    if (connection == nullptr) {
      attempt_failed("out of memory");
      return;
    }
    detail::route_notices(connection);
    if (PQstatus(connection) == CONNECTION_BAD) {
      attempt_failed(connection_error(connection));
      return;
    }
    current = state::connecting;
    connect_poll = PGRES_POLLING_WRITING;
    phase_deadline = steady::now() + options.connect_timeout;
  }

  void step_connecting(steady::time_point until) {
    short events = connect_poll == PGRES_POLLING_READING ? POLLIN : POLLOUT;
    auto ready = wait_for(PQsocket(connection), events, std::min(until, phase_deadline));
    if (ready != 0) {
      connect_poll = PQconnectPoll(connection);
      if (connect_poll == PGRES_POLLING_OK) {
        connected();
      } else if (connect_poll == PGRES_POLLING_FAILED) {
        attempt_failed(connection_error(connection));
      }
      return;
    }
    if (steady::now() >= phase_deadline)
      attempt_failed("no connection within " + seconds_text(options.connect_timeout));
  }

  void connected() {
    if (PQsetnonblocking(connection, 1) != 0) {
      attempt_failed(connection_error(connection));
      return;
    }
    backend_pid = PQbackendPID(connection);
    std::string sql = options.session_setup;
    if (!sql.empty() && sql.back() != ';')
      sql += ';';
    if (sql.empty() && channels.empty()) {
      subscribed();
      return;
    }
    for (const auto& channel : channels)
      sql += "LISTEN " + quote_channel(channel) + ";";
    current = state::subscribing;
    if (send_command(sql, command::subscribe))
      phase_deadline = steady::now() + options.connect_timeout;
  }

  void subscribed() {
    current = state::ready;
    heartbeat_due = steady::now() + options.heartbeat_interval;
    up.store(true, std::memory_order_relaxed);
    server_answered();
    if (!in_outage)
      return;
    in_outage = false;
    ++reconnect_count;
    reconnected.fetch_add(1, std::memory_order_relaxed);
    emit(listener_event_kind::reconnected, {}, std::exchange(attempts, 0U) + 1);
  }

  // The connection failed while up (connection_lost) or during an attempt (reconnect_failed).
  void lost(const std::string& reason) {
    bool was_attempt = current == state::connecting || current == state::subscribing;
    close_connection();
    current = state::disconnected;
    if (closing)
      return;
    if (first_connect || (was_attempt && in_outage)) {
      attempt_failed(reason);
      return;
    }
    in_outage = true;
    attempts = 0;
    retry_at = steady::now();
    emit(listener_event_kind::connection_lost, reason, 0);
  }

  void attempt_failed(const std::string& reason) {
    close_connection();
    current = state::disconnected;
    if (closing)
      return;
    if (first_connect) {
      throw error(error_kind::connection, "cannot connect to " + address + ": " + reason,
                  detail::connect_failure_hint(reason));
    }
    ++attempts;
    if (options.max_reconnect_attempts != 0 && attempts >= options.max_reconnect_attempts) {
      current = state::failed;
      failure = "the listener gave up reconnecting after " + std::to_string(attempts) + " attempt" +
                (attempts == 1 ? "" : "s") + ": " + reason;
      throw error(error_kind::connection_lost, failure);
    }
    std::uniform_real_distribution<double> unit{0.0, 1.0};
    auto delay = detail::reconnect_delay(attempts, options.reconnect_initial_delay,
                                         options.reconnect_max_delay, unit(random));
    retry_at = steady::now() + delay;
    emit(listener_event_kind::reconnect_failed, reason, attempts, delay);
  }

  // --- commands on an open connection ---

  bool send_command(const std::string& sql, command kind) {
    if (!detail::wire{connection}.send_nowait(sql)) {
      lost(connection_error(connection));
      return false;
    }
    in_flight = kind;
    command_failure.reset();
    return flush();
  }

  bool flush() {
    int pending = PQflush(connection);
    if (pending < 0) {
      lost(connection_error(connection));
      return false;
    }
    want_write = pending == 1;
    return true;
  }

  void drain_notifications() {
    while (PGnotify* raw = PQnotifies(connection)) {
      notification received;
      received.channel = raw->relname;
      received.payload = raw->extra == nullptr ? "" : raw->extra;
      received.sender_pid = raw->be_pid;
      received.received_at = std::chrono::system_clock::now();
      PQfreemem(raw);
      queue.push_back(std::move(received));
      notifications.fetch_add(1, std::memory_order_relaxed);
    }
  }

  void collect_results() {
    while (in_flight != command::none && PQisBusy(connection) == 0) {
      PGresult* result = PQgetResult(connection);
      if (result == nullptr) {
        finish_command();
        return;
      }
      if (PQresultStatus(result) == PGRES_FATAL_ERROR && !command_failure)
        command_failure.reset(result);
      else
        PQclear(result);
    }
  }

  void finish_command() {
    auto finished = std::exchange(in_flight, command::none);
    switch (finished) {
      case command::heartbeat:
        heartbeat_due = steady::now() + options.heartbeat_interval;
        server_answered();
        break;
      case command::subscribe:
        if (!command_failure) {
          subscribed();
        } else {
          lost((options.session_setup.empty() ? "LISTEN failed: "
                                              : "the session setup or LISTEN failed: ") +
               first_line(PQresultErrorMessage(command_failure.get())));
        }
        break;
      case command::user:
      case command::none:
        break;
    }
  }

  bool heartbeat_enabled() const { return options.heartbeat_interval.count() > 0; }

  void step_connected(steady::time_point until) {
    auto now = steady::now();
    if (current == state::ready && in_flight == command::none && heartbeat_enabled() &&
        now >= heartbeat_due) {
      if (!send_command("", command::heartbeat))
        return;
      heartbeat_deadline = now + options.heartbeat_interval;
    }
    auto wake_at = until;
    if (in_flight == command::heartbeat) {
      wake_at = std::min(wake_at, heartbeat_deadline);
    } else if (in_flight != command::none) {
      wake_at = std::min(wake_at, phase_deadline);
    } else if (current == state::ready && heartbeat_enabled()) {
      wake_at = std::min(wake_at, heartbeat_due);
    }
    short events = static_cast<short>(POLLIN | (want_write ? POLLOUT : 0));
    auto ready = wait_for(PQsocket(connection), events, wake_at);
    if ((ready & POLLOUT) != 0 && !flush())
      return;
    if ((ready & (POLLIN | POLLERR | POLLHUP)) != 0) {
      if (PQconsumeInput(connection) == 0) {
        drain_notifications();
        lost(connection_error(connection));
        return;
      }
      drain_notifications();
      collect_results();
      if (current != state::ready && current != state::subscribing)
        return;
      drain_notifications();
      if (PQstatus(connection) == CONNECTION_BAD) {
        lost(connection_error(connection));
        return;
      }
    }
    now = steady::now();
    if (in_flight == command::heartbeat && now >= heartbeat_deadline) {
      lost("the server did not answer the heartbeat within " +
           seconds_text(options.heartbeat_interval));
    } else if (in_flight != command::none && in_flight != command::heartbeat &&
               now >= phase_deadline) {
      lost("the server did not answer within " + seconds_text(options.connect_timeout));
    }
  }

  // One round of work: connect, read, send a heartbeat or wait, at most until `until`.
  void step(steady::time_point until) {
    switch (current) {
      case state::disconnected:
        if (steady::now() >= retry_at) {
          start_connect();
        } else {
          wait_for(-1, 0, std::min(until, retry_at));
        }
        return;
      case state::connecting:
        step_connecting(until);
        return;
      case state::subscribing:
      case state::ready:
        step_connected(until);
        return;
      case state::failed:
        throw error(error_kind::connection_lost, failure);
      case state::closed:
        throw usage_error("the listener is closed");
    }
  }

  void check_usable() const {
    if (current == state::closed)
      throw usage_error("the listener is closed");
    if (current == state::failed)
      throw error(error_kind::connection_lost, failure);
  }

  // Runs LISTEN or UNLISTEN now if connected; otherwise the next connection's subscription
  // covers it, because the caller updates `channels`. Throws sql_error when the server refuses.
  void run_channel_command(const std::string& sql) {
    while ((current == state::connecting || current == state::subscribing ||
            (current == state::ready && in_flight != command::none)) &&
           !should_stop()) {
      step(steady::time_point::max());
    }
    if (current != state::ready || in_flight != command::none)
      return;
    if (!send_command(sql, command::user))
      return;
    phase_deadline = steady::now() + options.connect_timeout;
    while (current == state::ready && in_flight == command::user)
      step(steady::time_point::max());
    if (command_failure)
      detail::throw_failure(connection, command_failure.release(), sql + " failed", sql);
  }

  std::optional<notification> receive_until(steady::time_point deadline,
                                            const interrupt* stop = nullptr) {
    check_usable();
    call_stop = stop;
    struct forget {
      const interrupt*& held;
      ~forget() { held = nullptr; }
    } forgetting{call_stop};
    for (;;) {
      if (should_stop() || call_stopped())
        return std::nullopt;
      if (!queue.empty()) {
        auto next = std::move(queue.front());
        queue.pop_front();
        return next;
      }
      step(deadline);
      if (queue.empty() && steady::now() >= deadline)
        return std::nullopt;
    }
  }
};

namespace {

listener_options with_pooler(listener_options options, pooler_mode pooler) {
  options.pooler = pooler;
  return options;
}

[[noreturn]] void refuse_transaction_pooler() {
  throw config_error(
      "LISTEN cannot work through a transaction-mode pooler (pooler = \"" +
          std::string{to_string(pooler_mode::pgbouncer_transaction)} +
          "\"): the session that LISTENs is not kept",
      "connect the listener to PostgreSQL directly or through a session-mode pooler, "
      "for example with a separate connection in database.toml");
}

}  // namespace

listener::listener(std::string conninfo, listener_options options) {
  if (options.pooler == pooler_mode::pgbouncer_transaction)
    refuse_transaction_pooler();
  auto address = config_from_url(conninfo, "the listener's connection string").describe();
  m_impl = std::make_unique<impl>(std::move(conninfo), std::move(address), std::move(options));
  first_connection();
}

listener::listener(const connection_config& config, listener_options options)
    : listener(config.conninfo(), with_pooler(std::move(options), config.pooler)) {}

listener::listener(std::shared_ptr<pool> from, listener_options options) {
  if (!from)
    throw usage_error("the listener's pool is empty (a null std::shared_ptr)");
  options = with_pooler(std::move(options), from->config().pooler);
  if (options.pooler == pooler_mode::pgbouncer_transaction)
    refuse_transaction_pooler();
  m_impl = std::make_unique<impl>(std::string{}, from->config().describe(), std::move(options));
  m_impl->source = std::move(from);
  first_connection();
}

void listener::first_connection() {
  m_impl->start_connect();
  while (m_impl->current != impl::state::ready)
    m_impl->step(steady::time_point::max());
  m_impl->first_connect = false;
}

listener::~listener() = default;

void listener::listen(std::string_view channel) {
  m_impl->check_usable();
  check_channel_name(channel);
  auto& channels = m_impl->channels;
  if (std::find(channels.begin(), channels.end(), channel) != channels.end())
    return;
  // Recorded only once the server accepted it (or, while disconnected, for the next
  // connection): a refused channel kept here would fail every later reconnect.
  m_impl->run_channel_command("LISTEN " + quote_channel(channel));
  channels.emplace_back(channel);
}

void listener::unlisten(std::string_view channel) {
  m_impl->check_usable();
  check_channel_name(channel);
  auto& channels = m_impl->channels;
  auto found = std::find(channels.begin(), channels.end(), channel);
  if (found == channels.end())
    return;
  channels.erase(found);
  m_impl->run_channel_command("UNLISTEN " + quote_channel(channel));
}

const std::vector<std::string>& listener::channels() const noexcept {
  return m_impl->channels;
}

std::optional<notification> listener::receive(std::chrono::milliseconds timeout) {
  return m_impl->receive_until(deadline_after(timeout));
}

std::optional<notification> listener::receive() {
  return m_impl->receive_until(steady::time_point::max());
}

std::optional<notification> listener::receive(std::chrono::milliseconds timeout,
                                              const interrupt& stop) {
  return m_impl->receive_until(deadline_after(timeout), &stop);
}

std::optional<notification> listener::receive(const interrupt& stop) {
  return m_impl->receive_until(steady::time_point::max(), &stop);
}

void listener::run(const std::function<void(const notification&)>& handler) {
  while (auto next = receive())
    handler(*next);
}

void listener::stop() noexcept {
  m_impl->stop_requested.store(true);
  char byte = 1;
  // A full pipe already wakes the poll; nothing else can go wrong that matters here.
  if (::write(m_impl->wake_write, &byte, 1) < 0) {
  }
}

bool listener::stopped() const noexcept {
  return m_impl->stop_requested.load();
}

void listener::close() noexcept {
  auto& self = *m_impl;
  if (self.current == impl::state::closed)
    return;
  self.closing = true;
  try {
    auto deadline = steady::now() + self.options.connect_timeout;
    auto busy = [&] {
      return (self.current == impl::state::subscribing ||
              (self.current == impl::state::ready && self.in_flight != impl::command::none)) &&
             steady::now() < deadline;
    };
    while (busy())
      self.step(deadline);
    if (self.current == impl::state::ready && self.in_flight == impl::command::none &&
        self.send_command("UNLISTEN *", impl::command::user)) {
      while (busy())
        self.step(deadline);
      // A pooled connection goes back only when UNLISTEN * was answered without an error.
      self.clean = self.current == impl::state::ready && self.in_flight == impl::command::none &&
                   !self.command_failure;
    }
  } catch (...) {
    // Closing is best effort: the session ends, and its LISTENs with it, either way.
  }
  self.close_connection();
  self.current = impl::state::closed;
}

bool listener::connected() const noexcept {
  return m_impl->current == impl::state::ready;
}

int listener::backend_pid() const noexcept {
  return m_impl->current == impl::state::ready ? m_impl->backend_pid : 0;
}

std::size_t listener::reconnects() const noexcept {
  return m_impl->reconnect_count;
}

listener_stats listener::statistics() const noexcept {
  const auto& self = *m_impl;
  listener_stats stats;
  stats.connected = self.up.load(std::memory_order_relaxed);
  stats.reconnects = self.reconnected.load(std::memory_order_relaxed);
  stats.notifications = self.notifications.load(std::memory_order_relaxed);
  stats.last_answer = std::chrono::system_clock::time_point{
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds{self.answered_at_ns.load(std::memory_order_relaxed)})};
  return stats;
}

}  // namespace pgkit
