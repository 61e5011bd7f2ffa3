#include "wire/wire.hpp"

#include <dlfcn.h>
#include <libpq-fe.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include "core/notices.hpp"
#include "core/sqlstate.hpp"
#include "core/text.hpp"

namespace pgkit::detail {
namespace {

// Rows per result in chunked mode (libpq 17 and newer): few enough that memory stays flat,
// enough that a result's allocation is spread over many rows.
constexpr int k_chunk_rows = 256;

// Milliseconds from now until `until`, rounded up, for poll(); 0 when it has passed.
int poll_timeout(steady_clock::time_point until) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(until - steady_clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 24 * 3600 * 1000));
}

std::string parameter_name(std::size_t index) {
  return "parameter $" + std::to_string(index + 1);
}

// Parameters as libpq wants them: pointers that stay valid while the statement is sent.
struct param_arrays {
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;

  explicit param_arrays(const std::vector<bound_param>& parameters)
      : values(parameters.size()), lengths(parameters.size()), formats(parameters.size()) {
    for (std::size_t i = 0; i < parameters.size(); ++i) {
      switch (parameters[i].type) {
        case bound_param::kind::text:
          check_no_nul(parameters[i].text, parameter_name(i));
          values[i] = parameters[i].text.c_str();
          break;
        case bound_param::kind::binary:
          // libpq wants a pointer even for zero bytes.
          values[i] = parameters[i].bytes.empty() ? "" : parameters[i].bytes.data();
          lengths[i] = static_cast<int>(parameters[i].bytes.size());
          formats[i] = 1;
          break;
        case bound_param::kind::null:
          values[i] = nullptr;
          break;
      }
    }
  }

  explicit param_arrays(const params& parameters) : values(parameters.size()) {
    for (std::size_t i = 0; i < parameters.size(); ++i) {
      if (parameters[i])
        check_no_nul(*parameters[i], parameter_name(i));
      values[i] = parameters[i] ? parameters[i]->c_str() : nullptr;
    }
  }

  int count() const { return static_cast<int>(values.size()); }
  const int* length_data() const { return lengths.empty() ? nullptr : lengths.data(); }
  const int* format_data() const { return formats.empty() ? nullptr : formats.data(); }
};

bool is_success(const PGresult* raw) {
  if (raw == nullptr)
    return false;
  auto status = PQresultStatus(raw);
  return status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK || status == PGRES_EMPTY_QUERY;
}

bool is_copy(ExecStatusType status) {
  return status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH;
}

bool is_row_batch(ExecStatusType status) {
  return status == PGRES_SINGLE_TUPLE || static_cast<int>(status) == k_tuples_chunk ||
         status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK || status == PGRES_EMPTY_QUERY;
}

// Keeps the command tag `raw` carries ("DELETE 12"): the last result of a statement in
// single-row mode, its last chunk in chunked-rows mode (libpq 17), whose closing zero-row result
// has none.
void note_command_tag(const PGresult* raw, std::string& tag) {
  const char* status = PQcmdStatus(const_cast<PGresult*>(raw));
  if (status != nullptr && *status != '\0')
    tag = status;
}

// Throws the error a failed result (or a failed send, `failed` null) on `conn` maps to: a
// sql_error when the server sent a SQLSTATE.
[[noreturn]] void raise_failure(pg_conn* conn, const pg_result* failed, std::string_view context,
                                std::string_view sql) {
  const char* state = failed == nullptr ? nullptr : PQresultErrorField(failed, PG_DIAG_SQLSTATE);
  std::string sqlstate = state == nullptr ? "" : state;
  std::string message = failed == nullptr ? "" : trimmed(PQresultErrorMessage(failed));
  if (PQstatus(conn) != CONNECTION_OK) {
    // The server's reason (an administrator's termination, a shutdown) when it sent one, as
    // every connection_lost error carries it; libpq's own words otherwise.
    const char* primary =
        failed == nullptr ? nullptr : PQresultErrorField(failed, PG_DIAG_MESSAGE_PRIMARY);
    std::string reason = primary != nullptr
                             ? "the server ended the session: " + std::string{primary}
                             : trimmed(PQerrorMessage(conn));
    if (reason.empty())
      reason = "the connection to the server was lost";
    throw connection_lost_error(context, reason);
  }
  if (message.empty())
    message = trimmed(PQerrorMessage(conn));
  if (sqlstate.empty())
    throw error(error_kind::internal, with_context(context, message));
  throw sql_error(with_context(context, message), sqlstate, std::string{sql});
}

// The exception raise_failure would throw, kept for later.
std::exception_ptr failure_of(pg_conn* conn, const pg_result* failed, std::string_view context,
                              std::string_view sql) {
  try {
    raise_failure(conn, failed, context, sql);
  } catch (...) {
    return std::current_exception();
  }
}

// Rethrows `failure`, found in the rows a stopped stream threw away, saying what it means.
[[noreturn]] void rethrow_after_stop(const std::exception_ptr& failure) {
  const std::string suffix =
      " (in the rows after the callback stopped; the transaction is aborted and cannot commit)";
  try {
    std::rethrow_exception(failure);
  } catch (const sql_error& e) {
    throw sql_error(e.what() + suffix, e.sqlstate(), e.query(), e.hint());
  } catch (const error& e) {
    throw error(e.kind(), e.what() + suffix, e.hint(), e.sqlstate());
  }
}

error canceled_error(std::string_view context, const stop_control& control) {
  return error(error_kind::canceled,
               with_context(context, "the statement was canceled: " + control.reason()), {},
               std::string{sqlstate_of(sql_condition::query_canceled)});
}

// Returns `raw` as a result when it is a success; throws its error otherwise (a canceled error
// when `control` stopped the statement).
result checked(pg_conn* conn, pg_result* raw, std::string_view context, std::string_view sql,
               const stop_control& control, bool canceled) {
  owned_result owned{raw};
  if (is_success(raw))
    return result{owned.release()};
  if (canceled && raw != nullptr) {
    const char* state = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
    if (state != nullptr && is(state, sql_condition::query_canceled))
      throw canceled_error(context, control);
  }
  raise_failure(conn, raw, context, sql);
}

// Waits on libpq's socket (and the interrupt) under a stop_control, canceling the statement when
// the control expires and dropping the connection when the server then stays silent: after a
// cancel the grace period counts from the last data heard (rows still arriving show that the
// server answers), and ten grace periods bound the whole wait.
class socket_wait {
 public:
  socket_wait(const wire& on, const stop_control& control, std::string_view context) noexcept
      : m_wire(on), m_control(control), m_context(context) {}

  // Returns once the socket is ready for `events` (or broken); throws kind canceled after
  // dropping a connection whose server did not answer the cancel in time.
  void socket(short events) {
    for (;;) {
      if (!m_canceled && m_control.expired())
        cancel();
      pollfd waits[2] = {{PQsocket(m_wire.handle()), events, 0}, {-1, POLLIN, 0}};
      if (waits[0].fd < 0)
        return;  // no socket: libpq reports the broken connection
      int timeout = -1;
      if (m_canceled) {
        timeout = poll_timeout(std::min(m_grace_end, m_hard_end));
        if (timeout == 0)
          give_up();
      } else {
        if (m_control.stop != nullptr)
          waits[1].fd = m_control.stop->wait_handle();
        if (m_control.deadline)
          timeout = poll_timeout(*m_control.deadline);
      }
      int ready = ::poll(waits, 2, timeout);
      if (ready < 0 && errno != EINTR)
        return;
      if (ready > 0 && waits[0].revents != 0)
        return;
    }
  }

  // Sends the cancel request (once) and starts the grace period.
  void cancel() {
    if (m_canceled)
      return;
    m_wire.cancel(m_control.cancel_grace);
    canceled_already();
  }
  // A cancel request was sent before this wait began: only the grace period starts.
  void canceled_already() noexcept {
    m_canceled = true;
    m_grace_end = steady_clock::now() + m_control.cancel_grace;
    m_hard_end = steady_clock::now() + 10 * m_control.cancel_grace;
  }
  // Data arrived: the server answers, so the grace period starts again.
  void heard() noexcept {
    if (m_canceled)
      m_grace_end = steady_clock::now() + m_control.cancel_grace;
  }
  bool canceled() const noexcept { return m_canceled; }

  [[noreturn]] void give_up() {
    m_wire.drop();
    throw error(error_kind::canceled,
                with_context(m_context, "the statement was canceled (" + m_control.reason() +
                                            ") and the server did not answer within " +
                                            std::to_string(m_control.cancel_grace.count()) +
                                            " ms, so the connection was closed"),
                "the server may be overloaded or stopped; the connection must be replaced");
  }

 private:
  const wire& m_wire;
  const stop_control& m_control;
  std::string_view m_context;
  bool m_canceled = false;
  steady_clock::time_point m_grace_end{};
  steady_clock::time_point m_hard_end{};
};

// Waits until libpq can give the next result without blocking, under a socket_wait.
class result_wait {
 public:
  result_wait(const wire& on, const stop_control& control, std::string_view context) noexcept
      : m_wire(on), m_control(control), m_wait(on, control, context) {}

  void ready() {
    if (!m_control.active())
      return;
    while (PQisBusy(m_wire.handle()) != 0) {
      m_wait.socket(POLLIN);
      if (PQconsumeInput(m_wire.handle()) == 0)
        return;  // broken: PQgetResult returns the error without blocking
    }
  }
  bool canceled() const noexcept { return m_wait.canceled(); }

 private:
  const wire& m_wire;
  const stop_control& m_control;
  socket_wait m_wait;
};

// Output queued in libpq (non-blocking mode) goes out, waiting under `wait`.
void flush_all(const wire& on, socket_wait& wait) {
  for (;;) {
    int pending = PQflush(on.handle());
    if (pending <= 0)
      return;  // sent, or broken (the next read reports it)
    wait.socket(POLLOUT | POLLIN);
    if (PQconsumeInput(on.handle()) == 0)
      return;
  }
}

// Puts the connection into non-blocking mode for its lifetime, so that writes wait in poll()
// under a deadline instead of inside libpq.
class nonblocking {
 public:
  nonblocking(const wire& on, socket_wait& wait) : m_wire(on), m_wait(wait) {
    PQsetnonblocking(on.handle(), 1);
  }
  ~nonblocking() {
    try {
      flush_all(m_wire, m_wait);
    } catch (...) {
      // The connection was dropped: its mode no longer matters.
    }
    PQsetnonblocking(m_wire.handle(), 0);
  }
  nonblocking(const nonblocking&) = delete;
  nonblocking& operator=(const nonblocking&) = delete;

 private:
  const wire& m_wire;
  socket_wait& m_wait;
};

// libpq's pipeline mode (libpq 14 and newer): from the header at build time, else looked up in
// the libpq loaded at run time (a build against libpq 13 run with a newer libpq.so.5 has it).
using pipeline_call = int (*)(pg_conn*);
// PGRES_PIPELINE_SYNC and PGRES_PIPELINE_ABORTED in libpq 14's ExecStatusType.
constexpr int k_pipeline_sync = 10;
constexpr int k_pipeline_aborted = 11;

struct pipeline_calls {
  pipeline_call enter = nullptr;
  pipeline_call exit = nullptr;
  pipeline_call sync = nullptr;
};

const pipeline_calls& pipeline_mode() noexcept {
#ifdef LIBPQ_HAS_PIPELINING
  static const pipeline_calls found{&PQenterPipelineMode, &PQexitPipelineMode, &PQpipelineSync};
#else
  static const pipeline_calls found{
      reinterpret_cast<pipeline_call>(::dlsym(RTLD_DEFAULT, "PQenterPipelineMode")),
      reinterpret_cast<pipeline_call>(::dlsym(RTLD_DEFAULT, "PQexitPipelineMode")),
      reinterpret_cast<pipeline_call>(::dlsym(RTLD_DEFAULT, "PQpipelineSync"))};
#endif
  return found;
}

}  // namespace

chunked_rows_setter chunked_rows_function() noexcept {
#ifdef LIBPQ_HAS_CHUNK_MODE
  return &PQsetChunkedRowsMode;
#else
  // Built against an older libpq, run with whichever libpq.so.5 the loader found: a libpq 17
  // or newer has the function, and streaming uses it.
  static const auto found =
      reinterpret_cast<chunked_rows_setter>(::dlsym(RTLD_DEFAULT, "PQsetChunkedRowsMode"));
  return found;
#endif
}

std::string_view row_mode() noexcept {
  return chunked_rows_function() != nullptr ? "chunked rows" : "single-row mode";
}

bool stop_control::expired() const noexcept {
  if (stop != nullptr && stop->triggered())
    return true;
  return deadline && steady_clock::now() >= *deadline;
}

std::string stop_control::reason() const {
  if (stop != nullptr && stop->triggered())
    return "interrupted";
  return "the " + std::to_string(timeout.count()) + " ms timeout passed";
}

stop_control stop_control::from(const query_options& options) {
  stop_control control;
  control.stop = options.stop;
  control.cancel_grace = options.cancel_grace;
  if (options.timeout) {
    control.timeout = *options.timeout;
    control.deadline = steady_clock::now() + *options.timeout;
  }
  return control;
}

std::string statement_name(std::string_view store, std::string_view name, std::string_view schema) {
  // Two schemas sharing a name would make the second store's statements fail.
  auto hash = stable_hash(schema);
  static constexpr char digits[] = "0123456789abcdef";
  std::string hex(16, '0');
  for (int i = 15; i >= 0; --i, hash >>= 4)
    hex[static_cast<std::size_t>(i)] = digits[hash & 0xF];
  std::string full = "pgkit_" + std::string{store} + "_" + std::string{name} + "_" + hex;
  if (full.size() > 63)
    throw error(error_kind::internal, "statement name '" + full + "' is longer than 63 bytes");
  return full;
}

statement make_statement(std::string_view store, const statement_text& text,
                         const std::string& schema) {
  std::string sql = text.sql;
  const std::string quoted = quote_identifier(schema);
  for (auto at = sql.find("{S}"); at != std::string::npos; at = sql.find("{S}", at + quoted.size()))
    sql.replace(at, 3, quoted);
  return {statement_name(store, text.name, schema), std::move(sql), text.plan};
}

bound_param text_param(std::string_view text) {
  return {bound_param::kind::text, std::string{text}, {}};
}

bound_param binary_param(std::string_view bytes) {
  return {bound_param::kind::binary, {}, bytes};
}

bound_param int_param(std::optional<std::int64_t> number) {
  if (!number)
    return {bound_param::kind::null, {}, {}};
  return {bound_param::kind::text, std::to_string(*number), {}};
}

void result_deleter::operator()(pg_result* raw) const noexcept {
  PQclear(raw);
}

int result::rows() const noexcept {
  return PQntuples(m_result.get());
}

bool result::is_null(int row, int column) const noexcept {
  return PQgetisnull(m_result.get(), row, column) != 0;
}

std::string result::bytes(int row, int column) const {
  return std::string{view(row, column)};
}

std::string_view result::view(int row, int column) const noexcept {
  return {PQgetvalue(m_result.get(), row, column),
          static_cast<std::size_t>(PQgetlength(m_result.get(), row, column))};
}

std::int64_t result::int8(int row, int column) const noexcept {
  const auto* data =
      reinterpret_cast<const unsigned char*>(PQgetvalue(m_result.get(), row, column));
  std::uint64_t value = 0;
  for (int i = 0; i < 8; ++i)
    value = (value << 8) | data[i];
  return static_cast<std::int64_t>(value);
}

bool result::boolean(int row, int column) const noexcept {
  return PQgetvalue(m_result.get(), row, column)[0] != 0;
}

std::uint64_t result::affected_rows() const {
  const char* count = PQcmdTuples(m_result.get());
  return count[0] == '\0' ? 0 : std::stoull(count);
}

session_state session_state_of(pg_conn* conn) noexcept {
  if (conn == nullptr || PQstatus(conn) != CONNECTION_OK)
    return session_state::broken;
  switch (PQtransactionStatus(conn)) {
    case PQTRANS_IDLE:
      return session_state::idle;
    case PQTRANS_INTRANS:
      return session_state::in_transaction;
    case PQTRANS_INERROR:
      return session_state::failed;
    case PQTRANS_ACTIVE:
      return session_state::busy;
    default:
      return session_state::broken;
  }
}

void throw_aborted(std::string_view context) {
  throw sql_error(with_context(context,
                               "an earlier statement failed and aborted the transaction, so "
                               "nothing was committed"),
                  std::string{sqlstate_of(sql_condition::in_failed_sql_transaction)});
}

void check_no_nul(std::string_view text, std::string_view what) {
  auto nul = text.find('\0');
  if (nul == std::string_view::npos)
    return;
  throw usage_error(std::string{what} + " (" + std::to_string(text.size()) +
                        " bytes) contains a NUL byte at offset " + std::to_string(nul) +
                        "; nothing was sent",
                    "PostgreSQL text cannot hold NUL bytes: remove it, or send the data as bytea");
}

void throw_failure(pg_conn* conn, pg_result* failed, std::string_view context,
                   std::string_view sql) {
  owned_result owned{failed};
  raise_failure(conn, failed, context, sql);
}

wire wire::of(pqxx::connection& connection) noexcept {
  return wire{libpq_handle(connection)};
}

wire wire::of(pqxx::transaction_base& tx) noexcept {
  // A nontransaction has no block on the server; every other transaction type does.
  const bool has_block = dynamic_cast<pqxx::dbtransaction*>(&tx) != nullptr;
  return wire{libpq_handle(tx), nullptr, has_block ? scope::transaction : scope::connection};
}

void wire::check_sendable(std::string_view context, const stop_control& control) const {
  if (control.expired())
    throw canceled_error(context, control);
  if (m_conn == nullptr) {
    // Closed by its owner (pgkit::close), not lost: using it is the caller's mistake.
    throw usage_error(with_context(context,
                                   "the connection was closed (pgkit::close); nothing "
                                   "was sent"),
                      "open a new connection (pgkit::connect) for further statements");
  }
  switch (state()) {
    case session_state::broken:
      throw connection_lost_error(context, trimmed(PQerrorMessage(m_conn)));
    case session_state::busy:
      throw usage_error(
          with_context(context,
                       "the connection is busy: a statement or COPY is still running on it"),
          "finish the statement or COPY first (a row callback or an open copy_in cannot send "
          "statements on its own connection); use another connection for nested work");
    case session_state::idle:
      if (m_scope == scope::transaction) {
        throw usage_error(
            with_context(context,
                         "the transaction is no longer open on the server (libpqxx rolled it "
                         "back after a failed statement, or it ended); nothing was sent"),
            "run the whole transaction again; catch errors inside with_savepoint, not around a "
            "failed libpqxx statement");
      }
      return;
    case session_state::in_transaction:
    case session_state::failed:
      return;
  }
}

result wire::collect(int sent, std::string_view context, std::string_view sql,
                     const stop_control& control) const {
  if (sent == 0)
    throw_failure(m_conn, nullptr, context, sql);
  result_wait wait{*this, control, context};
  PGresult* kept = nullptr;
  for (;;) {
    try {
      wait.ready();
    } catch (...) {
      PQclear(kept);
      throw;
    }
    PGresult* next = PQgetResult(m_conn);
    if (next == nullptr)
      break;
    if (is_copy(PQresultStatus(next))) {
      // A COPY sent where a plain statement was expected cannot be read to its end here.
      PQclear(next);
      PQclear(kept);
      drop();
      throw usage_error(with_context(context, "the statement is a COPY; the connection was closed"),
                        "run COPY through copy_in, copy_in_raw or copy_out");
    }
    // The last result is kept (a script's answer is its last statement's), unless an earlier
    // one failed: the first failure is what is thrown.
    if (kept == nullptr || is_success(kept)) {
      PQclear(kept);
      kept = next;
    } else {
      PQclear(next);
    }
    // A canceled statement: the rest of its results come within the grace period or never.
    if (wait.canceled()) {
      drain(control, context, true);
      break;
    }
  }
  return checked(m_conn, kept, context, sql, control, wait.canceled());
}

result wire::run(const statement& stmt, const std::vector<bound_param>& parameters,
                 result_format format, std::string_view context,
                 const stop_control& control) const {
  param_arrays arrays{parameters};
  check_sendable(context, control);
  const int result_format_code = static_cast<int>(format);
  if (m_prepared == nullptr || stmt.plan == planning::each_time) {
    int sent =
        PQsendQueryParams(m_conn, stmt.sql.c_str(), arrays.count(), nullptr, arrays.values.data(),
                          arrays.length_data(), arrays.format_data(), result_format_code);
    return collect(sent, context, stmt.sql, control);
  }
  auto found = m_prepared->find(stmt.name);
  if (found != m_prepared->end() && found->second != stmt.sql) {
    throw error(error_kind::internal,
                "statement '" + stmt.name + "' was prepared with different SQL on this connection");
  }
  if (found == m_prepared->end()) {
    int sent = PQsendPrepare(m_conn, stmt.name.c_str(), stmt.sql.c_str(), 0, nullptr);
    collect(sent, context, stmt.sql, control);
    m_prepared->emplace(stmt.name, stmt.sql);
  }
  int sent = PQsendQueryPrepared(m_conn, stmt.name.c_str(), arrays.count(), arrays.values.data(),
                                 arrays.length_data(), arrays.format_data(), result_format_code);
  return collect(sent, context, stmt.sql, control);
}

result wire::run(std::string_view sql, const params& parameters, result_format format,
                 std::string_view context, const stop_control& control) const {
  check_no_nul(sql, "the statement");
  param_arrays arrays{parameters};
  check_sendable(context, control);
  std::string text{sql};
  int sent = PQsendQueryParams(m_conn, text.c_str(), arrays.count(), nullptr, arrays.values.data(),
                               nullptr, nullptr, static_cast<int>(format));
  return collect(sent, context, text, control);
}

result wire::script(std::string_view sql, std::string_view context,
                    const stop_control& control) const {
  check_no_nul(sql, "the statement");
  check_sendable(context, control);
  std::string text{sql};
  return collect(PQsendQuery(m_conn, text.c_str()), context, text, control);
}

stream_end wire::stream(std::string_view sql, const params& parameters,
                        const std::function<bool(const pg_result*)>& on_batch,
                        std::string_view context, const stop_control& control) const {
  check_no_nul(sql, "the statement");
  param_arrays arrays{parameters};
  check_sendable(context, control);
  const bool in_block = state() != session_state::idle;
  std::string text{sql};
  if (PQsendQueryParams(m_conn, text.c_str(), arrays.count(), nullptr, arrays.values.data(),
                        nullptr, nullptr, 0) == 0) {
    throw_failure(m_conn, nullptr, context, text);
  }
  if (auto chunked = chunked_rows_function())
    chunked(m_conn, k_chunk_rows);
  else
    PQsetSingleRowMode(m_conn);

  stream_end end;
  result_wait wait{*this, control, context};
  std::exception_ptr callback_error;
  for (;;) {
    wait.ready();
    owned_result next{PQgetResult(m_conn)};
    if (!next)
      return end;
    if (wait.canceled()) {
      // Stopped by the interrupt or the deadline: no more rows for the caller.
      next.reset();
      drain(control, context, true);
      throw canceled_error(context, control);
    }
    const auto status = PQresultStatus(next.get());
    if (!is_row_batch(status)) {
      drain(control, context, false);
      checked(m_conn, next.release(), context, text, control, false);
    }
    // A single-row result never carries the tag; a chunk may (libpq 17 puts it on the last).
    if (status != PGRES_SINGLE_TUPLE)
      note_command_tag(next.get(), end.command_tag);
    bool go_on = true;
    try {
      go_on = !on_batch || on_batch(next.get());
    } catch (...) {
      callback_error = std::current_exception();
    }
    if (go_on && !callback_error)
      continue;
    next.reset();
    drained rest;
    if (!in_block) {
      // Outside a transaction block a cancel ends the statement early. A statement that
      // finished before the cancel arrived (a DELETE ... RETURNING runs before its first row
      // is sent) reports its command tag: its effects stand.
      cancel(control.cancel_grace);
      rest = drain(control, context, true);
    } else {
      // Inside a block a cancel would abort the transaction: the rest is read and thrown away.
      // A failure in it (a later row's division by zero) has aborted the transaction anyway,
      // which must not look committed.
      rest = drain(control, context, false);
      if (!callback_error) {
        if (rest.failure)
          rethrow_after_stop(rest.failure);
        if (state() == session_state::broken) {
          throw error(error_kind::canceled,
                      with_context(context,
                                   "the rest of the rows did not arrive in time after the "
                                   "callback stopped (" +
                                       control.reason() +
                                       "), so the connection was closed; the transaction is lost"),
                      "the server may be overloaded or stopped; the connection must be replaced");
        }
      }
    }
    // The tag may have come with the batch the callback stopped in (its last chunk).
    if (!rest.command_tag.empty())
      end.command_tag = rest.command_tag;
    if (callback_error)
      std::rethrow_exception(callback_error);
    return end;
  }
}

bool has_pipeline_mode() noexcept {
  return pipeline_mode().enter != nullptr;
}

std::vector<pipelined_result> wire::pipeline(const std::vector<pipelined_statement>& statements,
                                             std::string_view context,
                                             const stop_control& control) const {
  const auto& mode = pipeline_mode();
  if (mode.enter == nullptr) {
    throw usage_error(
        with_context(context, "the libpq in this process (version " +
                                  std::to_string(PQlibVersion() / 10000) +
                                  ") has no pipeline mode; nothing was sent"),
        "run with libpq 14 or newer (LD_LIBRARY_PATH), or send the statements one at a time");
  }
  std::vector<param_arrays> arrays;
  arrays.reserve(statements.size());
  for (const auto& each : statements) {
    check_no_nul(each.sql, "the statement");
    arrays.emplace_back(each.parameters);
  }
  check_sendable(context, control);
  std::vector<pipelined_result> results(statements.size());
  if (statements.empty())
    return results;

  std::size_t syncs = 0;
  socket_wait send_wait{*this, control, context};
  nonblocking unblocked{*this, send_wait};
  result_wait wait{*this, control, context};
  try {
    if (mode.enter(m_conn) != 1)
      throw_failure(m_conn, nullptr, context, statements.front().sql);
    // Everything goes out before the first result is read; libpq reads what arrives while the
    // socket is full, so neither side blocks the other.
    for (std::size_t i = 0; i < statements.size(); ++i) {
      const auto& each = statements[i];
      if (PQsendQueryParams(m_conn, each.sql.c_str(), arrays[i].count(), nullptr,
                            arrays[i].values.data(), nullptr, nullptr, 0) == 0) {
        throw_failure(m_conn, nullptr, context, each.sql);
      }
      if (each.sync_after || i + 1 == statements.size()) {
        if (mode.sync(m_conn) != 1)
          throw_failure(m_conn, nullptr, context, each.sql);
        ++syncs;
      }
    }
    flush_all(*this, send_wait);

    // Each statement's results end with a null result; each sync has a result of its own.
    std::size_t index = 0;
    bool have = false;
    int idle_nulls = 0;
    while (syncs > 0) {
      wait.ready();
      owned_result next{PQgetResult(m_conn)};
      if (!next) {
        if (PQstatus(m_conn) != CONNECTION_OK)
          throw_failure(m_conn, nullptr, context,
                        statements[std::min(index, results.size() - 1)].sql);
        if (have) {
          ++index;
          have = false;
          idle_nulls = 0;
        } else if (++idle_nulls > 2) {
          throw error(
              error_kind::internal,
              with_context(context, "libpq gave no result where the pipeline expected one"));
        }
        continue;
      }
      const int status = static_cast<int>(PQresultStatus(next.get()));
      if (status == k_pipeline_sync) {
        --syncs;
        continue;
      }
      if (have || index >= results.size())
        continue;  // a second result of one statement: the first one stands
      have = true;
      auto& out = results[index];
      if (status == k_pipeline_aborted) {
        out.how = pipelined_result::outcome::skipped;
      } else if (is_success(next.get())) {
        out.how = pipelined_result::outcome::ok;
        out.rows = result{next.release()};
      } else {
        out.how = pipelined_result::outcome::failed;
        out.failure = failure_of(m_conn, next.get(), context, statements[index].sql);
        if (PQstatus(m_conn) != CONNECTION_OK)
          std::rethrow_exception(out.failure);
      }
    }
    if (mode.exit(m_conn) != 1)
      throw_failure(m_conn, nullptr, context, statements.back().sql);
  } catch (...) {
    // Results still on their way cannot be matched to anything: the connection goes.
    if (PQstatus(m_conn) == CONNECTION_OK)
      drop();
    throw;
  }
  if (wait.canceled())
    throw canceled_error(context, control);
  return results;
}

void wire::start_copy(std::string_view sql, copy_direction direction, std::string_view context,
                      const stop_control& control) const {
  check_no_nul(sql, "the COPY statement");
  check_sendable(context, control);
  std::string text{sql};
  if (PQsendQuery(m_conn, text.c_str()) == 0)
    throw_failure(m_conn, nullptr, context, text);
  const auto expected = direction == copy_direction::in ? PGRES_COPY_IN : PGRES_COPY_OUT;
  const char* fix = direction == copy_direction::in ? "give a COPY ... FROM STDIN statement"
                                                    : "give a COPY ... TO STDOUT statement";
  result_wait wait{*this, control, context};
  wait.ready();
  owned_result first{PQgetResult(m_conn)};
  auto status = first == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(first.get());
  if (status == expected && !wait.canceled())
    return;
  auto failure = status == PGRES_FATAL_ERROR && first != nullptr
                     ? failure_of(m_conn, first.get(), context, text)
                     : std::exception_ptr{};
  first.reset();
  if (is_copy(status)) {
    if (status == PGRES_COPY_IN)
      PQputCopyEnd(m_conn, "not the COPY direction pgkit expected");
    drain(control, context, false);
    if (wait.canceled())
      throw canceled_error(context, control);
    throw usage_error(with_context(context, "the statement is a COPY in the other direction"), fix);
  }
  auto rest = drain(control, context, wait.canceled());
  if (wait.canceled())
    throw canceled_error(context, control);
  if (status == PGRES_FATAL_ERROR) {
    if (failure)
      std::rethrow_exception(failure);
    raise_failure(m_conn, nullptr, context, text);
  }
  throw usage_error(with_context(context, "the statement is not a COPY: " + text.substr(0, 200)),
                    fix);
}

void wire::put_copy(std::string_view data, std::string_view context, const stop_control& control,
                    std::string_view sql) const {
  socket_wait wait{*this, control, context};
  nonblocking mode{*this, wait};
  for (;;) {
    int queued = PQputCopyData(m_conn, data.data(), static_cast<int>(data.size()));
    if (queued == 1)
      break;
    if (queued < 0 || wait.canceled())
      raise_failure(m_conn, nullptr, context, sql);
    wait.socket(POLLOUT | POLLIN);
    PQconsumeInput(m_conn);
  }
  flush_all(*this, wait);
  if (wait.canceled()) {
    // The deadline passed while the server took no data: the cancel ends the COPY.
    drain(control, context, true);
    throw canceled_error(context, control);
  }
}

std::uint64_t wire::end_copy_in(const char* abort_reason, std::string_view context,
                                const stop_control& control, std::string_view sql) const {
  {
    socket_wait wait{*this, control, context};
    nonblocking mode{*this, wait};
    for (;;) {
      int queued = PQputCopyEnd(m_conn, abort_reason);
      if (queued == 1)
        break;
      if (queued < 0)
        break;  // broken: the result says why
      wait.socket(POLLOUT | POLLIN);
      PQconsumeInput(m_conn);
    }
    flush_all(*this, wait);
  }
  return collect(1, context, sql, control).affected_rows();
}

std::uint64_t wire::read_copy(const std::function<void(std::string_view)>& on_data,
                              std::string_view context, const stop_control& control,
                              std::string_view sql) const {
  socket_wait wait{*this, control, context};
  std::exception_ptr callback_error;
  for (;;) {
    char* chunk = nullptr;
    int length = PQgetCopyData(m_conn, &chunk, 1);
    if (length < 0)
      break;
    if (length == 0) {
      wait.socket(POLLIN);
      if (PQconsumeInput(m_conn) == 0)
        break;
      continue;
    }
    if (!callback_error && !wait.canceled()) {
      try {
        on_data(std::string_view{chunk, static_cast<std::size_t>(length)});
      } catch (...) {
        callback_error = std::current_exception();
      }
    }
    PQfreemem(chunk);
  }
  std::uint64_t rows = 0;
  try {
    rows = collect(1, context, sql, control).affected_rows();
  } catch (const error& e) {
    if (wait.canceled() && is(e.sqlstate(), sql_condition::query_canceled))
      throw canceled_error(context, control);
    throw;
  }
  if (callback_error)
    std::rethrow_exception(callback_error);
  return rows;
}

bool wire::send_nowait(const std::string& sql) const noexcept {
  return PQsendQuery(m_conn, sql.c_str()) != 0;
}

bool wire::ping(steady_clock::time_point deadline) const noexcept {
  if (state() != session_state::idle || PQsendQuery(m_conn, "") == 0)
    return false;
  bool answered = false;
  for (;;) {
    while (PQisBusy(m_conn) != 0) {
      // No cancel request: a server that does not answer an empty statement in time is
      // replaced, not waited for.
      pollfd readable{PQsocket(m_conn), POLLIN, 0};
      int timeout = poll_timeout(deadline);
      if (readable.fd < 0 || timeout == 0) {
        drop();
        return false;
      }
      int ready = ::poll(&readable, 1, timeout);
      if (ready < 0 && errno != EINTR)
        return false;
      if (ready > 0 && PQconsumeInput(m_conn) == 0)
        break;
    }
    owned_result next{PQgetResult(m_conn)};
    if (!next)
      break;
    answered = answered || PQresultStatus(next.get()) == PGRES_EMPTY_QUERY;
  }
  return answered && state() == session_state::idle;
}

void wire::rollback(std::chrono::milliseconds grace) const noexcept {
  auto now = state();
  if (now != session_state::in_transaction && now != session_state::failed)
    return;
  try {
    stop_control control;
    control.deadline = steady_clock::now() + grace;
    control.timeout = grace;
    control.cancel_grace = grace;
    if (PQsendQuery(m_conn, "ROLLBACK") == 0)
      return;
    drain(control, "rolling back", false);
  } catch (...) {
    drop();
  }
}

void wire::cancel(std::chrono::milliseconds grace) const noexcept {
  PGcancel* cancel = PQgetCancel(m_conn);
  if (cancel == nullptr)
    return;
  // PQcancel blocks until the postmaster closes the cancel connection; a stopped postmaster
  // would hold it forever, so it runs on a thread that the caller stops waiting for.
  struct shared_state {
    std::mutex mutex;
    std::condition_variable done_signal;
    bool done = false;
  };
  try {
    auto state = std::make_shared<shared_state>();
    std::thread worker{[cancel, state] {
      char reason[256];
      PQcancel(cancel, reason, sizeof reason);
      PQfreeCancel(cancel);
      std::lock_guard<std::mutex> lock{state->mutex};
      state->done = true;
      state->done_signal.notify_all();
    }};
    std::unique_lock<std::mutex> lock{state->mutex};
    if (state->done_signal.wait_for(lock, grace, [&] { return state->done; })) {
      lock.unlock();
      worker.join();
    } else {
      worker.detach();
    }
  } catch (...) {
    // No thread: the cancel request is sent on this one.
    char reason[256];
    PQcancel(cancel, reason, sizeof reason);
    PQfreeCancel(cancel);
  }
}

void wire::drop() const noexcept {
  int socket = PQsocket(m_conn);
  if (socket < 0)
    return;
  // The descriptor number stays valid (libpq closes it later) but now names a socket whose
  // peer is gone: libpq's next read sees the end of the stream, whatever data the kernel still
  // held for the old one, and marks the connection broken.
  ::shutdown(socket, SHUT_RDWR);
  int ended[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ended) == 0) {
    ::close(ended[1]);
    ::dup2(ended[0], socket);
    ::close(ended[0]);
  }
  PQconsumeInput(m_conn);
}

drained wire::drain(const stop_control& control, std::string_view context, bool canceled) const {
  // Until the control expires the rest may take its time (a drain with no deadline waits as
  // long as the statement runs); once canceled, the grace period applies.
  socket_wait wait{*this, control, context};
  if (canceled)
    wait.canceled_already();
  drained out;
  for (;;) {
    while (PQisBusy(m_conn) != 0) {
      try {
        wait.socket(POLLIN);
      } catch (const error&) {
        return out;  // dropped: the server did not answer the cancel
      }
      if (PQconsumeInput(m_conn) == 0)
        break;
      wait.heard();
    }
    owned_result next{PQgetResult(m_conn)};
    if (!next)
      return out;
    auto status = PQresultStatus(next.get());
    if (is_copy(status)) {
      // A COPY cannot be read to its end here: the connection cannot be used again.
      drop();
      return out;
    }
    if (status == PGRES_FATAL_ERROR) {
      if (!out.failure)
        out.failure = failure_of(m_conn, next.get(), context, {});
    } else {
      note_command_tag(next.get(), out.command_tag);
    }
  }
}

block::block(const wire& on, std::string_view context, const stop_control& control) : m_wire(on) {
  m_wire.script("BEGIN", context, control);
}

block::~block() {
  if (m_open)
    m_wire.rollback();
}

void block::commit(std::string_view context, const stop_control& control) {
  m_open = false;
  if (m_wire.state() == session_state::failed) {
    m_wire.rollback();
    throw_aborted(context);
  }
  try {
    m_wire.script("COMMIT", context, control);
  } catch (const error& e) {
    if (e.kind() != error_kind::connection_lost)
      throw;
    throw error(error_kind::connection_lost,
                std::string{e.what()} + " (during COMMIT: whether it committed is unknown)",
                "check whether the change was applied before running it again");
  }
}

}  // namespace pgkit::detail
