#include "pgkit/queue.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <random>

#include "core/pqxx_compat.hpp"
#include "core/ttl_limit.hpp"
#include "pgkit/config.hpp"
#include "pgkit/migration.hpp"
#include "stores/expiry_sweep.hpp"
#include "stores/module_check.hpp"
#include "stores/queue_statements.hpp"
#include "stores/statements.hpp"
#include "stores/text_array.hpp"

namespace pgkit {
namespace {

using detail::binary_param;
using detail::bound_param;
using detail::int_param;
using detail::statement;
using detail::text_param;
using std::chrono::milliseconds;

// prune() deletes this many rows per batch unless told otherwise.
constexpr std::size_t k_prune_batch = 1000;

std::int64_t epoch_ms(std::chrono::system_clock::time_point at) {
  return std::chrono::duration_cast<milliseconds>(at.time_since_epoch()).count();
}

std::chrono::system_clock::time_point from_epoch_ms(std::int64_t ms) {
  return std::chrono::system_clock::time_point{
      std::chrono::duration_cast<std::chrono::system_clock::duration>(milliseconds{ms})};
}

void check_queue_name(std::string_view queue) {
  if (queue.empty() || queue.size() > 128) {
    throw usage_error(
        "a queue name must be 1 to 128 bytes long, not " + std::to_string(queue.size()),
        "name the queue, e.g. \"email\"");
  }
  if (queue.find('\0') != std::string_view::npos)
    throw usage_error("the queue name contains a NUL byte", "use text for queue names");
}

void check_options(const enqueue_options& options) {
  if (options.delay.count() < 0) {
    throw usage_error("a job's delay must not be negative, not " +
                      std::to_string(options.delay.count()) + " ms");
  }
  detail::check_ttl_limit(options.delay, "a job's delay", detail::ttl_of::job);
  if (options.max_attempts < 1) {
    throw usage_error("a job's max_attempts must be at least 1, not " +
                      std::to_string(options.max_attempts));
  }
  if (options.timeout.count() <= 0) {
    throw usage_error("a job's timeout must be positive, not " +
                      std::to_string(options.timeout.count()) + " ms");
  }
  detail::check_ttl_limit(options.timeout, "a job's timeout", detail::ttl_of::job);
  if (options.unique_key) {
    if (options.unique_key->empty() || options.unique_key->find('\0') != std::string::npos)
      throw usage_error("a job's unique key must be non-empty text without NUL bytes");
    if (options.window == unique_window::period && options.unique_period.count() <= 0)
      throw usage_error("a unique key's period must be positive");
    detail::check_ttl_limit(options.unique_period, "a unique key's period", detail::ttl_of::job);
  }
}

std::string_view window_name(unique_window window) {
  switch (window) {
    case unique_window::queued:
      return "queued";
    case unique_window::period:
      return "period";
    case unique_window::active:
      break;
  }
  return "active";
}

job_state state_of(std::string_view name) {
  for (auto state : {job_state::available, job_state::running, job_state::completed,
                     job_state::discarded, job_state::cancelled}) {
    if (to_string(state) == name)
      return state;
  }
  throw error(error_kind::internal, "unknown job state '" + std::string{name} + "'");
}

std::string hex_bytea(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out = "\\x";
  out.reserve(2 + bytes.size() * 2);
  for (char c : bytes) {
    auto byte = static_cast<unsigned char>(c);
    out += digits[byte >> 4];
    out += digits[byte & 15];
  }
  return out;
}

std::string id_array(const std::vector<std::int64_t>& ids) {
  std::vector<std::string> texts;
  texts.reserve(ids.size());
  for (auto id : ids)
    texts.push_back(std::to_string(id));
  return detail::text_array(texts);
}

}  // namespace

std::string_view to_string(job_state state) noexcept {
  switch (state) {
    case job_state::available:
      return "available";
    case job_state::running:
      return "running";
    case job_state::completed:
      return "completed";
    case job_state::discarded:
      return "discarded";
    case job_state::cancelled:
      return "cancelled";
  }
  return "available";
}

milliseconds backoff_options::delay_after(int attempt) const {
  thread_local std::mt19937_64 random{std::random_device{}()};
  double base = static_cast<double>(first_retry_delay.count()) *
                std::pow(2.0, static_cast<double>(std::max(attempt, 1) - 1));
  base = std::min(base, static_cast<double>(max_retry_delay.count()));
  double spread = std::clamp(jitter, 0.0, 0.3);
  std::uniform_real_distribution<double> factor{1.0 - spread, 1.0 + spread};
  return milliseconds{static_cast<std::int64_t>(base * factor(random))};
}

struct queue_store::statements {
  explicit statements(const std::string& schema)
      : enqueue(make(detail::queue_sql::k_enqueue, schema)),
        unique_holder(make(detail::queue_sql::k_unique_holder, schema)),
        unique_expire(make(detail::queue_sql::k_unique_expire, schema)),
        enqueue_many(make(detail::queue_sql::k_enqueue_many, schema)),
        claim(make(detail::queue_sql::k_claim, schema)),
        complete(make(detail::queue_sql::k_complete, schema)),
        complete_many(make(detail::queue_sql::k_complete_many, schema)),
        fail(make(detail::queue_sql::k_fail, schema)),
        release(make(detail::queue_sql::k_release, schema)),
        heartbeat(make(detail::queue_sql::k_heartbeat, schema)),
        rescue(make(detail::queue_sql::k_rescue, schema)),
        cancel(make(detail::queue_sql::k_cancel, schema)),
        retry(make(detail::queue_sql::k_retry, schema)),
        find(make(detail::queue_sql::k_find, schema)),
        stats(make(detail::queue_sql::k_stats, schema)),
        prune(make(detail::queue_sql::k_prune, schema)),
        count_prunable(make(detail::queue_sql::k_count_prunable, schema)) {}

  static statement make(const detail::statement_text& text, const std::string& schema) {
    return detail::make_statement("queue", text, schema);
  }

  statement enqueue, unique_holder, unique_expire, enqueue_many, claim, complete, complete_many,
      fail, release, heartbeat, rescue, cancel, retry, find, stats, prune, count_prunable;
};

namespace {

// Runs one of the store's statements on `on`; a missing table gets the apply hint.
detail::result run_queue(const detail::wire& on, const statement& stmt,
                         const std::vector<bound_param>& parameters, const char* context,
                         const std::string& schema) {
  try {
    return on.run(stmt, parameters, detail::result_format::binary, context);
  } catch (const error& e) {
    detail::rethrow_store_error(e, "queue", schema);
  }
}

// enqueue on `on` (the store's lease or the caller's transaction).
std::int64_t enqueue_on(const detail::wire& on, const queue_store& store, const statement& insert,
                        const statement& holder, const statement& expire, std::string_view queue,
                        std::string_view payload, const enqueue_options& options) {
  check_queue_name(queue);
  check_options(options);
  std::optional<std::int64_t> run_at;
  if (options.run_at)
    run_at = epoch_ms(*options.run_at);
  const auto& schema = store.schema();
  std::vector<bound_param> parameters{text_param(queue),
                                      binary_param(payload),
                                      int_param(options.delay.count()),
                                      int_param(run_at),
                                      int_param(options.priority),
                                      int_param(options.max_attempts),
                                      int_param(options.timeout.count()),
                                      bound_param{},
                                      bound_param{},
                                      int_param(options.unique_period.count()),
                                      text_param(schema)};
  if (!options.unique_key)
    return run_queue(on, insert, parameters, "enqueueing a job", schema).int8(0, 0);
  parameters[7] = text_param(*options.unique_key);
  parameters[8] = text_param(window_name(options.window));
  std::vector<bound_param> key{text_param(queue), text_param(*options.unique_key)};
  // A holder can end between the insert and the look-up; a few rounds settle it.
  for (int round = 0;; ++round) {
    run_queue(on, expire, key, "enqueueing a job", schema);
    auto inserted = run_queue(on, insert, parameters, "enqueueing a job", schema);
    if (inserted.rows() > 0)
      return inserted.int8(0, 0);
    auto found = run_queue(on, holder, key, "enqueueing a job", schema);
    if (found.rows() > 0)
      return found.int8(0, 0);
    if (round == 5) {
      throw error(error_kind::internal, "enqueueing a job: the unique key '" + *options.unique_key +
                                            "' was taken and released again five times in a row");
    }
  }
}

}  // namespace

queue_store::queue_store(std::shared_ptr<pool> connections, queue_options options)
    : m_pool{std::move(connections)} {
  if (!m_pool)
    throw usage_error("a queue store needs a pool, not a null pointer");
  m_schema = resolve_schema(options.schema, m_pool->config());
  validate_schema_name(m_schema);
  m_sql = std::make_unique<const statements>(m_schema);
}

queue_store::~queue_store() = default;

void queue_store::check() {
  detail::check_module_table(*m_pool->acquire(), "queue", m_schema, "queue_job");
}

std::int64_t queue_store::enqueue(std::string_view queue, std::string_view payload,
                                  const enqueue_options& options) {
  check_queue_name(queue);
  check_options(options);
  auto lease = m_pool->acquire();
  return enqueue_on(detail::wire_of(lease), *this, m_sql->enqueue, m_sql->unique_holder,
                    m_sql->unique_expire, queue, payload, options);
}

std::int64_t queue_store::enqueue(pqxx::transaction_base& tx, std::string_view queue,
                                  std::string_view payload, const enqueue_options& options) {
  return enqueue_on(detail::wire::of(tx), *this, m_sql->enqueue, m_sql->unique_holder,
                    m_sql->unique_expire, queue, payload, options);
}

std::vector<std::int64_t> queue_store::enqueue_many(const std::vector<job_request>& jobs) {
  std::vector<std::string> queues, payloads, delays, run_ats, priorities, attempts, timeouts;
  for (const auto& request : jobs) {
    check_queue_name(request.queue);
    check_options(request.options);
    if (request.options.unique_key) {
      throw usage_error("enqueue_many does not take unique keys",
                        "enqueue jobs with a unique key one by one with enqueue");
    }
    queues.push_back(request.queue);
    payloads.push_back(hex_bytea(request.payload));
    delays.push_back(std::to_string(request.options.delay.count()));
    run_ats.push_back(
        std::to_string(request.options.run_at ? epoch_ms(*request.options.run_at) : -1));
    priorities.push_back(std::to_string(request.options.priority));
    attempts.push_back(std::to_string(request.options.max_attempts));
    timeouts.push_back(std::to_string(request.options.timeout.count()));
  }
  if (jobs.empty())
    return {};
  auto lease = m_pool->acquire();
  auto rows = run_queue(
      detail::wire_of(lease), m_sql->enqueue_many,
      {text_param(detail::text_array(queues)), text_param(detail::text_array(payloads)),
       text_param(detail::text_array(delays)), text_param(detail::text_array(run_ats)),
       text_param(detail::text_array(priorities)), text_param(detail::text_array(attempts)),
       text_param(detail::text_array(timeouts)), text_param(m_schema)},
      "enqueueing jobs", m_schema);
  std::vector<std::int64_t> ids;
  for (int row = 0; row < rows.rows(); ++row)
    ids.push_back(rows.int8(row, 0));
  return ids;
}

namespace {

// claim_cursor's walks from the start take at most one part in this many of the time (a walk's
// own duration counts).
constexpr int k_full_walk_share = 20;

// A claimed job with its place in the claim order: priority, due time (microseconds since
// 2000-01-01 UTC: timestamptz in binary), id.
struct claimed_row {
  job claimed;
  std::int64_t priority = 0;
  std::int64_t due_us = 0;
};

// `{1,NULL,3}`: a bigint array literal with NULL for the missing ones.
std::string int_array(const std::vector<std::optional<std::int64_t>>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0)
      out += ',';
    out += items[i] ? std::to_string(*items[i]) : "NULL";
  }
  return out + "}";
}

// Where each queue's walk starts, parallel to the queues: nullopt for its first due job.
struct walk_starts {
  explicit walk_starts(std::size_t queues) : priorities(queues), dues(queues), ids(queues) {}
  std::vector<std::optional<std::int64_t>> priorities, dues, ids;
};

// Runs the claim statement. Rows come back in id order (UPDATE ... RETURNING keeps no order).
std::vector<claimed_row> claim_rows(pool& connections, const statement& claim,
                                    const std::string& schema,
                                    const std::vector<std::string>& queues, std::size_t limit,
                                    std::string_view worker, const walk_starts& from) {
  auto lease = connections.acquire();
  auto rows = run_queue(
      detail::wire_of(lease), claim,
      {text_param(detail::text_array(queues)), int_param(static_cast<std::int64_t>(limit)),
       text_param(worker), text_param(int_array(from.priorities)), text_param(int_array(from.dues)),
       text_param(int_array(from.ids))},
      "claiming jobs", schema);
  std::vector<claimed_row> claimed;
  for (int row = 0; row < rows.rows(); ++row) {
    claimed_row next;
    next.claimed.id = rows.int8(row, 0);
    next.claimed.queue = rows.bytes(row, 1);
    next.claimed.payload = rows.bytes(row, 2);
    next.claimed.attempt = static_cast<int>(rows.int8(row, 3));
    next.claimed.max_attempts = static_cast<int>(rows.int8(row, 4));
    next.claimed.timeout = milliseconds{rows.int8(row, 5)};
    next.priority = rows.int8(row, 6);
    next.due_us = rows.int8(row, 7);
    claimed.push_back(std::move(next));
  }
  std::sort(claimed.begin(), claimed.end(),
            [](const claimed_row& a, const claimed_row& b) { return a.claimed.id < b.claimed.id; });
  return claimed;
}

std::vector<job> jobs_of(std::vector<claimed_row>&& rows) {
  std::vector<job> jobs;
  jobs.reserve(rows.size());
  for (auto& row : rows)
    jobs.push_back(std::move(row.claimed));
  return jobs;
}

}  // namespace

std::vector<job> queue_store::claim(const std::vector<std::string>& queues, std::size_t limit,
                                    std::string_view worker) {
  if (limit == 0 || queues.empty())
    return {};
  return jobs_of(claim_rows(*m_pool, m_sql->claim, m_schema, queues, limit, worker,
                            walk_starts{queues.size()}));
}

std::vector<job> queue_store::claim(const std::vector<std::string>& queues, std::size_t limit,
                                    std::string_view worker, claim_cursor& cursor) {
  if (limit == 0 || queues.empty())
    return {};
  using steady = std::chrono::steady_clock;
  // Whether a walk from the start may run now (none running, and the last one's cost is paid
  // off); with `due`, only when one is also due by the clock. (A queue without a position is
  // walked from its start by the cursor's walk too.)
  const auto begin_full_walk = [&](bool due) {
    std::lock_guard<std::mutex> guard{cursor.m_mutex};
    auto now = steady::now();
    auto since = now - cursor.m_last_full;
    if (cursor.m_full_running || since < k_full_walk_share * cursor.m_full_cost)
      return false;
    if (due && since < cursor.m_full_walk_every)
      return false;
    cursor.m_full_running = true;
    cursor.m_last_full = now;
    return true;
  };
  // Moves each queue's position to where `rows` of it end: only on, unless `back` (call with
  // the cursor's mutex held).
  const auto move_to_ends = [&](const std::vector<claimed_row>& rows, bool back) {
    std::map<std::string, claim_cursor::position> ends;
    for (const auto& row : rows) {
      claim_cursor::position at{row.priority, row.due_us, row.claimed.id};
      auto [found, added] = ends.emplace(row.claimed.queue, at);
      if (!added && found->second < at)
        found->second = at;
    }
    for (const auto& [queue, at] : ends) {
      auto [found, added] = cursor.m_positions.emplace(queue, at);
      if (!added && (back || found->second < at))
        found->second = at;
    }
  };
  // A walk from the start: a full batch moves each queue's position to where it ended, even
  // back (jobs that sort before it are waiting); a short one means every due job was taken, so
  // positions only move on.
  const auto full_walk = [&] {
    auto started = steady::now();
    std::vector<claimed_row> rows;
    try {
      rows = claim_rows(*m_pool, m_sql->claim, m_schema, queues, limit, worker,
                        walk_starts{queues.size()});
    } catch (...) {
      std::lock_guard<std::mutex> guard{cursor.m_mutex};
      cursor.m_full_running = false;
      throw;
    }
    std::lock_guard<std::mutex> guard{cursor.m_mutex};
    cursor.m_full_running = false;
    cursor.m_full_cost = steady::now() - started;
    move_to_ends(rows, rows.size() == limit);
    return rows;
  };
  if (begin_full_walk(true))
    return jobs_of(full_walk());

  walk_starts from{queues.size()};
  {
    std::lock_guard<std::mutex> guard{cursor.m_mutex};
    for (std::size_t i = 0; i < queues.size(); ++i) {
      auto found = cursor.m_positions.find(queues[i]);
      if (found != cursor.m_positions.end()) {
        from.priorities[i] = found->second.priority;
        from.dues[i] = found->second.due_us;
        from.ids[i] = found->second.id;
      }
    }
  }
  auto rows = claim_rows(*m_pool, m_sql->claim, m_schema, queues, limit, worker, from);
  if (rows.empty())
    return begin_full_walk(false) ? jobs_of(full_walk()) : std::vector<job>{};
  {
    std::lock_guard<std::mutex> guard{cursor.m_mutex};
    move_to_ends(rows, false);
  }
  return jobs_of(std::move(rows));
}

bool queue_store::complete(const job& claimed) {
  auto lease = m_pool->acquire();
  return run_queue(detail::wire_of(lease), m_sql->complete,
                   {int_param(claimed.id), int_param(claimed.attempt)}, "completing a job",
                   m_schema)
             .affected_rows() > 0;
}

std::size_t queue_store::complete(const std::vector<job>& claimed) {
  if (claimed.empty())
    return 0;
  std::vector<std::int64_t> ids, attempts;
  for (const auto& finished : claimed) {
    ids.push_back(finished.id);
    attempts.push_back(finished.attempt);
  }
  auto lease = m_pool->acquire();
  auto rows = run_queue(detail::wire_of(lease), m_sql->complete_many,
                        {text_param(id_array(ids)), text_param(id_array(attempts))},
                        "completing jobs", m_schema);
  return static_cast<std::size_t>(rows.affected_rows());
}

bool queue_store::fail(const job& claimed, std::string_view error_text, milliseconds retry_in) {
  auto lease = m_pool->acquire();
  // Text cannot hold NUL bytes; the history keeps what comes before one.
  auto said = error_text.substr(0, error_text.find('\0'));
  return run_queue(detail::wire_of(lease), m_sql->fail,
                   {int_param(claimed.id), int_param(claimed.attempt), text_param(said),
                    int_param(std::max<std::int64_t>(retry_in.count(), 0))},
                   "recording a failed job", m_schema)
             .affected_rows() > 0;
}

std::size_t queue_store::release(const std::vector<job>& claimed, std::string_view worker) {
  if (claimed.empty())
    return 0;
  std::vector<std::int64_t> ids;
  for (const auto& held : claimed)
    ids.push_back(held.id);
  auto lease = m_pool->acquire();
  auto rows =
      run_queue(detail::wire_of(lease), m_sql->release,
                {text_param(id_array(ids)), text_param(worker)}, "releasing jobs", m_schema);
  return static_cast<std::size_t>(rows.affected_rows());
}

std::size_t queue_store::heartbeat(const std::vector<std::int64_t>& ids, std::string_view worker) {
  if (ids.empty())
    return 0;
  auto lease = m_pool->acquire();
  auto rows =
      run_queue(detail::wire_of(lease), m_sql->heartbeat,
                {text_param(id_array(ids)), text_param(worker)}, "sending heartbeats", m_schema);
  return static_cast<std::size_t>(rows.affected_rows());
}

std::size_t queue_store::rescue() {
  auto lease = m_pool->acquire();
  auto rows =
      run_queue(detail::wire_of(lease), m_sql->rescue, {}, "rescuing timed-out jobs", m_schema);
  return static_cast<std::size_t>(rows.affected_rows());
}

bool queue_store::cancel(std::int64_t id) {
  auto lease = m_pool->acquire();
  return run_queue(detail::wire_of(lease), m_sql->cancel, {int_param(id)}, "cancelling a job",
                   m_schema)
             .affected_rows() > 0;
}

bool queue_store::retry(std::int64_t id) {
  auto lease = m_pool->acquire();
  return run_queue(detail::wire_of(lease), m_sql->retry,
                   {int_param(id), bound_param{}, text_param(m_schema)}, "retrying a job", m_schema)
             .int8(0, 0) > 0;
}

std::size_t queue_store::retry_discarded(std::string_view queue) {
  check_queue_name(queue);
  auto lease = m_pool->acquire();
  return static_cast<std::size_t>(
      run_queue(detail::wire_of(lease), m_sql->retry,
                {bound_param{}, text_param(queue), text_param(m_schema)}, "retrying discarded jobs",
                m_schema)
          .int8(0, 0));
}

std::optional<job_info> queue_store::find(std::int64_t id) {
  auto lease = m_pool->acquire();
  auto rows =
      run_queue(detail::wire_of(lease), m_sql->find, {int_param(id)}, "reading a job", m_schema);
  if (rows.rows() == 0)
    return std::nullopt;
  job_info info;
  info.id = id;
  info.queue = rows.bytes(0, 0);
  info.payload = rows.bytes(0, 1);
  info.state = state_of(rows.view(0, 2));
  info.priority = static_cast<int>(rows.int8(0, 3));
  info.attempt = static_cast<int>(rows.int8(0, 4));
  info.max_attempts = static_cast<int>(rows.int8(0, 5));
  info.run_at = from_epoch_ms(rows.int8(0, 6));
  for (int row = 0; row < rows.rows(); ++row) {
    if (rows.is_null(row, 7))
      continue;
    info.errors.push_back({static_cast<int>(rows.int8(row, 7)), from_epoch_ms(rows.int8(row, 8)),
                           rows.bytes(row, 9)});
  }
  return info;
}

std::vector<queue_count> queue_store::stats() {
  auto lease = m_pool->acquire();
  auto rows = run_queue(detail::wire_of(lease), m_sql->stats, {}, "counting jobs", m_schema);
  std::vector<queue_count> counts;
  for (int row = 0; row < rows.rows(); ++row) {
    counts.push_back({rows.bytes(row, 0), state_of(rows.view(row, 1)),
                      static_cast<std::uint64_t>(rows.int8(row, 2))});
  }
  return counts;
}

sweep_result queue_store::prune(milliseconds retention, const sweep_options& options) {
  if (retention.count() < 0) {
    throw usage_error("the retention must not be negative, not " +
                      std::to_string(retention.count()) + " ms");
  }
  if (options.resource_type || options.scope != sweep_scope::all) {
    throw usage_error("sweep_options::resource_type and scope are for the cache and sessions",
                      "leave them unset for the queue");
  }
  sweep_options settings = options;
  settings.batch_size = options.batch_size.value_or(k_prune_batch);
  detail::expiry_sweep::check(settings);
  auto lease = m_pool->acquire();
  detail::expiry_sweep sweep{detail::wire_of(lease), settings, "finished jobs", "queue-prune"};
  detail::sweep_target target{
      &m_sql->prune, &m_sql->count_prunable, {int_param(retention.count())}, nullptr, {}};
  try {
    sweep.sweep(target);
  } catch (const error& e) {
    detail::rethrow_store_error(e, "queue", m_schema);
  }
  auto result = sweep.result();
  result.tables.push_back({"queue_job", result.deleted});
  return result;
}

}  // namespace pgkit
