#include "stores/expiry_sweep.hpp"

#include <algorithm>

#include "pgkit/error.hpp"

namespace pgkit::detail {
namespace {

// The first batch of a run gets at least this long, so that a run under a tiny limit still
// makes progress.
constexpr std::chrono::milliseconds k_first_batch_floor{1000};

constexpr statement_text k_set_lock_timeout{"lock_timeout",
                                            "SELECT set_config('lock_timeout', $1, true)"};
// Whether this batch is the table's only sweep right now (the lock ends with the transaction);
// the class id keeps pgkit's keys apart from the application's one-argument advisory locks.
constexpr statement_text k_lock_alone{"lock_alone",
                                      "SELECT set_config('lock_timeout', $1, true), "
                                      "pg_try_advisory_xact_lock(1885824107, hashtext($2))"};
// A batch that runs alone waits this long at most for a row (or the table) before it is redone
// the SKIP LOCKED way; rows held by writers are held for one short statement.
constexpr std::chrono::milliseconds k_alone_lock_timeout{50};

}  // namespace

expiry_sweep::expiry_sweep(const wire& on, const sweep_options& options, std::string what,
                           std::string rerun)
    : m_wire(on),
      m_options(options),
      m_batch_size(options.batch_size.value_or(k_default_sweep_batch)),
      m_lock_timeout_value(options.lock_timeout.value_or(k_default_sweep_lock_timeout)),
      m_what(std::move(what)),
      m_rerun(std::move(rerun)),
      m_started(steady_clock::now()),
      m_lock_timeout(make_statement("sweep", k_set_lock_timeout, "")),
      m_lock_alone(make_statement("sweep", k_lock_alone, "")) {
  check(options);
  if (options.max_duration)
    m_control.timeout = *options.max_duration;
}

void expiry_sweep::check(const sweep_options& options) {
  if (options.batch_size && *options.batch_size == 0)
    throw usage_error("the batch size is 0", "give a batch size of at least 1");
  if (options.max_duration && options.max_duration->count() <= 0)
    throw usage_error("the time limit is not positive", "give a time limit above zero");
}

std::uint64_t expiry_sweep::sweep(const sweep_target& target) {
  const std::string context = "deleting " + m_what;
  if (m_options.dry_run) {
    // The count waits for the table's lock like a batch does, under the same deadline.
    if (m_options.max_duration) {
      m_control.deadline =
          std::max(m_started + *m_options.max_duration, m_started + k_first_batch_floor);
    }
    std::int64_t counted = 0;
    try {
      counted = m_wire
                    .run(*target.count, target.extra, result_format::binary, "counting " + m_what,
                         m_control)
                    .int8(0, 0);
    } catch (const error&) {
      fail("counting " + m_what);
    }
    m_result.deleted += static_cast<std::uint64_t>(counted);
    return static_cast<std::uint64_t>(counted);
  }
  std::vector<bound_param> parameters{int_param(static_cast<std::int64_t>(m_batch_size))};
  parameters.insert(parameters.end(), target.extra.begin(), target.extra.end());
  const std::vector<bound_param> lock_timeout{
      text_param(std::to_string(m_lock_timeout_value.count()) + "ms")};
  const std::vector<bound_param> lock_alone{
      text_param(std::to_string(std::min(m_lock_timeout_value, k_alone_lock_timeout).count()) +
                 "ms"),
      text_param(target.exclusive_key)};
  std::uint64_t deleted_here = 0;
  for (;;) {
    if (m_options.max_duration) {
      auto deadline = m_started + *m_options.max_duration;
      // No batch starts after the deadline; the first one always runs.
      if (m_result.batches > 0 && steady_clock::now() >= deadline) {
        m_result.complete = false;
        break;
      }
      m_control.deadline =
          m_result.batches > 0 ? deadline : std::max(deadline, m_started + k_first_batch_floor);
    }
    std::uint64_t deleted = 0;
    try {
      deleted = sweep_batch(target, parameters, lock_timeout, lock_alone, context);
    } catch (const error&) {
      fail(context);
    }
    ++m_result.batches;
    m_result.deleted += deleted;
    deleted_here += deleted;
    if (m_options.progress) {
      m_options.progress(static_cast<std::size_t>(deleted),
                         static_cast<std::size_t>(m_result.deleted));
    }
    // A short batch means nothing expired is left, or only rows that others hold right now (a
    // reader deleting them, another sweep): either way this table is done.
    if (deleted < m_batch_size)
      break;
  }
  return deleted_here;
}

std::uint64_t expiry_sweep::sweep_batch(const sweep_target& target,
                                        const std::vector<bound_param>& parameters,
                                        const std::vector<bound_param>& lock_timeout,
                                        const std::vector<bound_param>& lock_alone,
                                        const std::string& context) {
  // A failed batch is rolled back when `batch` goes; the ones before it stay committed.
  std::optional<block> batch{std::in_place, m_wire, context, m_control};
  if (target.delete_batch_alone != nullptr &&
      m_wire.run(m_lock_alone, lock_alone, result_format::binary, context, m_control)
          .boolean(0, 1)) {
    try {
      auto deleted = m_wire
                         .run(*target.delete_batch_alone, parameters, result_format::binary,
                              context, m_control)
                         .affected_rows();
      batch->commit(context, m_control);
      return deleted;
    } catch (const error& e) {
      if (e.kind() != error_kind::lock_timeout)
        throw;
      batch.reset();
      batch.emplace(m_wire, context, m_control);
    }
  }
  m_wire.run(m_lock_timeout, lock_timeout, result_format::binary, context, m_control);
  auto rows =
      m_wire.run(*target.delete_batch, parameters, result_format::binary, context, m_control);
  std::uint64_t deleted = 0;
  if (target.per_shard) {
    // Each shard's DELETE committed on its worker by itself: what the others deleted stays.
    if (!rows.is_null(0, 1)) {
      throw error(error_kind::sql,
                  context + ": the batch failed on a shard: " + std::string{rows.view(0, 1)},
                  "run " + m_rerun + " again; the other shards' batches are committed");
    }
    deleted = static_cast<std::uint64_t>(rows.int8(0, 0));
  } else {
    deleted = rows.affected_rows();
  }
  batch->commit(context, m_control);
  return deleted;
}

void expiry_sweep::fail(const std::string& context) {
  const std::string so_far = "after deleting " + std::to_string(m_result.deleted) + " " + m_what +
                             " in " + std::to_string(m_result.batches) + " batches";
  try {
    throw;
  } catch (const error& e) {
    if (e.kind() == error_kind::canceled && m_control.deadline &&
        steady_clock::now() >= *m_control.deadline) {
      const std::string limit = context + ": the time limit of " +
                                std::to_string(m_options.max_duration->count()) + " ms passed";
      if (m_options.dry_run) {
        throw error(error_kind::timeout,
                    limit + " while counting (a dry run; nothing was deleted) after counting " +
                        std::to_string(m_result.deleted) + " " + m_what,
                    "something holds a lock on the table (a migration, VACUUM FULL, LOCK "
                    "TABLE); count again later, or with a longer time limit");
      }
      throw error(
          error_kind::timeout,
          limit +
              " while a batch was running; it was canceled and rolled back, the "
              "batches before it stay committed (" +
              so_far + ")",
          "run " + m_rerun + " again to go on, with a longer time limit or a smaller batch size");
    }
    if (e.kind() == error_kind::lock_timeout) {
      throw error(e.kind(), std::string{e.what()} + " (" + so_far + ")",
                  "something holds a lock on the table (a migration, VACUUM FULL, LOCK TABLE); "
                  "run " +
                      m_rerun + " again later",
                  e.sqlstate());
    }
    throw;
  }
}

sweep_result expiry_sweep::result() const {
  auto out = m_result;
  out.elapsed =
      std::chrono::duration_cast<std::chrono::microseconds>(steady_clock::now() - m_started);
  return out;
}

}  // namespace pgkit::detail
