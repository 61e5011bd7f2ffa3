#include "pgkit/query.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include "pgkit/config.hpp"
#include "pgkit/connection.hpp"
#include "pgkit/error.hpp"
#include "query/statement.hpp"

namespace pgkit {
namespace {

// Rows per result in chunked mode (libpq 17 and newer): few enough that memory stays flat,
// enough that a result's allocation is spread over many rows.
constexpr int k_chunk_rows = 256;

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

bool in_transaction_block(PGconn* conn) {
  return PQtransactionStatus(conn) != PQTRANS_IDLE;
}

// Puts the statement just sent into a mode where results come a row (or a chunk) at a time.
void stream_rows(PGconn* conn) {
  if (auto chunked = detail::chunked_rows_function())
    chunked(conn, k_chunk_rows);
  else
    PQsetSingleRowMode(conn);
}

bool is_row_batch(ExecStatusType status) {
  return status == PGRES_SINGLE_TUPLE || static_cast<int>(status) == detail::k_tuples_chunk ||
         status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK || status == PGRES_EMPTY_QUERY;
}

}  // namespace

namespace detail {

chunked_rows_setter chunked_rows_function() noexcept {
#ifdef LIBPQ_HAS_CHUNK_MODE
  return &PQsetChunkedRowsMode;
#else
  // Built against an older libpq, run with whichever libpq.so.5 the loader found: a libpq 17
  // or newer has the function, and the statement layer uses it.
  static const auto found =
      reinterpret_cast<chunked_rows_setter>(::dlsym(RTLD_DEFAULT, "PQsetChunkedRowsMode"));
  return found;
#endif
}

std::string_view row_mode() noexcept {
  return chunked_rows_function() != nullptr ? "chunked rows" : "single-row mode";
}

}  // namespace detail

namespace {

stream_result stream(PGconn* conn, std::string_view sql, const params& parameters,
                     const std::function<void(const std::vector<column_info>&)>& on_columns,
                     const std::function<row_action(const row_view&)>& on_row,
                     const query_options& options) {
  constexpr std::string_view context = "streaming a query";
  const auto control = detail::stop_control::from(options);
  const bool in_block = in_transaction_block(conn);
  std::string text{sql};
  std::vector<const char*> values(parameters.size());
  for (std::size_t i = 0; i < parameters.size(); ++i)
    values[i] = parameters[i] ? parameters[i]->c_str() : nullptr;
  if (PQsendQueryParams(conn, text.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                        nullptr, nullptr, 0) == 0) {
    detail::throw_failure(conn, nullptr, context, text);
  }
  stream_rows(conn);

  stream_result outcome{0, false};
  bool columns_sent = false;
  detail::result_wait wait{conn, control, context};
  std::exception_ptr callback_error;
  for (;;) {
    wait.ready();
    PGresult* next = PQgetResult(conn);
    if (next == nullptr)
      break;
    std::unique_ptr<pg_result, detail::result_deleter> owned{next};
    if (wait.canceled()) {
      // Stopped by the interrupt or the deadline: no more rows for the caller.
      owned.reset();
      detail::drain(conn, control.cancel_grace);
      throw error(error_kind::canceled,
                  std::string{context} + ": the statement was canceled: " + control.reason() +
                      " (after " + std::to_string(outcome.rows) + " rows)",
                  {}, "57014");
    }
    if (!is_row_batch(PQresultStatus(next))) {
      detail::drain(conn, control.cancel_grace);
      detail::checked(conn, owned.release(), context, text, control, wait.canceled());
    }
    try {
      if (!columns_sent) {
        columns_sent = true;
        if (on_columns)
          on_columns(columns_of(next));
      }
      const int rows = PQntuples(next);
      for (int row = 0; row < rows && !outcome.stopped; ++row) {
        ++outcome.rows;
        if (on_row && on_row(row_view{next, row}) == row_action::stop)
          outcome.stopped = true;
      }
    } catch (...) {
      callback_error = std::current_exception();
    }
    if (outcome.stopped || callback_error) {
      // Outside a transaction block a cancel ends the statement early; inside one it would
      // abort the transaction, so the rest is read and thrown away instead.
      if (!in_block) {
        detail::send_cancel(conn, options.cancel_grace);
        detail::drain(conn, options.cancel_grace);
      } else {
        owned.reset();
        while (PGresult* rest = PQgetResult(conn))
          PQclear(rest);
      }
      break;
    }
  }
  if (callback_error)
    std::rethrow_exception(callback_error);
  return outcome;
}

std::uint64_t run_no_data(PGconn* conn, std::string_view sql, const params& parameters,
                          const query_options& options) {
  auto done = detail::run_sql(conn, sql, parameters, detail::result_format::text,
                              "running a statement", detail::stop_control::from(options));
  if (PQresultStatus(done.get()) == PGRES_TUPLES_OK && done.rows() > 0) {
    throw usage_error("the statement returned " + std::to_string(done.rows()) +
                          " rows where none were expected: " + std::string{sql.substr(0, 200)},
                      "use stream_query for statements that return rows");
  }
  return PQresultStatus(done.get()) == PGRES_TUPLES_OK ? 0 : done.affected_rows();
}

}  // namespace

std::size_t row_view::size() const noexcept {
  return static_cast<std::size_t>(PQnfields(m_result));
}

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
  return stream(detail::libpq_handle(conn), sql, parameters, on_columns, on_row, options);
}

stream_result stream_query(pqxx::transaction_base& tx, std::string_view sql,
                           const params& parameters,
                           const std::function<void(const std::vector<column_info>&)>& on_columns,
                           const std::function<row_action(const row_view&)>& on_row,
                           const query_options& options) {
  return stream(detail::handle_of(tx), sql, parameters, on_columns, on_row, options);
}

std::uint64_t execute_no_data(pqxx::connection& conn, std::string_view sql,
                              const params& parameters, const query_options& options) {
  return run_no_data(detail::libpq_handle(conn), sql, parameters, options);
}

std::uint64_t execute_no_data(pqxx::transaction_base& tx, std::string_view sql,
                              const params& parameters, const query_options& options) {
  return run_no_data(detail::handle_of(tx), sql, parameters, options);
}

namespace detail {

// Savepoints reuse one name: PostgreSQL's RELEASE and ROLLBACK TO act on the newest savepoint of
// that name, which is the innermost with_savepoint.
void begin_savepoint(pqxx::transaction_base& tx) {
  run_sql(handle_of(tx), "SAVEPOINT pgkit_savepoint", {}, result_format::text,
          "starting a savepoint");
}

void release_savepoint(pqxx::transaction_base& tx) {
  run_sql(handle_of(tx), "RELEASE SAVEPOINT pgkit_savepoint", {}, result_format::text,
          "releasing a savepoint");
}

void rollback_savepoint(pqxx::transaction_base& tx) noexcept {
  PGconn* conn = handle_of(tx);
  if (conn == nullptr || PQstatus(conn) != CONNECTION_OK)
    return;
  PQclear(PQexec(conn, "ROLLBACK TO SAVEPOINT pgkit_savepoint; RELEASE SAVEPOINT pgkit_savepoint"));
}

void rethrow_in_savepoint() {
  try {
    throw;
  } catch (const error&) {
    throw;
  } catch (const pqxx::failure&) {
    rethrow_as_pgkit("inside a savepoint");
  } catch (const pqxx::usage_error&) {
    rethrow_as_pgkit("inside a savepoint");
  }
}

}  // namespace detail

connection_state status(const pqxx::connection& conn) noexcept {
  PGconn* handle = detail::libpq_handle(conn);
  if (handle == nullptr)
    return connection_state::closed;
  if (PQstatus(handle) != CONNECTION_OK)
    return connection_state::failed;
  if (PQisBusy(handle) != 0 || PQtransactionStatus(handle) == PQTRANS_ACTIVE)
    return connection_state::busy;
  // What the server sent while the connection sat idle: a termination notice and the end of
  // the stream mark it failed. Reading never blocks (libpq's socket is non-blocking).
  pollfd readable{PQsocket(handle), POLLIN, 0};
  if (readable.fd >= 0 && ::poll(&readable, 1, 0) > 0) {
    PQconsumeInput(handle);
    if (PQstatus(handle) != CONNECTION_OK)
      return connection_state::failed;
  }
  return connection_state::open;
}

void close(pqxx::connection& conn) noexcept {
  detail::close(conn);
}

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
