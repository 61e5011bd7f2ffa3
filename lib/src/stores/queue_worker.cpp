#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>

#include "pgkit/listener.hpp"
#include "pgkit/queue.hpp"
#include "stores/cron.hpp"

namespace pgkit {
namespace {

using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

// A worker whose own statement failed waits this long before it tries again.
constexpr milliseconds k_pause_after_failure{200};
// The longest a heartbeat waits; jobs with shorter timeouts get theirs at a third of it.
constexpr milliseconds k_longest_heartbeat{10000};
constexpr milliseconds k_shortest_heartbeat{20};

std::string default_worker_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0)
    host[0] = '\0';
  return std::string{host} + ":" + std::to_string(::getpid());
}

std::string what_of(const std::exception_ptr& failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "the handler threw something that is not a std::exception";
  }
}

}  // namespace

struct queue_worker::impl {
  queue_store& store;
  queue_worker_options options;
  std::map<std::string, job_handler> handlers;
  std::vector<std::string> queues;

  std::mutex mutex;
  std::condition_variable wake;
  std::condition_variable finished;
  bool stopping = false;
  bool started = false;
  bool background = false;  // start() made the threads (run_until_empty joins its own)
  std::uint64_t wakeups = 0;
  std::size_t threads_running = 0;
  std::map<std::int64_t, milliseconds> held;  // job id -> its timeout
  std::map<std::string, std::int64_t> last_tick;
  std::map<std::string, detail::cron_expression> crons;  // schedule name -> its expression
  claim_cursor cursor;  // the threads' place in the queues (claims skip what they took before)
  std::atomic<std::uint64_t> processed{0};
  std::atomic<std::uint64_t> failures{0};

  std::unique_ptr<listener> wake_listener;
  std::vector<std::thread> threads;
  std::thread maintenance;

  impl(queue_store& on, queue_worker_options given) : store(on), options(std::move(given)) {}

  void report(const error& failure) {
    if (options.on_error) {
      try {
        options.on_error(failure);
      } catch (...) {
      }
    }
  }

  void report_current() {
    try {
      throw;
    } catch (const error& e) {
      report(e);
    } catch (const std::exception& e) {
      report(error(error_kind::internal, e.what()));
    }
  }

  bool is_stopping() {
    std::lock_guard<std::mutex> guard{mutex};
    return stopping;
  }

  std::uint64_t wakeups_so_far() {
    std::lock_guard<std::mutex> guard{mutex};
    return wakeups;
  }

  // Waits up to `period` for a wake-up (a notification or stop()) later than the `seen`th. A
  // thread reads `seen` before it looks for work, so a notification that comes while it looks
  // (and finds nothing) ends its wait at once instead of being lost until the next poll.
  void idle(milliseconds period, std::uint64_t seen) {
    std::unique_lock<std::mutex> guard{mutex};
    wake.wait_for(guard, period, [&] { return stopping || wakeups != seen; });
  }

  void idle(milliseconds period) { idle(period, wakeups_so_far()); }

  void poke() {
    {
      std::lock_guard<std::mutex> guard{mutex};
      ++wakeups;
    }
    wake.notify_all();
  }

  milliseconds heartbeat_period() {
    std::lock_guard<std::mutex> guard{mutex};
    milliseconds period = k_longest_heartbeat;
    for (const auto& [id, timeout] : held)
      period = std::min(period, timeout / 3);
    return std::max(period, k_shortest_heartbeat);
  }

  void start_listener() {
    if (!options.listen)
      return;
    const auto& config = store.connections()->config();
    if (options.listen_conninfo.empty() && config.pooler == pooler_mode::pgbouncer_transaction)
      return;  // LISTEN cannot work through a transaction-mode pooler: poll
    try {
      listener_options settings;
      settings.heartbeat_interval = std::chrono::seconds{10};
      settings.connect_timeout = std::chrono::seconds{5};
      wake_listener = std::make_unique<listener>(
          options.listen_conninfo.empty()
              ? config.conninfo() + " fallback_application_name='pgkit queue worker'"
              : options.listen_conninfo,
          settings);
      wake_listener->listen(queue_channel);
    } catch (const error& e) {
      wake_listener.reset();
      report(e);  // polling goes on
    }
  }

  void enqueue_ticks() {
    if (options.schedules.empty())
      return;
    for (const auto& schedule : options.schedules) {
      auto now_ms = std::chrono::duration_cast<milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
      auto interval = tick_length(schedule).count();
      auto tick = now_ms / interval * interval;
      auto& last = last_tick[schedule.name];
      if (last == tick)
        continue;
      // Ticks this worker missed (busy, or not scheduled by the OS) are enqueued too, up to ten
      // intervals back: each tick's unique key makes every one of them once-only across workers,
      // so a tick is skipped only when every worker stalled for longer than that.
      auto first = last != 0 && tick - last <= 10 * interval ? last + interval : tick;
      enqueue_options job_options = schedule.options;
      job_options.window = unique_window::period;
      job_options.unique_period = std::max(milliseconds{interval} * 10, milliseconds{60000});
      auto cron = crons.find(schedule.name);
      job_options.run_at = std::nullopt;
      job_options.delay = milliseconds{0};
      for (auto at = first; at <= tick; at += interval) {
        if (cron != crons.end() && !cron->second.matches(at)) {
          last = at;
          continue;
        }
        job_options.unique_key = schedule.name + "@" + std::to_string(at);
        store.enqueue(schedule.queue, schedule.payload, job_options);
        last = at;
      }
    }
  }

  // A cron schedule ticks on minutes that match it.
  static milliseconds tick_length(const queue_schedule& schedule) {
    return schedule.cron.empty() ? schedule.interval : milliseconds{60000};
  }

  milliseconds until_next_tick() const {
    milliseconds next = options.poll_interval;
    auto now_ms = std::chrono::duration_cast<milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    for (const auto& schedule : options.schedules) {
      auto interval = tick_length(schedule).count();
      next = std::min(next, milliseconds{interval - now_ms % interval + 1});
    }
    return next;
  }

  void maintain() {
    auto last_heartbeat = steady::now();
    auto next_rescue = steady::now();
    for (;;) {
      {
        std::lock_guard<std::mutex> guard{mutex};
        if (stopping && threads_running == 0)
          return;
      }
      try {
        auto now = steady::now();
        if (now >= last_heartbeat + heartbeat_period()) {
          std::vector<std::int64_t> ids;
          {
            std::lock_guard<std::mutex> guard{mutex};
            for (const auto& entry : held)
              ids.push_back(entry.first);
          }
          store.heartbeat(ids, options.worker_name);
          last_heartbeat = now;
        }
        if (now >= next_rescue && !is_stopping()) {
          if (store.rescue() > 0)
            poke();
          next_rescue = now + options.poll_interval;
        }
        if (!is_stopping())
          enqueue_ticks();
      } catch (...) {
        report_current();
      }
      auto wait = std::min(
          {until_next_tick(), heartbeat_period(),
           std::chrono::duration_cast<milliseconds>(std::max(
               last_heartbeat + heartbeat_period() - steady::now(), steady::duration{0}))});
      wait = std::max(wait, milliseconds{1});
      if (wake_listener && !is_stopping()) {
        try {
          if (auto got = wake_listener->receive(wait)) {
            if (got->payload.rfind(store.schema() + " ", 0) == 0)
              poke();
          }
        } catch (...) {
          report_current();
          idle(wait);
        }
      } else {
        std::unique_lock<std::mutex> guard{mutex};
        finished.wait_for(guard, wait, [&] { return stopping && threads_running == 0; });
      }
    }
  }

  // Runs jobs until stop() (or, `until_empty`, until a claim finds nothing due).
  void work(bool until_empty) {
    for (;;) {
      if (is_stopping())
        break;
      std::uint64_t ran = 0;
      auto seen = wakeups_so_far();
      try {
        ran = run_batch(options.batch_size, until_empty);
      } catch (...) {
        report_current();
        idle(k_pause_after_failure);
        continue;
      }
      if (ran == 0 && until_empty)
        break;
      if (ran == 0)
        idle(options.poll_interval, seen);
    }
    {
      std::lock_guard<std::mutex> guard{mutex};
      --threads_running;
    }
    finished.notify_all();
    wake.notify_all();
  }

  // Claims up to `limit` jobs and runs them; returns how many it claimed. The batch's
  // completions go in one statement when it is done (heartbeats keep them meanwhile); a failed
  // attempt is recorded at once. With `sure_when_none`, finding none is checked by a walk from
  // each queue's start (the cursor may be past a job that sorts earlier).
  std::uint64_t run_batch(std::size_t limit, bool sure_when_none) {
    auto claimed = store.claim(queues, limit, options.worker_name, cursor);
    if (claimed.empty() && sure_when_none)
      claimed = store.claim(queues, limit, options.worker_name);
    {
      std::lock_guard<std::mutex> guard{mutex};
      for (const auto& next : claimed)
        held[next.id] = next.timeout;
    }
    // Whatever happens below, this thread stops sending heartbeats for the batch: jobs it
    // could not complete, fail or release are rescued after their timeout.
    struct forget_all {
      impl& self;
      const std::vector<job>& jobs;
      ~forget_all() { self.forget(jobs); }
    } forget_batch{*this, claimed};
    std::vector<job> succeeded;
    for (std::size_t index = 0; index < claimed.size(); ++index) {
      const auto& next = claimed[index];
      if (is_stopping()) {
        std::vector<job> rest(claimed.begin() + static_cast<std::ptrdiff_t>(index), claimed.end());
        store.release(rest, options.worker_name);
        break;
      }
      if (run_one(next))
        succeeded.push_back(next);
      else
        processed.fetch_add(1);
    }
    if (succeeded.size() == 1)
      store.complete(succeeded.front());
    else
      store.complete(succeeded);
    processed.fetch_add(succeeded.size());
    return claimed.size();
  }

  void forget(const std::vector<job>& done) {
    std::lock_guard<std::mutex> guard{mutex};
    for (const auto& each : done)
      held.erase(each.id);
  }

  // Runs the job's handler; records a failure at once and returns whether it succeeded.
  bool run_one(const job& next) {
    std::exception_ptr failure;
    try {
      handlers.at(next.queue)(next);
    } catch (...) {
      failure = std::current_exception();
    }
    if (!failure)
      return true;
    failures.fetch_add(1);
    store.fail(next, what_of(failure), options.backoff.delay_after(next.attempt));
    return false;
  }
};

queue_worker::queue_worker(queue_store& store, queue_worker_options options)
    : m_impl(std::make_unique<impl>(store, std::move(options))) {
  auto& settings = m_impl->options;
  if (settings.threads == 0)
    throw usage_error("a queue worker needs at least one thread");
  if (settings.batch_size == 0)
    throw usage_error("a queue worker's batch size must be at least 1");
  if (settings.poll_interval.count() <= 0)
    throw usage_error("a queue worker's poll interval must be positive");
  if (settings.worker_name.empty())
    settings.worker_name = default_worker_name();
  for (const auto& schedule : settings.schedules) {
    if (schedule.name.empty() || schedule.name.find('\0') != std::string::npos)
      throw usage_error("a schedule needs a name of text without NUL bytes");
    if (!schedule.cron.empty()) {
      m_impl->crons.emplace(schedule.name, detail::cron_expression{schedule.cron});
      continue;
    }
    if (schedule.interval < milliseconds{100}) {
      throw usage_error("the interval of schedule '" + schedule.name +
                        "' must be at least 100 ms, not " +
                        std::to_string(schedule.interval.count()) + " ms");
    }
  }
}

queue_worker::~queue_worker() {
  stop(std::chrono::seconds{30});
  for (auto& thread : m_impl->threads) {
    if (thread.joinable())
      thread.join();
  }
  if (m_impl->maintenance.joinable())
    m_impl->maintenance.join();
}

void queue_worker::handle(std::string queue, job_handler handler) {
  if (m_impl->started)
    throw usage_error("queue_worker::handle must be called before start()");
  if (!handler)
    throw usage_error("the handler of queue '" + queue + "' is empty");
  if (queue.empty() || queue.size() > 128)
    throw usage_error("a queue name must be 1 to 128 bytes long");
  if (m_impl->handlers.count(queue) == 0)
    m_impl->queues.push_back(queue);
  m_impl->handlers[std::move(queue)] = std::move(handler);
}

void queue_worker::start() {
  auto& state = *m_impl;
  if (state.started)
    throw usage_error("queue_worker::start was called twice");
  if (state.queues.empty() && state.options.schedules.empty())
    throw usage_error("a queue worker needs a handler (queue_worker::handle) or a schedule");
  state.started = true;
  state.background = true;
  state.start_listener();
  state.threads_running = state.queues.empty() ? 0 : state.options.threads;
  for (std::size_t index = 0; index < state.threads_running; ++index)
    state.threads.emplace_back([&state] { state.work(false); });
  state.maintenance = std::thread([&state] { state.maintain(); });
}

std::uint64_t queue_worker::processed() const noexcept {
  return m_impl->processed.load();
}

std::uint64_t queue_worker::failed() const noexcept {
  return m_impl->failures.load();
}

std::size_t queue_worker::run_until_empty() {
  auto& state = *m_impl;
  if (state.queues.empty())
    throw usage_error("a queue worker needs a handler (queue_worker::handle)");
  {
    std::lock_guard<std::mutex> guard{state.mutex};
    if (state.started)
      throw usage_error("queue_worker::run_until_empty cannot follow start()");
    state.started = true;
    state.threads_running = state.options.threads;
  }
  auto before = state.processed.load();
  state.maintenance = std::thread([&state] { state.maintain(); });
  std::vector<std::thread> threads;
  for (std::size_t index = 0; index < state.options.threads; ++index)
    threads.emplace_back([&state] { state.work(true); });
  for (auto& thread : threads)
    thread.join();
  {
    std::lock_guard<std::mutex> guard{state.mutex};
    state.stopping = true;
  }
  state.finished.notify_all();
  state.maintenance.join();
  return static_cast<std::size_t>(state.processed.load() - before);
}

bool queue_worker::stop(std::chrono::milliseconds deadline) {
  auto& state = *m_impl;
  {
    std::lock_guard<std::mutex> guard{state.mutex};
    if (!state.started)
      return true;
    state.stopping = true;
  }
  state.wake.notify_all();
  bool all_finished;
  {
    std::unique_lock<std::mutex> guard{state.mutex};
    all_finished =
        state.finished.wait_for(guard, deadline, [&] { return state.threads_running == 0; });
  }
  if (all_finished && state.background) {
    for (auto& thread : state.threads) {
      if (thread.joinable())
        thread.join();
    }
    if (state.wake_listener)
      state.wake_listener->stop();
    if (state.maintenance.joinable())
      state.maintenance.join();
  }
  return all_finished;
}

}  // namespace pgkit
