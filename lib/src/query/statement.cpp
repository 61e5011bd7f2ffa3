#include "query/statement.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "migrate/migration_sql.hpp"
#include "pgkit/error.hpp"

namespace pgkit::detail {
namespace {

std::string with_context(std::string_view context, std::string_view message) {
  if (context.empty())
    return std::string{message};
  return std::string{context} + ": " + std::string{message};
}

// Milliseconds from now until `until`, rounded up, for poll(); 0 when it has passed.
int poll_timeout(steady_clock::time_point until) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(until - steady_clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 24 * 3600 * 1000));
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
    for (std::size_t i = 0; i < parameters.size(); ++i)
      values[i] = parameters[i] ? parameters[i]->c_str() : nullptr;
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

// Collects the results of the statement just sent: the first failure, else the last result.
result collect(PGconn* conn, int sent, std::string_view context, std::string_view sql,
               const stop_control& control) {
  if (sent == 0)
    throw_failure(conn, nullptr, context, sql);
  result_wait wait{conn, control, context};
  PGresult* kept = nullptr;
  for (;;) {
    wait.ready();
    PGresult* next = PQgetResult(conn);
    if (next == nullptr)
      break;
    if (kept == nullptr || (is_success(kept) && !is_success(next))) {
      PQclear(kept);
      kept = next;
    } else {
      PQclear(next);
    }
    // A canceled statement: the rest of its results come within the grace period or never.
    if (wait.canceled()) {
      drain(conn, control.cancel_grace);
      break;
    }
  }
  return checked(conn, kept, context, sql, control, wait.canceled());
}

}  // namespace

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
  // 64-bit FNV-1a: two schemas sharing a name would make the second store's statements fail.
  std::uint64_t hash = 14695981039346656037ULL;
  for (char c : schema) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ULL;
  }
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
  return {statement_name(store, text.name, schema), std::move(sql)};
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

std::string trimmed(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.remove_suffix(1);
  return std::string{text};
}

void throw_failure(pg_conn* conn, pg_result* failed, std::string_view context,
                   std::string_view sql) {
  std::unique_ptr<pg_result, result_deleter> owned{failed};
  const char* state = failed == nullptr ? nullptr : PQresultErrorField(failed, PG_DIAG_SQLSTATE);
  std::string sqlstate = state == nullptr ? "" : state;
  std::string message = failed == nullptr ? "" : trimmed(PQresultErrorMessage(failed));
  if (PQstatus(conn) != CONNECTION_OK) {
    // The server's reason (an administrator's termination, a shutdown) comes first when it
    // sent one; libpq's own words say what happened to the socket.
    std::string reason = trimmed(PQerrorMessage(conn));
    if (message.empty())
      message = reason;
    else if (!reason.empty() && reason.find(message) == std::string::npos)
      message += " (" + reason + ")";
    if (message.empty())
      message = "the connection to the server was lost";
    throw error(error_kind::connection_lost, with_context(context, message),
                "the statement's outcome is unknown; check whether it took effect", sqlstate);
  }
  if (message.empty())
    message = trimmed(PQerrorMessage(conn));
  if (sqlstate.empty())
    throw error(error_kind::internal, with_context(context, message));
  throw sql_error(with_context(context, message), sqlstate, std::string{sql});
}

result checked(pg_conn* conn, pg_result* raw, std::string_view context, std::string_view sql,
               const stop_control& control, bool canceled) {
  if (is_success(raw))
    return result{raw};
  if (canceled && raw != nullptr) {
    const char* state = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
    if (state != nullptr && std::string_view{state} == "57014") {
      PQclear(raw);
      throw error(error_kind::canceled,
                  with_context(context, "the statement was canceled: " + control.reason()), {},
                  "57014");
    }
  }
  throw_failure(conn, raw, context, sql);
}

void send_cancel(pg_conn* conn, std::chrono::milliseconds grace) noexcept {
  PGcancel* cancel = PQgetCancel(conn);
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

void drop(pg_conn* conn) noexcept {
  int socket = PQsocket(conn);
  if (socket >= 0) {
    ::shutdown(socket, SHUT_RDWR);
    PQconsumeInput(conn);
  }
}

void result_wait::ready() {
  if (!m_control.active())
    return;
  while (PQisBusy(m_conn) != 0) {
    if (!m_canceled && m_control.expired()) {
      send_cancel(m_conn, m_control.cancel_grace);
      m_canceled = true;
      m_grace_end = steady_clock::now() + m_control.cancel_grace;
    }
    pollfd waits[2] = {{PQsocket(m_conn), POLLIN, 0}, {-1, POLLIN, 0}};
    int timeout = -1;
    if (m_canceled) {
      timeout = poll_timeout(m_grace_end);
      if (timeout == 0) {
        drop(m_conn);
        throw error(error_kind::canceled,
                    with_context(m_context, "the statement was canceled (" + m_control.reason() +
                                                ") and the server did not answer within " +
                                                std::to_string(m_control.cancel_grace.count()) +
                                                " ms, so the connection was closed"),
                    "the server may be overloaded or stopped; the connection must be replaced");
      }
    } else {
      if (m_control.stop != nullptr)
        waits[1].fd = m_control.stop->wait_handle();
      if (m_control.deadline)
        timeout = poll_timeout(*m_control.deadline);
    }
    if (waits[0].fd < 0)
      return;  // no socket: PQgetResult reports the broken connection
    int ready = ::poll(waits, 2, timeout);
    if (ready < 0 && errno != EINTR)
      return;
    if (ready > 0 && waits[0].revents != 0 && PQconsumeInput(m_conn) == 0)
      return;  // broken: PQgetResult returns the error without blocking
  }
}

std::string drain(pg_conn* conn, std::chrono::milliseconds grace) {
  stop_control grace_control;
  grace_control.deadline = steady_clock::now() + grace;
  std::string first_failure;
  for (;;) {
    while (PQisBusy(conn) != 0) {
      pollfd wait{PQsocket(conn), POLLIN, 0};
      int timeout = poll_timeout(*grace_control.deadline);
      if (wait.fd < 0)
        break;
      if (timeout == 0) {
        drop(conn);
        return first_failure;
      }
      int ready = ::poll(&wait, 1, timeout);
      if (ready < 0 && errno != EINTR)
        break;
      if (ready > 0 && PQconsumeInput(conn) == 0)
        break;
    }
    PGresult* next = PQgetResult(conn);
    if (next == nullptr)
      return first_failure;
    auto status = PQresultStatus(next);
    if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH) {
      // A COPY cannot be read to its end here: leave it to libpq to fail on the next command.
      PQclear(next);
      drop(conn);
      return first_failure;
    }
    if (status == PGRES_FATAL_ERROR && first_failure.empty()) {
      const char* state = PQresultErrorField(next, PG_DIAG_SQLSTATE);
      first_failure = state == nullptr ? "?" : state;
    }
    PQclear(next);
  }
}

bool needs_prepare(const prepared_statements& prepared, const statement& stmt) {
  auto found = prepared.find(stmt.name);
  if (found == prepared.end())
    return true;
  if (found->second != stmt.sql) {
    throw error(error_kind::internal,
                "statement '" + stmt.name + "' was prepared with different SQL on this connection");
  }
  return false;
}

result run(pg_conn* conn, prepared_statements* prepared, const statement& stmt,
           const std::vector<bound_param>& parameters, result_format format,
           std::string_view context, const stop_control& control) {
  param_arrays arrays{parameters};
  const int result_format_code = static_cast<int>(format);
  if (prepared == nullptr) {
    int sent =
        PQsendQueryParams(conn, stmt.sql.c_str(), arrays.count(), nullptr, arrays.values.data(),
                          arrays.length_data(), arrays.format_data(), result_format_code);
    return collect(conn, sent, context, stmt.sql, control);
  }
  if (needs_prepare(*prepared, stmt)) {
    int sent = PQsendPrepare(conn, stmt.name.c_str(), stmt.sql.c_str(), 0, nullptr);
    collect(conn, sent, context, stmt.sql, control);
    prepared->emplace(stmt.name, stmt.sql);
  }
  int sent = PQsendQueryPrepared(conn, stmt.name.c_str(), arrays.count(), arrays.values.data(),
                                 arrays.length_data(), arrays.format_data(), result_format_code);
  return collect(conn, sent, context, stmt.sql, control);
}

result run_sql(pg_conn* conn, std::string_view sql, const params& parameters, result_format format,
               std::string_view context, const stop_control& control) {
  param_arrays arrays{parameters};
  std::string text{sql};
  int sent = PQsendQueryParams(conn, text.c_str(), arrays.count(), nullptr, arrays.values.data(),
                               nullptr, nullptr, static_cast<int>(format));
  return collect(conn, sent, context, text, control);
}

pg_conn* handle_of(pqxx::transaction_base& tx) noexcept {
  return libpq_handle(tx);
}

}  // namespace pgkit::detail
