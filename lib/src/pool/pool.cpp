#include "pgkit/pool.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "config/config_file.hpp"
#include "core/pqxx_compat.hpp"
#include "core/suggest.hpp"
#include "pgkit/connection.hpp"
#include "pgkit/error.hpp"
#include "pool/pooled_connection.hpp"
#include "wire/wire.hpp"

namespace pgkit {
namespace detail {
namespace {

using clock = std::chrono::steady_clock;

clock::time_point deadline_after(clock::time_point start, std::chrono::milliseconds timeout) {
  if (timeout >=
      std::chrono::duration_cast<std::chrono::milliseconds>(clock::time_point::max() - start)) {
    return clock::time_point::max();
  }
  return start + timeout;
}

long long whole_ms(clock::duration duration) {
  return static_cast<long long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(duration).count());
}

enum class close_reason {
  none,
  broken,
  in_transaction,
  failed_validation,
  lifetime,
  idle,
  closed,
};

}  // namespace

// A caller queued in acquire(). Shared with whoever serves it, so that the server can notify it
// after unlocking the pool's mutex even if the caller has already left; its fields are only
// touched under the pool's mutex.
struct waiter {
  std::condition_variable ready;
  std::unique_ptr<pooled_connection> handed;  // a connection given straight to this caller
  bool may_open = false;                      // capacity reserved: open a new connection
  bool closed = false;                        // the pool was closed while waiting
  // The connection this caller's thread gave back last, if any: compared, never dereferenced.
  const pooled_connection* previous = nullptr;
  // How many callers queued behind this one were served before it (see pool_state::hand_over).
  std::size_t overtaken = 0;
};

// The connection the current thread gave back last, to any pool: compared, never dereferenced.
thread_local const pooled_connection* t_last_given_back = nullptr;

// Queued callers to notify once the mutex is released: a caller woken while the mutex is still
// held would only go back to sleep on the mutex.
using wake_list = std::vector<std::shared_ptr<waiter>>;

void wake(wake_list& served) {
  for (auto& queued : served)
    queued->ready.notify_one();
  served.clear();
}

// wake() with `lock` (the pool's mutex) released for the time of it.
void wake_unlocked(std::unique_lock<std::mutex>& lock, wake_list& served) {
  if (served.empty())
    return;
  lock.unlock();
  wake(served);
  lock.lock();
}

struct pool_state {
  explicit pool_state(connection_config settings)
      : config(std::move(settings)),
        quantum(std::min<clock::duration>(config.handoff_quantum, config.acquire_timeout / 10)),
        return_window(quantum / 4),
        tick(std::max<clock::duration>(quantum / 2, std::chrono::microseconds{100})) {}

  const connection_config config;
  // The hand-off slice, capped against acquire_timeout so that a queued caller's bound stays
  // far below its timeout.
  const clock::duration quantum;
  // How long a connection given back within its slice waits for its thread to come back.
  const clock::duration return_window;
  // While callers queue, how often the maintenance thread hands over connections whose thread
  // did not come back (anyone using the pool does it too, sooner).
  const clock::duration tick;

  mutable std::mutex mutex;
  std::deque<std::unique_ptr<pooled_connection>> idle;  // back: most recently given back
  std::deque<std::shared_ptr<waiter>> waiters;          // front: first in line
  std::size_t total = 0;                                // open connections plus those being opened
  std::size_t in_use = 0;                               // leased out plus being opened for a caller
  std::size_t refilling = 0;  // being opened to become idle (warm_up, min_idle refill)
  // The earliest reserved_until among idle connections, or later.
  clock::time_point next_reservation_end = clock::time_point::max();
  // The maintenance thread ticks every `tick` until then (callers queued recently).
  clock::time_point contended_until;
  bool maintenance_connecting = false;  // the maintenance thread is inside connect()
  bool closed = false;
  pool_stats counters;
  std::mt19937_64 random{std::random_device{}()};
  std::condition_variable drained;  // in_use reached 0
  std::condition_variable maintenance_wake;
  std::thread maintenance;

  // Counts a queued acquire's wait into its queued_waits bucket; called with the mutex held.
  void count_queued_wait(clock::duration waited) {
    auto bucket = std::lower_bound(pool_wait_bounds.begin(), pool_wait_bounds.end(), waited);
    ++counters.queued_waits[static_cast<std::size_t>(bucket - pool_wait_bounds.begin())];
  }

  std::string label() const {
    return config.name.empty() ? config.describe() : "'" + config.name + "'";
  }

  // Opens a new connection; called without the mutex held.
  std::unique_ptr<pooled_connection> open() {
    auto opened = std::make_unique<pooled_connection>();
    opened->connection = connect(config);
    opened->created = clock::now();
    opened->last_used = opened->created;
    opened->slice_start = opened->created;
    if (config.max_lifetime.count() > 0) {
      auto lifetime = std::chrono::duration_cast<clock::duration>(config.max_lifetime);
      std::lock_guard lock{mutex};
      std::uniform_int_distribution<clock::rep> jitter{0, lifetime.count() / 10};
      opened->expires = opened->created + lifetime - clock::duration{jitter(random)};
    }
    return opened;
  }

  void count_closed(close_reason reason) {
    switch (reason) {
      case close_reason::broken:
        ++counters.destroyed_broken;
        break;
      case close_reason::in_transaction:
        ++counters.destroyed_in_transaction;
        break;
      case close_reason::failed_validation:
        ++counters.destroyed_failed_validation;
        break;
      case close_reason::lifetime:
        ++counters.destroyed_lifetime;
        break;
      case close_reason::idle:
        ++counters.destroyed_idle;
        break;
      case close_reason::closed:
        ++counters.destroyed_closed;
        break;
      case close_reason::none:
        break;
    }
  }

  // With the mutex held: when capacity is free and someone waits, lets the first in line open
  // a connection.
  void offer_capacity(wake_list& served) {
    if (closed || waiters.empty() || total >= config.pool_size)
      return;
    auto first = std::move(waiters.front());
    waiters.pop_front();
    ++total;
    ++in_use;
    first->may_open = true;
    served.push_back(std::move(first));
  }

  // With the mutex held: gives `connection` to a queued caller, or makes it idle. The caller is
  // the first in line whose thread gave this same connection back last: that thread and the
  // connection's server process most likely still sit on one CPU, so the wake-ups between them
  // stay local. Nobody is passed who was already passed pool_size times, which bounds what the
  // preference costs anyone to about one more round of hand-offs. With handoff_quantum 0 the
  // first in line gets it (strict first come, first served).
  void hand_over(std::unique_ptr<pooled_connection> connection, wake_list& served) {
    if (waiters.empty()) {
      idle.push_back(std::move(connection));
      return;
    }
    auto chosen = waiters.begin();
    if (quantum.count() > 0) {
      for (auto it = waiters.begin(); it != waiters.end(); ++it) {
        if ((*it)->previous == connection.get()) {
          chosen = it;
          ++counters.paired_handoffs;
          break;
        }
        if ((*it)->overtaken >= config.pool_size)
          break;
      }
      for (auto it = waiters.begin(); it != chosen; ++it)
        ++(*it)->overtaken;
    }
    auto first = std::move(*chosen);
    waiters.erase(chosen);
    ++in_use;
    ++counters.handoffs;
    first->handed = std::move(connection);
    served.push_back(std::move(first));
  }

  // With the mutex held: gives idle connections whose reservation ran out to queued callers.
  void end_reservations(clock::time_point now, wake_list& served) {
    if (waiters.empty() || now < next_reservation_end)
      return;
    next_reservation_end = clock::time_point::max();
    for (auto it = idle.begin(); it != idle.end();) {
      if ((*it)->reserved_until > now) {
        next_reservation_end = std::min(next_reservation_end, (*it)->reserved_until);
        ++it;
      } else if (!waiters.empty()) {
        hand_over(std::move(*it), served);
        it = idle.erase(it);
      } else {
        ++it;
      }
    }
  }

  void give_back(std::unique_ptr<pooled_connection> connection) noexcept {
    t_last_given_back = connection.get();
    auto now = clock::now();
    auto reason = close_reason::none;
    switch (session_state_of(libpq_handle(*connection->connection))) {
      case session_state::idle:
        break;
      case session_state::broken:
        reason = close_reason::broken;
        break;
      case session_state::in_transaction:
      case session_state::failed:
      case session_state::busy:
        reason = close_reason::in_transaction;
        break;
    }
    if (reason == close_reason::none && now >= connection->expires)
      reason = close_reason::lifetime;
    std::unique_ptr<pooled_connection> doomed;
    wake_list served;
    {
      std::lock_guard lock{mutex};
      --in_use;
      if (reason == close_reason::none && closed)
        reason = close_reason::closed;
      if (reason != close_reason::none) {
        count_closed(reason);
        --total;
        doomed = std::move(connection);
        offer_capacity(served);
      } else {
        connection->last_used = now;
        connection->last_thread = std::this_thread::get_id();
        auto slice_end = connection->slice_start + quantum;
        if (!waiters.empty() && now < slice_end) {
          // Within its slice: the connection waits a moment for this thread to come back, so a
          // running thread goes on without a context switch while the queue sleeps.
          connection->reserved_until = std::min(slice_end, now + return_window);
          next_reservation_end = std::min(next_reservation_end, connection->reserved_until);
          idle.push_back(std::move(connection));
        } else {
          connection->reserved_until = {};
          hand_over(std::move(connection), served);
        }
      }
      end_reservations(now, served);
      if (in_use == 0)
        drained.notify_all();
    }
    wake(served);
    // `doomed` closes here, outside the mutex.
  }

  // The maintenance thread: closes expired and surplus idle connections, refills min_idle and,
  // while callers queue, hands over connections whose thread did not come back.
  void maintain() {
    auto failure_pause = config.maintenance_interval;
    auto next_round = clock::now() + config.maintenance_interval;
    wake_list served;
    std::unique_lock lock{mutex};
    while (!closed) {
      auto now = clock::now();
      auto until = next_round;
      if (quantum.count() > 0 && now < contended_until)
        until = std::min(until, now + tick);
      maintenance_wake.wait_until(lock, until);
      if (closed)
        break;
      now = clock::now();
      end_reservations(now, served);
      wake_unlocked(lock, served);
      if (now < next_round)
        continue;
      next_round = now + config.maintenance_interval;
      std::vector<std::unique_ptr<pooled_connection>> doomed;
      for (auto it = idle.begin(); it != idle.end();) {
        auto reason = close_reason::none;
        if (now >= (*it)->expires) {
          reason = close_reason::lifetime;
        } else if (config.idle_timeout.count() > 0 && idle.size() > config.min_idle &&
                   now - (*it)->last_used >= config.idle_timeout) {
          reason = close_reason::idle;
        }
        if (reason == close_reason::none) {
          ++it;
          continue;
        }
        count_closed(reason);
        --total;
        doomed.push_back(std::move(*it));
        it = idle.erase(it);
        offer_capacity(served);
      }
      // Connections already being opened to become idle count, so that warm_up() and the refill
      // never overshoot min_idle together.
      bool refill =
          !closed && idle.size() + refilling < config.min_idle && total < config.pool_size;
      if (refill) {
        ++total;
        ++refilling;
        maintenance_connecting = true;
      }
      lock.unlock();
      wake(served);
      doomed.clear();
      if (!refill) {
        lock.lock();
        continue;
      }
      std::unique_ptr<pooled_connection> opened;
      try {
        opened = open();
      } catch (...) {
        opened.reset();
      }
      lock.lock();
      maintenance_connecting = false;
      --refilling;
      if (!opened) {
        --total;
        ++counters.create_failed;
        offer_capacity(served);
        wake_unlocked(lock, served);
        // A server that is down is not hammered: back off up to 30 s between attempts.
        failure_pause =
            std::min<std::chrono::milliseconds>(failure_pause * 2, std::chrono::seconds{30});
        next_round = clock::now() + failure_pause;
        continue;
      }
      failure_pause = config.maintenance_interval;
      ++counters.created;
      if (closed) {
        --total;
        ++counters.destroyed_closed;
        lock.unlock();
        opened.reset();
        lock.lock();
        continue;
      }
      hand_over(std::move(opened), served);
      wake_unlocked(lock, served);
    }
  }
};

}  // namespace detail

using detail::clock;
using detail::pooled_connection;

// --- lease -----------------------------------------------------------------------------------

lease::lease(std::shared_ptr<detail::pool_state> state,
             std::unique_ptr<pooled_connection> connection) noexcept
    : m_state(std::move(state)), m_connection(std::move(connection)) {}

lease::lease() noexcept = default;

lease::lease(lease&& other) noexcept = default;

lease& lease::operator=(lease&& other) noexcept {
  if (this != &other) {
    release();
    m_state = std::move(other.m_state);
    m_connection = std::move(other.m_connection);
  }
  return *this;
}

lease::~lease() {
  release();
}

pqxx::connection& lease::connection() const noexcept {
  return *m_connection->connection;
}

const connection_config& lease::config() const noexcept {
  return m_state->config;
}

void lease::release() noexcept {
  if (m_connection)
    m_state->give_back(std::move(m_connection));
  m_state.reset();
}

// --- pool ------------------------------------------------------------------------------------

pool::pool(connection_config config) {
  if (config.pool_size == 0)
    throw config_error("pool_size must be at least 1");
  if (config.min_idle > config.pool_size) {
    throw config_error("min_idle (" + std::to_string(config.min_idle) +
                       ") must not exceed pool_size (" + std::to_string(config.pool_size) + ")");
  }
  if (config.handoff_quantum.count() < 0 || config.acquire_timeout.count() < 0)
    throw config_error("handoff_quantum and acquire_timeout must not be negative");
  if (config.maintenance_interval.count() <= 0)
    config.maintenance_interval = std::chrono::milliseconds{1000};
  config.conninfo();  // an unusable URL fails here, not at the first acquire
  m_state = std::make_shared<detail::pool_state>(std::move(config));
  // The thread shares the state: a pool destroyed while it sits in connect() does not wait.
  m_state->maintenance = std::thread{[state = m_state] { state->maintain(); }};
}

pool::~pool() {
  close(std::chrono::milliseconds{0});
  bool connecting = false;
  {
    std::lock_guard lock{m_state->mutex};
    connecting = m_state->maintenance_connecting;
  }
  // Closed, the maintenance thread starts no new work: it is either about to exit or inside
  // connect(), which may take connect_timeout; then it finishes on its own and discards what
  // it opened.
  if (connecting)
    m_state->maintenance.detach();
  else if (m_state->maintenance.joinable())
    m_state->maintenance.join();
}

const connection_config& pool::config() const noexcept {
  return m_state->config;
}

lease pool::acquire() {
  return acquire(m_state->config.acquire_timeout);
}

lease pool::acquire(std::chrono::milliseconds timeout) {
  auto& state = *m_state;
  auto started = clock::now();
  auto me = std::this_thread::get_id();
  std::unique_ptr<pooled_connection> connection;
  bool must_open = false;
  bool new_slice = true;
  std::optional<clock::duration> queued_for;  // set when this acquire queued
  detail::wake_list served;
  {
    std::unique_lock lock{state.mutex};
    if (state.closed)
      throw usage_error("the pool for " + state.label() + " is closed");
    state.end_reservations(started, served);
    if (!state.waiters.empty()) {
      // Callers queue: only a connection this thread gave back within its slice may be taken
      // ahead of them.
      auto mine = std::find_if(state.idle.rbegin(), state.idle.rend(), [&](const auto& idle) {
        return idle->last_thread == me && idle->reserved_until > started;
      });
      if (mine != state.idle.rend()) {
        auto chosen = std::prev(mine.base());
        connection = std::move(*chosen);
        state.idle.erase(chosen);
        ++state.in_use;
        ++state.counters.overtakes;
        new_slice = false;
      }
    } else if (!state.idle.empty()) {
      // The connection this thread gave back last, if it is idle, else the most recent one:
      // a thread that keeps its connection keeps its server process warm.
      auto mine = std::find_if(state.idle.rbegin(), state.idle.rend(),
                               [&](const auto& idle) { return idle->last_thread == me; });
      auto chosen =
          mine == state.idle.rend() ? std::prev(state.idle.end()) : std::prev(mine.base());
      connection = std::move(*chosen);
      state.idle.erase(chosen);
      ++state.in_use;
      new_slice = connection->last_thread != me;
    } else if (state.total < state.config.pool_size) {
      ++state.total;
      ++state.in_use;
      must_open = true;
    }
    if (!connection && !must_open) {
      auto self = std::make_shared<detail::waiter>();
      self->previous = detail::t_last_given_back;
      state.waiters.push_back(self);
      ++state.counters.waited;
      if (started >= state.contended_until && state.quantum.count() > 0)
        state.maintenance_wake.notify_one();  // start handing over stalled reservations
      state.contended_until = started + state.config.maintenance_interval;
      auto deadline = detail::deadline_after(started, timeout);
      detail::wake_unlocked(lock, served);
      while (!self->handed && !self->may_open && !self->closed) {
        if (self->ready.wait_until(lock, deadline) == std::cv_status::timeout && !self->handed &&
            !self->may_open && !self->closed) {
          state.waiters.erase(std::find(state.waiters.begin(), state.waiters.end(), self));
          auto waited = clock::now() - started;
          ++state.counters.timed_out;
          state.count_queued_wait(waited);
          state.counters.wait_time += waited;
          state.counters.longest_wait =
              std::max<std::chrono::nanoseconds>(state.counters.longest_wait, waited);
          throw error(error_kind::timeout,
                      "no connection from the pool for " + state.label() + " after waiting " +
                          std::to_string(detail::whole_ms(waited)) +
                          " ms: " + std::to_string(state.in_use) + " of " +
                          std::to_string(state.config.pool_size) + " connections are busy, " +
                          std::to_string(state.waiters.size()) + " other callers waiting",
                      "raise pool_size or acquire_timeout_ms, or give leases back sooner");
        }
      }
      auto waited = clock::now() - started;
      queued_for = waited;
      state.counters.wait_time += waited;
      state.counters.longest_wait =
          std::max<std::chrono::nanoseconds>(state.counters.longest_wait, waited);
      if (self->closed)
        throw usage_error("the pool for " + state.label() + " was closed while waiting");
      connection = std::move(self->handed);
      must_open = self->may_open;
    }
  }
  detail::wake(served);

  // Outside the mutex: check a connection that sat idle, open a new one where needed. The
  // capacity reserved above stays this caller's throughout.
  for (;;) {
    if (!must_open) {
      auto now = clock::now();
      auto reason = detail::close_reason::none;
      if (now >= connection->expires) {
        reason = detail::close_reason::lifetime;
      } else if (now - connection->last_used >= state.config.validate_after_idle &&
                 !detail::wire{detail::libpq_handle(*connection->connection)}.ping(
                     detail::deadline_after(started, timeout))) {
        reason = detail::close_reason::failed_validation;
      }
      if (reason == detail::close_reason::none)
        break;
      {
        std::lock_guard lock{state.mutex};
        state.count_closed(reason);
      }
      connection.reset();
      must_open = true;
    }
    try {
      connection = state.open();
    } catch (...) {
      std::lock_guard lock{state.mutex};
      --state.total;
      --state.in_use;
      ++state.counters.create_failed;
      state.offer_capacity(served);
      if (state.in_use == 0)
        state.drained.notify_all();
      // Notifying under the mutex here: this path is rare, and `served` must not outlive it.
      detail::wake(served);
      throw;
    }
    std::lock_guard lock{state.mutex};
    ++state.counters.created;
    break;
  }
  if (new_slice)
    connection->slice_start = clock::now();
  {
    std::lock_guard lock{state.mutex};
    ++state.counters.acquired;
    if (queued_for)
      state.count_queued_wait(*queued_for);
  }
  return lease{m_state, std::move(connection)};
}

void pool::warm_up() {
  auto& state = *m_state;
  auto target = std::max<std::size_t>(state.config.min_idle, 1);
  for (;;) {
    {
      std::unique_lock lock{state.mutex};
      if (state.closed)
        throw usage_error("the pool for " + state.label() + " is closed");
      if (state.idle.size() >= target || state.total >= state.config.pool_size)
        return;
      if (state.idle.size() + state.refilling >= target) {
        // The maintenance thread is opening what is missing: wait for it rather than overshoot.
        lock.unlock();
        std::this_thread::sleep_for(std::chrono::milliseconds{5});
        continue;
      }
      ++state.total;
      ++state.refilling;
    }
    std::unique_ptr<pooled_connection> opened;
    try {
      opened = state.open();
    } catch (...) {
      std::lock_guard lock{state.mutex};
      --state.total;
      --state.refilling;
      ++state.counters.create_failed;
      detail::wake_list served;
      state.offer_capacity(served);
      detail::wake(served);
      throw;
    }
    detail::wake_list served;
    {
      std::lock_guard lock{state.mutex};
      --state.refilling;
      ++state.counters.created;
      state.hand_over(std::move(opened), served);
    }
    detail::wake(served);
  }
}

bool pool::close(std::chrono::milliseconds timeout) {
  auto& state = *m_state;
  auto deadline = detail::deadline_after(clock::now(), timeout);
  std::deque<std::unique_ptr<pooled_connection>> doomed;
  std::unique_lock lock{state.mutex};
  state.closed = true;
  for (auto& queued : state.waiters) {
    queued->closed = true;
    queued->ready.notify_one();
  }
  state.waiters.clear();
  state.counters.destroyed_closed += state.idle.size();
  state.total -= state.idle.size();
  doomed.swap(state.idle);
  state.maintenance_wake.notify_all();
  lock.unlock();
  doomed.clear();
  lock.lock();
  return state.drained.wait_until(lock, deadline, [&] { return state.in_use == 0; });
}

pool_stats pool::stats() const {
  std::lock_guard lock{m_state->mutex};
  pool_stats copy = m_state->counters;
  copy.in_use = m_state->in_use;
  copy.idle = m_state->idle.size();
  copy.waiting = m_state->waiters.size();
  return copy;
}

// --- start -----------------------------------------------------------------------------------

std::shared_ptr<pool> start(const connection_config& config) {
  auto started = std::make_shared<pool>(config);
  started->warm_up();
  return started;
}

namespace {

// Rethrows the pgkit::error being handled with its hint on a line of its own in what(), so that
// a program that lets it escape (glimr's crash-early style: std::terminate prints what()) still
// shows what to do. hint() stays as it was.
[[noreturn]] void rethrow_with_hint_in_message() {
  try {
    throw;
  } catch (const config_error& e) {
    if (e.hint().empty())
      throw;
    throw config_error(std::string{e.what()} + "\nhint: " + e.hint(), e.hint());
  } catch (const error& e) {
    if (e.hint().empty())
      throw;
    throw error(e.kind(), std::string{e.what()} + "\nhint: " + e.hint(), e.hint(), e.sqlstate());
  }
}

}  // namespace

std::shared_ptr<pool> start(const std::string& name) {
  try {
    if (auto file = detail::find_config_file({}))
      return start(load_config(*file, process_environment()).connection(name));
    throw config_error("pgkit::start(\"" + name + "\") found no configuration file (looked for " +
                           join_words(default_config_files(), " and ") + " in " +
                           std::filesystem::current_path().string() + ")",
                       "create database.toml with a [connections." + name +
                           "] table, or build a connection_config and call pgkit::start(config)");
  } catch (const error&) {
    rethrow_with_hint_in_message();
  }
}

}  // namespace pgkit
