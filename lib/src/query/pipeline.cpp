// pgkit::pipeline: statements queued here and sent by the wire layer in libpq's pipeline mode.

#include <libpq-fe.h>

#include <utility>

#include "pgkit/query.hpp"
#include "query/connection_events.hpp"
#include "wire/wire.hpp"

namespace pgkit {
namespace {

// The error a pipelined statement's failure maps to.
error error_of(const std::exception_ptr& failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const error& e) {
    return e;
  } catch (const std::exception& e) {
    return error(error_kind::internal, e.what());
  }
}

params rows_of_row(const PGresult* raw, int row) {
  params values;
  const int columns = PQnfields(raw);
  values.reserve(static_cast<std::size_t>(columns));
  for (int column = 0; column < columns; ++column) {
    if (PQgetisnull(raw, row, column) != 0) {
      values.emplace_back(std::nullopt);
    } else {
      values.emplace_back(std::string{PQgetvalue(raw, row, column),
                                      static_cast<std::size_t>(PQgetlength(raw, row, column))});
    }
  }
  return values;
}

}  // namespace

struct pipeline::impl {
  detail::wire on;
  query_options options;
  std::vector<detail::pipelined_statement> queued;
};

pipeline::pipeline(pqxx::connection& conn, query_options options)
    : m_impl(new impl{detail::wire::of(conn), options, {}}) {}

pipeline::pipeline(pqxx::transaction_base& tx, query_options options)
    : m_impl(new impl{detail::wire::of(tx), options, {}}) {}

pipeline::~pipeline() = default;

std::size_t pipeline::add(std::string_view sql, params parameters) {
  detail::check_no_nul(sql, "the statement");
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    if (parameters[i])
      detail::check_no_nul(*parameters[i], "parameter $" + std::to_string(i + 1));
  }
  m_impl->queued.push_back({std::string{sql}, std::move(parameters), false});
  return m_impl->queued.size() - 1;
}

void pipeline::sync() {
  if (!m_impl->queued.empty())
    m_impl->queued.back().sync_after = true;
}

std::size_t pipeline::size() const noexcept {
  return m_impl->queued.size();
}

std::vector<pipeline_result> pipeline::collect() {
  auto statements = std::move(m_impl->queued);
  m_impl->queued.clear();
  auto raw = m_impl->on.pipeline(statements, "running a pipeline",
                                 detail::stop_control::from(m_impl->options));
  std::vector<pipeline_result> results(raw.size());
  // The failure that made the rest of its sync group skipped.
  std::optional<error> group_failure;
  std::size_t failed_at = 0;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    auto& out = results[i];
    switch (raw[i].how) {
      case detail::pipelined_result::outcome::ok: {
        const PGresult* done = raw[i].rows.get();
        out.outcome = pipeline_outcome::ok;
        out.command_tag = PQcmdStatus(const_cast<PGresult*>(done));
        out.affected_rows = raw[i].rows.affected_rows();
        for (int row = 0; row < PQntuples(done); ++row)
          out.rows.push_back(rows_of_row(done, row));
        break;
      }
      case detail::pipelined_result::outcome::failed:
        out.outcome = pipeline_outcome::failed;
        out.error = error_of(raw[i].failure);
        group_failure = out.error;
        failed_at = i;
        break;
      case detail::pipelined_result::outcome::skipped:
        out.outcome = pipeline_outcome::skipped;
        if (group_failure) {
          out.error = error(group_failure->kind(),
                            "not run: statement " + std::to_string(failed_at) +
                                " of its sync failed first: " + group_failure->what(),
                            group_failure->hint(), group_failure->sqlstate());
        } else {
          out.error = error(error_kind::sql, "not run: an earlier statement of its sync failed");
        }
        break;
    }
    if (statements[i].sync_after)
      group_failure.reset();
  }
  detail::dispatch_notifications(m_impl->on.handle());
  return results;
}

}  // namespace pgkit
