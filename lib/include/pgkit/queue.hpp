#pragma once
/// Background jobs in PostgreSQL: the queue store over a pool, on the `queue_job` table of the
/// `queue` module (`pgkit apply queue`), and queue_worker, which runs jobs on threads with a
/// handler per named queue. Delivery is at least once: a handler must tolerate running a job
/// twice. docs/queue.md describes the guarantees and the table in full.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <pqxx/transaction_base>

#include "pgkit/error.hpp"
#include "pgkit/pool.hpp"
#include "pgkit/store.hpp"

namespace pgkit {

/// How long a job's unique key keeps other jobs with the same key out of its queue.
enum class unique_window {
  queued,  ///< until the job is claimed by a worker
  active,  ///< until the job ends (completed, discarded or cancelled)
  period,  ///< for enqueue_options::unique_period from the enqueue, whatever the job's state
};

/// How one job is enqueued. Every field has a usable default.
struct enqueue_options {
  /// When the job becomes due (system clock); std::nullopt: now plus `delay`.
  std::optional<std::chrono::system_clock::time_point> run_at;
  /// How long after the enqueue the job becomes due, when run_at is not set (not negative).
  std::chrono::milliseconds delay{0};
  /// Among due jobs of a queue, lower numbers run first (then the earlier due time).
  int priority = 0;
  /// Runs at most this many times (at least 1); then the job is discarded.
  int max_attempts = 20;
  /// A running job whose worker sends no heartbeat for this long is given to another worker.
  std::chrono::milliseconds timeout{std::chrono::minutes{5}};
  /// While its window lasts, a second job with this key in the same queue is not created:
  /// enqueue returns the first job's id. std::nullopt: no key.
  std::optional<std::string> unique_key;
  /// The unique key's window.
  unique_window window = unique_window::active;
  /// The window's length for unique_window::period.
  std::chrono::milliseconds unique_period{std::chrono::minutes{5}};
};

/// One job to enqueue with enqueue_many.
struct job_request {
  std::string queue;             ///< the queue's name (1 to 128 bytes)
  std::string payload;           ///< bytes or JSON text, handed to the handler as they are
  enqueue_options options = {};  ///< as for enqueue
};

/// A job's state.
enum class job_state { available, running, completed, discarded, cancelled };

/// Returns the state's name ("available", "running", ...).
std::string_view to_string(job_state state) noexcept;

/// One failed attempt, as kept in a job's error history.
struct job_failure {
  int attempt = 0;                           ///< which attempt failed (1 for the first)
  std::chrono::system_clock::time_point at;  ///< when it was recorded
  std::string error;                         ///< what the handler (or the rescue) said
};

/// A job as find() read it.
struct job_info {
  std::int64_t id = 0;
  std::string queue;
  std::string payload;
  job_state state = job_state::available;
  int priority = 0;
  int attempt = 0;  ///< attempts started so far
  int max_attempts = 0;
  std::chrono::system_clock::time_point run_at;  ///< when it is (or was last) due
  std::vector<job_failure> errors;               ///< every failed attempt, oldest first
};

/// A job claimed by a worker, as its handler sees it.
struct job {
  std::int64_t id = 0;
  std::string queue;
  std::string payload;
  int attempt = 0;  ///< this attempt's number (1 for the first)
  int max_attempts = 0;
  std::chrono::milliseconds timeout{0};
};

/// How many jobs of one queue are in one state.
struct queue_count {
  std::string queue;
  job_state state = job_state::available;
  std::uint64_t jobs = 0;
};

/// How a queue store behaves.
struct queue_options {
  /// The schema holding the `queue_job` table; empty: the pool's `schema`, else "pgkit".
  std::string schema;
};

/// The retry schedule of failed jobs: attempt n waits first_retry_delay * 2^(n-1), at most
/// max_retry_delay, scaled by a random factor in [1 - jitter, 1 + jitter].
struct backoff_options {
  std::chrono::milliseconds first_retry_delay{std::chrono::seconds{1}};
  std::chrono::milliseconds max_retry_delay{std::chrono::hours{1}};
  double jitter = 0.25;  ///< from 0 to 0.3, so that a later delay is never shorter

  /// Returns the delay after failed attempt number `attempt` (1 for the first), with jitter.
  std::chrono::milliseconds delay_after(int attempt) const;
};

/// The channel enqueue notifies on commit, with payload "SCHEMA QUEUE".
inline constexpr std::string_view queue_channel = "pgkit_queue";

/// A claimer's place in the claim order of its queues. claim() with a cursor starts each
/// queue's index walk where its last claim ended instead of at the queue's first due job, so it
/// does not step again over the jobs claimed before. That matters while a long transaction
/// elsewhere pins the xmin horizon: VACUUM may not remove those jobs' old entries from the claim
/// index then, and a walk from the start grows slower with every job claimed (docs/queue.md,
/// "Dead tuples"). Jobs that sort before the cursor (a higher priority enqueued later, a
/// transaction that committed after a later one, a released job) are found by a walk from the
/// start, which claim() makes at least every `full_walk_every` (a second by default) while jobs
/// are found and at once when the cursor's walk finds none, but never so often that such walks
/// take more than a twentieth of the time. Thread-safe: the threads of one worker share one.
/// Non-copyable.
class claim_cursor {
 public:
  explicit claim_cursor(std::chrono::milliseconds full_walk_every = std::chrono::seconds{1})
      : m_full_walk_every(full_walk_every) {}
  claim_cursor(const claim_cursor&) = delete;
  claim_cursor& operator=(const claim_cursor&) = delete;

 private:
  friend class queue_store;
  // The claim order of the last job claimed from a queue: its priority, due time
  // (microseconds since 2000-01-01 UTC, exact) and id. The next walk starts after it.
  struct position {
    std::int64_t priority = 0;
    std::int64_t due_us = 0;
    std::int64_t id = 0;
    bool operator<(const position& other) const {
      if (priority != other.priority)
        return priority < other.priority;
      return due_us != other.due_us ? due_us < other.due_us : id < other.id;
    }
  };
  std::chrono::milliseconds m_full_walk_every;
  std::mutex m_mutex;
  std::map<std::string, position> m_positions;
  std::chrono::steady_clock::time_point m_last_full{};
  std::chrono::steady_clock::duration m_full_cost{};
  bool m_full_running = false;
};

/// The queue store over a pool. Thread-safe; each call borrows a connection for itself.
/// Non-copyable. Queue names are 1 to 128 bytes of text without NUL; payloads are bytes.
class queue_store {
 public:
  /// Creates a store on `connections`. Throws usage_error for a null pool or a schema name
  /// that is not a plain identifier. Checks nothing on the server (see check()).
  explicit queue_store(std::shared_ptr<pool> connections, queue_options options = {});
  ~queue_store();
  queue_store(const queue_store&) = delete;
  queue_store& operator=(const queue_store&) = delete;

  /// Returns the schema this store uses.
  const std::string& schema() const noexcept { return m_schema; }
  /// Returns the pool this store uses.
  const std::shared_ptr<pool>& connections() const noexcept { return m_pool; }

  /// Throws pgkit::error of kind undefined_object, hinting at `pgkit apply queue`, when the
  /// queue_job table does not exist in the schema; other failures as pgkit::error.
  void check();

  /// Adds a job and returns its id (with a unique key that is taken: the id of the job holding
  /// it, and nothing is added). Workers listening are notified on commit. Throws usage_error
  /// for an invalid queue name or option, pgkit::error for database failures.
  std::int64_t enqueue(std::string_view queue, std::string_view payload,
                       const enqueue_options& options = {});
  /// Same, inside the caller's open transaction `tx`: the job exists (and workers hear of it)
  /// only if `tx` commits.
  std::int64_t enqueue(pqxx::transaction_base& tx, std::string_view queue, std::string_view payload,
                       const enqueue_options& options = {});
  /// Adds every job in one statement (one round trip) and returns their ids in order. Unique
  /// keys are refused here (usage_error): use enqueue for those.
  std::vector<std::int64_t> enqueue_many(const std::vector<job_request>& jobs);

  /// Claims up to `limit` due jobs of `queues` (lower priority first, then earlier due), with
  /// FOR UPDATE SKIP LOCKED: never one another worker holds. Each becomes `running` under
  /// `worker` with its attempt counted.
  std::vector<job> claim(const std::vector<std::string>& queues, std::size_t limit,
                         std::string_view worker);
  /// Same, starting each queue's walk at `cursor` (see claim_cursor), which it moves on. The
  /// order is the same except for jobs that sort before the cursor: those wait for the next
  /// walk from the start (at most about a second while the queues are busy).
  std::vector<job> claim(const std::vector<std::string>& queues, std::size_t limit,
                         std::string_view worker, claim_cursor& cursor);
  /// Marks a claimed job completed; returns false when the claim is no longer the job's (it
  /// was rescued, cancelled or retried meanwhile).
  bool complete(const job& claimed);
  /// Marks several claimed jobs completed in one statement (one round trip); returns how many
  /// of them were still the claimant's (the others are left as complete() leaves them).
  std::size_t complete(const std::vector<job>& claimed);
  /// Records a failed attempt with `error`: the job is due again after `retry_in`, or
  /// discarded when it has used max_attempts. Returns false like complete().
  bool fail(const job& claimed, std::string_view error, std::chrono::milliseconds retry_in);
  /// Gives jobs `worker` claimed back unstarted (their attempt is not counted). Returns how
  /// many.
  std::size_t release(const std::vector<job>& claimed, std::string_view worker);
  /// Refreshes the heartbeat of jobs `worker` runs; returns how many are still its own.
  std::size_t heartbeat(const std::vector<std::int64_t>& ids, std::string_view worker);
  /// Makes running jobs whose heartbeat is older than their timeout due again (or discarded
  /// when they used max_attempts), recording "timed out" in their history. Returns how many.
  std::size_t rescue();

  /// Cancels an available or running job; returns false when it is missing or already ended.
  bool cancel(std::int64_t id);
  /// Makes a discarded or cancelled job due now with its attempts reset (history kept);
  /// returns false when it is missing or not in such a state.
  bool retry(std::int64_t id);
  /// Retries every discarded job of `queue`; returns how many.
  std::size_t retry_discarded(std::string_view queue);
  /// Returns the job, or std::nullopt.
  std::optional<job_info> find(std::int64_t id);
  /// Returns how many jobs each queue has in each state (states without jobs left out),
  /// ordered by queue then state.
  std::vector<queue_count> stats();
  /// Deletes completed, discarded and cancelled jobs that ended more than `retention` ago, in
  /// short batches like the other stores' sweeps. Throws usage_error for a negative retention.
  sweep_result prune(std::chrono::milliseconds retention, const sweep_options& options = {});

 private:
  struct statements;
  std::shared_ptr<pool> m_pool;
  std::string m_schema;
  std::unique_ptr<const statements> m_sql;
};

/// Runs `payload`-style jobs: throws to fail the attempt (the exception's what() is recorded).
using job_handler = std::function<void(const job&)>;

/// A periodic job: one job enqueued per tick, however many workers carry the same schedule.
/// The ticks are those of `cron` when it is set, else one per `interval` counted from the Unix
/// epoch, both on each worker's system clock.
struct queue_schedule {
  std::string name;   ///< identifies the schedule (part of each tick's unique key)
  std::string queue;  ///< where the jobs go
  std::chrono::milliseconds interval{std::chrono::minutes{1}};  ///< at least 100 ms
  /// A cron expression in UTC: minute hour day-of-month month day-of-week, each `*`, N, A-B,
  /// with an optional step `/S`, or a comma-separated list; or @hourly, @daily, @weekly,
  /// @monthly, @yearly. Each matching minute is a tick. Empty: `interval`.
  std::string cron;
  std::string payload;           ///< each job's payload
  enqueue_options options = {};  ///< priority, max_attempts, timeout of each job
};

/// How a worker runs.
struct queue_worker_options {
  /// Threads running jobs (at least 1).
  std::size_t threads = 1;
  /// Jobs a thread claims at once (at least 1).
  std::size_t batch_size = 1;
  /// How often an idle thread looks for due jobs without being woken.
  std::chrono::milliseconds poll_interval{std::chrono::seconds{1}};
  /// The retry schedule of failed jobs.
  backoff_options backoff;
  /// Where the wake-up listener connects; empty: the pool's connection settings. Behind a
  /// transaction-mode pooler without one, the worker polls only.
  std::string listen_conninfo;
  /// Set to false to poll only.
  bool listen = true;
  /// Names the worker in running jobs; empty: "HOST:PID".
  std::string worker_name;
  /// Periodic jobs this worker enqueues.
  std::vector<queue_schedule> schedules;
  /// Receives failures of the worker's own statements (it goes on after a pause); called on a
  /// worker thread; must not throw.
  std::function<void(const pgkit::error&)> on_error;
};

/// Runs the jobs of named queues on threads. Non-copyable. The store must outlive it.
class queue_worker {
 public:
  /// Throws usage_error for invalid options.
  explicit queue_worker(queue_store& store, queue_worker_options options = {});
  /// Stops like stop(std::chrono::seconds{30}).
  ~queue_worker();
  queue_worker(const queue_worker&) = delete;
  queue_worker& operator=(const queue_worker&) = delete;

  /// Runs `handler` for jobs of `queue`. Call before start(); throws usage_error otherwise.
  void handle(std::string queue, job_handler handler);
  /// Starts the threads (and the wake-up listener, heartbeat, rescue and schedules).
  void start();
  /// Stops claiming, gives back claimed jobs not yet started, and waits up to `deadline` for
  /// running handlers; returns true when they all finished. Jobs still running then keep
  /// their claim and are rescued after their timeout.
  bool stop(std::chrono::milliseconds deadline);
  /// Runs due jobs on options.threads threads, with heartbeats, until none is due (or stop()
  /// is called from another thread); returns how many ran. Instead of start(), for scripts.
  std::size_t run_until_empty();
  /// Returns the jobs this worker has finished (completed or failed) so far.
  std::uint64_t processed() const noexcept;
  /// Returns the attempts this worker's handlers failed so far.
  std::uint64_t failed() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> m_impl;
};

}  // namespace pgkit
