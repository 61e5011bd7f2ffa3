#include "pgkit/query.hpp"

#include <fcntl.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include "core/pqxx_compat.hpp"
#include "pgkit/config.hpp"
#include "pgkit/connection.hpp"
#include "pgkit/error.hpp"
#include "query/connection_events.hpp"
#include "wire/wire.hpp"

namespace pgkit {
namespace {

std::vector<column_info> columns_of(const PGresult* result) {
  std::vector<column_info> columns;
  const int count = PQnfields(result);
  columns.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    columns.push_back({PQfname(result, i), static_cast<std::uint32_t>(PQftype(result, i)),
                       static_cast<std::uint32_t>(PQftable(result, i)), PQftablecol(result, i)});
  }
  return columns;
}

stream_result stream(const detail::wire& on, std::string_view sql, const params& parameters,
                     const std::function<void(const std::vector<column_info>&)>& on_columns,
                     const std::function<row_action(const row_view&)>& on_row,
                     const query_options& options) {
  stream_result outcome;
  bool columns_sent = false;
  auto end = on.stream(
      sql, parameters,
      [&](const pg_result* batch) {
        if (!columns_sent) {
          columns_sent = true;
          if (on_columns)
            on_columns(columns_of(batch));
        }
        const int rows = PQntuples(batch);
        const int columns = PQnfields(batch);
        for (int row = 0; row < rows; ++row) {
          ++outcome.rows;
          if (on_row && on_row(row_view{batch, row, columns}) == row_action::stop) {
            outcome.stopped = true;
            return false;
          }
        }
        return true;
      },
      "streaming a query", detail::stop_control::from(options));
  outcome.completed = !end.command_tag.empty();
  outcome.command_tag = std::move(end.command_tag);
  detail::dispatch_notifications(on.handle());
  return outcome;
}

std::uint64_t run_no_data(const detail::wire& on, std::string_view sql, const params& parameters,
                          const query_options& options) {
  auto done = on.run(sql, parameters, detail::result_format::text, "running a statement",
                     detail::stop_control::from(options));
  if (PQresultStatus(done.get()) == PGRES_TUPLES_OK && done.rows() > 0) {
    throw usage_error("the statement returned " + std::to_string(done.rows()) +
                          " rows where none were expected: " + std::string{sql.substr(0, 200)},
                      "use stream_query for statements that return rows");
  }
  auto affected = PQresultStatus(done.get()) == PGRES_TUPLES_OK ? 0 : done.affected_rows();
  detail::dispatch_notifications(on.handle());
  return affected;
}

}  // namespace

row_view::row_view(const pg_result* result, int row) noexcept
    : row_view(result, row, PQnfields(result)) {}

void row_view::check(std::size_t column) const {
  if (column >= size()) {
    throw usage_error("column " + std::to_string(column) + " is out of range: the row has " +
                      std::to_string(size()) + " columns");
  }
}

bool row_view::is_null(std::size_t column) const {
  check(column);
  return PQgetisnull(m_result, m_row, static_cast<int>(column)) != 0;
}

std::optional<std::string_view> row_view::get(std::size_t column) const {
  check(column);
  const int index = static_cast<int>(column);
  if (PQgetisnull(m_result, m_row, index) != 0)
    return std::nullopt;
  return std::string_view{PQgetvalue(m_result, m_row, index),
                          static_cast<std::size_t>(PQgetlength(m_result, m_row, index))};
}

interrupt::interrupt() {
  if (::pipe(m_pipe) != 0)
    throw error(error_kind::internal, "cannot create an interrupt: no file descriptors left");
  for (int fd : m_pipe) {
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
}

interrupt::~interrupt() {
  ::close(m_pipe[0]);
  ::close(m_pipe[1]);
}

void interrupt::trigger() noexcept {
  // Only the first trigger writes: the byte stays unread, so every waiter sees it.
  if (!m_triggered.exchange(true)) {
    char byte = 1;
    [[maybe_unused]] auto written = ::write(m_pipe[1], &byte, 1);
  }
}

bool interrupt::triggered() const noexcept {
  return m_triggered.load();
}

stream_result stream_query(pqxx::connection& conn, std::string_view sql, const params& parameters,
                           const std::function<void(const std::vector<column_info>&)>& on_columns,
                           const std::function<row_action(const row_view&)>& on_row,
                           const query_options& options) {
  return stream(detail::wire::of(conn), sql, parameters, on_columns, on_row, options);
}

stream_result stream_query(pqxx::transaction_base& tx, std::string_view sql,
                           const params& parameters,
                           const std::function<void(const std::vector<column_info>&)>& on_columns,
                           const std::function<row_action(const row_view&)>& on_row,
                           const query_options& options) {
  return stream(detail::wire::of(tx), sql, parameters, on_columns, on_row, options);
}

std::uint64_t execute_no_data(pqxx::connection& conn, std::string_view sql,
                              const params& parameters, const query_options& options) {
  return run_no_data(detail::wire::of(conn), sql, parameters, options);
}

std::uint64_t execute_no_data(pqxx::transaction_base& tx, std::string_view sql,
                              const params& parameters, const query_options& options) {
  return run_no_data(detail::wire::of(tx), sql, parameters, options);
}

namespace detail {

// Savepoints reuse one name: PostgreSQL's RELEASE and ROLLBACK TO act on the newest savepoint of
// that name, which is the innermost with_savepoint.
void begin_savepoint(pqxx::transaction_base& tx) {
  wire::of(tx).script("SAVEPOINT pgkit_savepoint", "starting a savepoint");
}

void release_savepoint(pqxx::transaction_base& tx) {
  wire::of(tx).script("RELEASE SAVEPOINT pgkit_savepoint", "releasing a savepoint");
}

void rollback_savepoint(pqxx::transaction_base& tx) noexcept {
  auto on = wire::of(tx);
  if (on.state() != session_state::in_transaction && on.state() != session_state::failed)
    return;  // libpqxx ended the transaction: rethrow_in_savepoint says so
  try {
    on.script("ROLLBACK TO SAVEPOINT pgkit_savepoint; RELEASE SAVEPOINT pgkit_savepoint",
              "rolling back to a savepoint");
  } catch (...) {
    // The original failure is what the caller learns about.
  }
}

void rethrow_in_savepoint(pqxx::transaction_base& tx) {
  try {
    rethrow_translated();
  } catch (const error& e) {
    if (wire::of(tx).state() != session_state::idle ||
        dynamic_cast<pqxx::dbtransaction*>(&tx) == nullptr) {
      throw;
    }
    // libpqxx rolls a transaction back when one of its own statements fails: the savepoint
    // cannot save it, and nothing of it may look committed.
    throw error(e.kind(),
                "inside a savepoint: " + std::string{e.what()} +
                    " (libpqxx rolled the whole transaction back on this failure, so the "
                    "savepoint could not keep the rest; nothing of the transaction will commit)",
                "run the whole transaction again; inside with_savepoint, send statements with "
                "pgkit's toolkit (execute_no_data, stream_query), which fail without ending it",
                e.sqlstate());
  }
}

}  // namespace detail

std::unique_ptr<pqxx::connection> connect(const connection_config& config, const interrupt& stop) {
  // libpqxx connects in its constructor and offers no way to abandon that; the attempt runs on
  // a thread of its own, which the caller stops waiting for when `stop` triggers. It ends by
  // itself within the connect timeout and then closes what it opened.
  struct attempt {
    std::mutex mutex;
    std::condition_variable finished;
    bool done = false;
    std::unique_ptr<pqxx::connection> connection;
    std::exception_ptr failure;
  };
  if (stop.triggered())
    throw error(error_kind::canceled, "connecting to " + config.describe() + ": interrupted");
  auto state = std::make_shared<attempt>();
  std::thread{[state, config] {
    std::unique_ptr<pqxx::connection> opened;
    std::exception_ptr failure;
    try {
      opened = connect(config);
    } catch (...) {
      failure = std::current_exception();
    }
    std::lock_guard<std::mutex> lock{state->mutex};
    state->connection = std::move(opened);
    state->failure = failure;
    state->done = true;
    state->finished.notify_all();
  }}.detach();
  std::unique_lock<std::mutex> lock{state->mutex};
  while (
      !state->finished.wait_for(lock, std::chrono::milliseconds{10}, [&] { return state->done; })) {
    if (stop.triggered())
      throw error(error_kind::canceled, "connecting to " + config.describe() + ": interrupted");
  }
  if (state->failure)
    std::rethrow_exception(state->failure);
  return std::move(state->connection);
}

}  // namespace pgkit
