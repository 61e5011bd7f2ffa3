#pragma once
/// The query toolkit: rows streamed to a callback with column metadata first, statements that
/// must return no rows, COPY in and out, savepoints, an interrupt and a client-side deadline
/// that stop a connect or a statement, and a connection's status and clean close. Every
/// function throws pgkit::error with a kind from the SQLSTATE, never a libpqxx exception.
/// docs/query.md has the details.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <pqxx/connection>
#include <pqxx/transaction_base>

#include "pgkit/error.hpp"

// libpq's result type (PGresult), named without including libpq-fe.h here.
struct pg_result;

namespace pgkit {

struct connection_config;

/// A statement parameter in text format; std::nullopt is SQL NULL.
using param = std::optional<std::string>;
/// A statement's parameters, $1 first.
using params = std::vector<param>;

/// What the server says about one result column.
struct column_info {
  std::string name;         ///< the column's name (or alias)
  std::uint32_t type_oid;   ///< the type's OID (25 text, 23 int4, 1184 timestamptz, ...)
  std::uint32_t table_oid;  ///< 0 when the column is not a table column
  int table_column;         ///< 0 when the column is not a table column
};

/// One row as the server sent it, in text format. Valid only during the callback it is given
/// to; copy what you keep.
class row_view {
 public:
  /// Returns the number of columns.
  std::size_t size() const noexcept { return static_cast<std::size_t>(m_columns); }
  /// Returns true when `column` is SQL NULL. Throws usage_error for a column out of range.
  bool is_null(std::size_t column) const;
  /// Returns the value of `column` as text, std::nullopt for NULL. Throws usage_error for a
  /// column out of range.
  std::optional<std::string_view> get(std::size_t column) const;

  /// Typed reads of `column`, std::nullopt for NULL. Each accepts the PostgreSQL types named
  /// and throws usage_error naming the column, its type and what to do for another type (cast
  /// it in SQL), for a column out of range, or for a value it cannot convert (docs/query.md).
  /// int2 or int4.
  std::optional<std::int32_t> get_int32(std::size_t column) const;
  /// int2, int4 or int8.
  std::optional<std::int64_t> get_int64(std::size_t column) const;
  /// float4, float8 or numeric (NaN and the infinities included; numeric rounded to a double).
  std::optional<double> get_double(std::size_t column) const;
  /// bool.
  std::optional<bool> get_bool(std::size_t column) const;
  /// bytea, decoded from the hex text format (bytea_output = hex, the default).
  std::optional<std::string> get_bytes(std::size_t column) const;
  /// timestamptz in ISO DateStyle (the default), as UTC microseconds; infinity is refused.
  std::optional<std::chrono::system_clock::time_point> get_time(std::size_t column) const;
  /// uuid, as its canonical lower-case text (36 characters).
  std::optional<std::string_view> get_uuid(std::size_t column) const;

  /// Wraps one row of `result` (for pgkit's own code); `columns` is the result's column count,
  /// counted once per result by whoever walks its rows.
  row_view(const pg_result* result, int row) noexcept;
  row_view(const pg_result* result, int row, int columns) noexcept
      : m_result(result), m_row(row), m_columns(columns) {}

 private:
  void check(std::size_t column) const;
  // The text of `column` when its type is one of `types` (OIDs); throws usage_error otherwise.
  std::optional<std::string_view> typed(std::size_t column, const char* wanted,
                                        std::initializer_list<std::uint32_t> types) const;

  const pg_result* m_result;
  int m_row;
  int m_columns;
};

/// What the row callback of stream_query wants next.
enum class row_action {
  next,  ///< deliver the next row
  stop,  ///< cancel the rest; the connection stays usable
};

/// A trigger that stops a connect or a statement from another thread or a signal handler.
/// Once triggered it stays triggered; use a new one for the next operation. Non-copyable.
class interrupt {
 public:
  /// Creates an untriggered interrupt. Throws pgkit::error when the process has no file
  /// descriptors left.
  interrupt();
  ~interrupt();
  interrupt(const interrupt&) = delete;
  interrupt& operator=(const interrupt&) = delete;

  /// Triggers it; thread-safe and async-signal-safe.
  void trigger() noexcept;
  /// Returns true once trigger() was called.
  bool triggered() const noexcept;

  /// Returns a descriptor that becomes readable when triggered (for pgkit's own waits).
  int wait_handle() const noexcept { return m_pipe[0]; }

 private:
  std::atomic<bool> m_triggered{false};
  int m_pipe[2] = {-1, -1};
};

/// What may stop a statement before it finishes. Either one sends a cancel request to the
/// server and throws pgkit::error of kind `canceled`; when the server does not answer within
/// `cancel_grace`, the connection is closed (its status becomes `failed`) so the caller never
/// hangs.
struct query_options {
  const interrupt* stop = nullptr;                   ///< triggered: cancel, throw kind canceled
  std::optional<std::chrono::milliseconds> timeout;  ///< client-side deadline, same outcome
  /// How long to wait for the server to answer a cancel request before closing the connection
  /// (the wait restarts while data still arrives, up to ten times this in all).
  std::chrono::milliseconds cancel_grace{2000};
};

/// What stream_query delivered.
struct stream_result {
  std::uint64_t rows = 0;  ///< rows given to the callback
  bool stopped = false;    ///< true when the callback returned row_action::stop
  /// True when the server ran the statement to its end, so that all its effects stand: always
  /// for a statement that was not stopped, and for a stopped one when it had finished before
  /// the cancel arrived — a DELETE ... RETURNING or UPDATE ... RETURNING has run completely
  /// before its first row is sent, so stopping it deletes or updates every row all the same
  /// (roll back the surrounding transaction to undo it). False when the stop canceled it.
  bool completed = false;
  /// The server's command tag when completed ("SELECT 40", "DELETE 100000"), else empty.
  std::string command_tag;
};

/// Runs `sql` with `parameters` (unnamed, so it works behind PgBouncer in transaction mode) and
/// calls `on_columns` once with the result's columns (also for zero rows; empty for a statement
/// that returns none), then `on_row` for each row, holding one row (or one chunk) in memory at
/// a time. row_action::stop cancels the rest (inside a transaction block the rest is read and
/// discarded instead, so that the transaction stays usable; when that rest fails — a later
/// row's error — the transaction is aborted and stream_query throws that error, so it cannot
/// look committed). The timeout and interrupt hold for every wait, the discarded rest's
/// included. Throws pgkit::error of the SQLSTATE's kind (usage for a text parameter holding a
/// NUL byte, a busy connection, or a transaction that is no longer open; canceled when the
/// interrupt was triggered before the call: nothing is sent); an exception from a callback
/// leaves the connection usable and passes on.
stream_result stream_query(pqxx::connection& conn, std::string_view sql, const params& parameters,
                           const std::function<void(const std::vector<column_info>&)>& on_columns,
                           const std::function<row_action(const row_view&)>& on_row,
                           const query_options& options = {});
/// Same, inside the open transaction `tx`.
stream_result stream_query(pqxx::transaction_base& tx, std::string_view sql,
                           const params& parameters,
                           const std::function<void(const std::vector<column_info>&)>& on_columns,
                           const std::function<row_action(const row_view&)>& on_row,
                           const query_options& options = {});

/// Runs one statement that must return no rows and returns the rows it affected. Throws
/// usage_error when it returned rows (it has run by then: roll back if that matters), else
/// pgkit::error of the SQLSTATE's kind.
std::uint64_t execute_no_data(pqxx::connection& conn, std::string_view sql,
                              const params& parameters = {}, const query_options& options = {});
/// Same, inside the open transaction `tx`.
std::uint64_t execute_no_data(pqxx::transaction_base& tx, std::string_view sql,
                              const params& parameters = {}, const query_options& options = {});

namespace detail {
class copy_stream;
}

/// COPY table (columns) FROM STDIN from rows of text values. Nothing is visible to others until
/// finish() returns (and the surrounding transaction, if any, commits). Non-copyable.
class copy_in {
 public:
  /// Starts the COPY; `schema` empty means the search path decides. Throws pgkit::error
  /// (undefined_object for a missing table or column).
  /// `options` hold from the start to finish(): every wait for the server honours them.
  copy_in(pqxx::connection& conn, std::string_view table, std::vector<std::string> columns,
          std::string_view schema = {}, const query_options& options = {});
  /// Same, inside the open transaction `tx`.
  copy_in(pqxx::transaction_base& tx, std::string_view table, std::vector<std::string> columns,
          std::string_view schema = {}, const query_options& options = {});
  ~copy_in();  ///< not finished: aborts the COPY, nothing is copied
  copy_in(const copy_in&) = delete;
  copy_in& operator=(const copy_in&) = delete;

  /// Queues one row; escapes tabs, newlines, carriage returns and backslashes, NULL as \N.
  /// Throws usage_error when the number of values differs from the columns', when a value
  /// holds a NUL byte, or after finish().
  void write_row(const params& values);
  /// Ends the COPY and returns the rows the server copied. Throws pgkit::error of the
  /// SQLSTATE's kind (a unique violation arrives here as unique_violation).
  std::uint64_t finish();

 private:
  std::unique_ptr<detail::copy_stream> m_stream;
  std::size_t m_columns;
};

/// Any COPY ... FROM STDIN statement, with the data passed through as given. Non-copyable.
class copy_in_raw {
 public:
  /// Runs `copy_statement`, which must be a COPY ... FROM STDIN; `options` hold from the start
  /// to finish().
  copy_in_raw(pqxx::connection& conn, std::string_view copy_statement,
              const query_options& options = {});
  /// Same, inside the open transaction `tx`.
  copy_in_raw(pqxx::transaction_base& tx, std::string_view copy_statement,
              const query_options& options = {});
  ~copy_in_raw();  ///< not finished: aborts the COPY, nothing is copied
  copy_in_raw(const copy_in_raw&) = delete;
  copy_in_raw& operator=(const copy_in_raw&) = delete;

  /// Sends `data` (any split of the COPY data stream). Throws usage_error after finish().
  void write(std::string_view data);
  /// Ends the COPY and returns the rows the server copied. Throws pgkit::error.
  std::uint64_t finish();

 private:
  std::unique_ptr<detail::copy_stream> m_stream;
};

/// Runs `copy_statement` (a COPY ... TO STDOUT), calls `on_data` with each chunk the server
/// sends (one row per chunk in text and CSV format) and returns the rows copied. Throws
/// pgkit::error; an exception from `on_data` passes on after the COPY is read to its end.
/// `options` hold for the whole COPY.
std::uint64_t copy_out(pqxx::connection& conn, std::string_view copy_statement,
                       const std::function<void(std::string_view chunk)>& on_data,
                       const query_options& options = {});
/// Same, inside the open transaction `tx`.
std::uint64_t copy_out(pqxx::transaction_base& tx, std::string_view copy_statement,
                       const std::function<void(std::string_view chunk)>& on_data,
                       const query_options& options = {});

namespace detail {
/// Sends SAVEPOINT; throws pgkit::error.
void begin_savepoint(pqxx::transaction_base& tx);
/// Sends RELEASE SAVEPOINT; throws pgkit::error.
void release_savepoint(pqxx::transaction_base& tx);
/// Sends ROLLBACK TO SAVEPOINT and RELEASE SAVEPOINT; never throws.
void rollback_savepoint(pqxx::transaction_base& tx) noexcept;
/// Rethrows the exception being handled, a libpqxx exception turned into pgkit::error (saying
/// so when libpqxx rolled the whole transaction back).
[[noreturn]] void rethrow_in_savepoint(pqxx::transaction_base& tx);
}  // namespace detail

/// Runs body(tx) inside a savepoint: released on return, rolled back to on exception, which
/// passes on as a pgkit::error of its kind (pgkit::translate; exceptions that are not database
/// errors pass on unchanged). Nests. A libpqxx statement (tx.exec) that fails inside makes
/// libpqxx roll the whole transaction back, which no savepoint can prevent: the error then
/// says so, and pgkit refuses further statements on `tx` (kind usage) instead of running them
/// outside the transaction. Statements sent with pgkit's toolkit fail without ending it.
template <typename Body>
auto with_savepoint(pqxx::transaction_base& tx, Body&& body) -> decltype(body(tx)) {
  detail::begin_savepoint(tx);
  try {
    if constexpr (std::is_void_v<decltype(body(tx))>) {
      body(tx);
      detail::release_savepoint(tx);
    } else {
      auto result = body(tx);
      detail::release_savepoint(tx);
      return result;
    }
  } catch (...) {
    detail::rollback_savepoint(tx);
    detail::rethrow_in_savepoint(tx);
  }
}

/// A connection's state as libpq sees it.
enum class connection_state {
  open,     ///< usable
  busy,     ///< a statement or COPY is in progress (open, and in use)
  closing,  ///< close() runs on another thread: Terminate sent or being sent
  failed,   ///< the connection broke (server gone, backend terminated)
  closed,   ///< closed gracefully by close()
};

/// A connection's state with what ended a failed one (postgres_async's four states: open,
/// closing, failed with its error and whether resources were released, closed gracefully).
/// Compares with connection_state directly: `status(conn) == connection_state::open`.
struct connection_status {
  connection_state state = connection_state::open;
  /// failed: why the connection ended (the server's reason when it sent one, else libpq's
  /// words); empty in every other state.
  std::string error;
  /// failed: true once libpq has closed the socket, so that only the pqxx::connection object
  /// is left to destroy (or to pass to close()); closed: always true; otherwise false.
  bool resources_released = false;

  operator connection_state() const noexcept { return state; }
  friend bool operator==(const connection_status& a, connection_state b) noexcept {
    return a.state == b;
  }
  friend bool operator!=(const connection_status& a, connection_state b) noexcept {
    return a.state != b;
  }
};

/// Returns `conn`'s state; reads what the server already sent (a termination notice) but never
/// waits and never sends anything.
connection_status status(const pqxx::connection& conn);

/// Closes `conn` gracefully: Terminate sent, socket closed. Never throws. Callbacks given to
/// listen_to_notifications for `conn` are dropped.
void close(pqxx::connection& conn) noexcept;

/// How a connection ended, as close_finished reports it.
struct connection_end {
  bool graceful = false;  ///< true when close() ended it
  /// Not graceful: why it ended — the server's reason when it sent one ("terminating
  /// connection due to administrator command"), else what the client saw.
  std::string error;
};

/// Waits until `conn` ends: closed by close() (on another thread), ended by the server (an
/// administrator's pg_terminate_backend, a shutdown) or lost with its socket, and says how.
/// Returns at once for a connection that already ended; std::nullopt when `options`' timeout
/// passed or its interrupt was triggered first. It reads nothing libpq would read, so another
/// thread may use `conn` meanwhile (but must not destroy it). A network that drops packets
/// without a reset is noticed only as libpq notices it (TCP keepalives, a statement's error).
std::optional<connection_end> close_finished(const pqxx::connection& conn,
                                             const query_options& options = {});

/// Called with the sending backend's process id and the payload of each notification.
using notification_callback = std::function<void(int sender_pid, const std::string& payload)>;

/// Sends LISTEN `channel` (quoted: case and spaces kept) on `conn` and keeps `callback` with
/// the connection; it is called, on the calling thread, for each notification on `channel` that
/// arrived by the end of a toolkit call on `conn` (stream_query, execute_no_data,
/// wait_for_notifications). Several callbacks per connection and per channel are kept and called
/// in the order they were given; calling it twice for one channel is fine (LISTEN is
/// idempotent). Inside an open transaction the LISTEN is part of it: a rollback undoes it
/// while the callback stays kept (docs/query.md lists the caveats). Throws pgkit::error (the
/// callback is not kept then). A callback must not throw: its exception passes on from the call
/// that dispatched, and the notifications after it wait for the next call.
void listen_to_notifications(pqxx::connection& conn, std::string_view channel,
                             notification_callback callback, const query_options& options = {});

/// Waits until at least one notification arrived on `conn` (or `options`' timeout passed, or
/// its interrupt was triggered) and calls the callbacks listen_to_notifications kept for each
/// one that arrived; returns how many arrived. Sends nothing. Throws kind connection_lost when
/// the connection ended, usage when a statement is in progress on it.
std::size_t wait_for_notifications(pqxx::connection& conn, const query_options& options = {});

/// How one statement of a pipeline ended.
enum class pipeline_outcome {
  ok,       ///< it ran; its rows and command tag are in the result
  failed,   ///< the server refused it; the error says why (kind from the SQLSTATE)
  skipped,  ///< an earlier statement of its sync failed, so the server did not run it
};

/// The result of one statement of a pipeline.
struct pipeline_result {
  pipeline_outcome outcome = pipeline_outcome::skipped;
  std::string command_tag;            ///< ok: "INSERT 0 1", "SELECT 3", ...
  std::uint64_t affected_rows = 0;    ///< ok: the rows it inserted, updated, deleted or returned
  std::vector<params> rows;           ///< ok: the rows it returned, as text (NULL: std::nullopt)
  std::optional<pgkit::error> error;  ///< failed: the error (skipped: why it was skipped)
};

/// Many statements in flight at once on one connection (libpq's pipeline mode, libpq 14 or
/// newer at run time): add() queues statements with their parameters, sync() ends a group, and
/// collect() sends them all, waits, and returns one result per statement in order. The
/// statements of one sync group that are not in a transaction block of the caller's run as one
/// implicit transaction: when one fails, the ones before it in the group are rolled back and
/// the rest are reported as skipped; the next group runs. Not thread-safe; the connection must
/// not be used by anything else until collect() returns. docs/query.md has the details.
class pipeline {
 public:
  /// A pipeline on `conn`; `options` hold for the whole of collect().
  explicit pipeline(pqxx::connection& conn, query_options options = {});
  /// Same, inside the open transaction `tx` (a sync then does not commit it).
  explicit pipeline(pqxx::transaction_base& tx, query_options options = {});
  ~pipeline();
  pipeline(const pipeline&) = delete;
  pipeline& operator=(const pipeline&) = delete;

  /// Queues `sql` (one statement, parameters $1...) and returns its index in collect()'s
  /// results. Throws usage_error for a parameter holding a NUL byte.
  std::size_t add(std::string_view sql, params parameters = {});
  /// Ends the current sync group (collect() ends the last one by itself).
  void sync();
  /// Returns the number of statements queued.
  std::size_t size() const noexcept;
  /// Sends everything queued, waits for every result and returns them in the order added; the
  /// queue is empty afterwards. Throws pgkit::error for what fails the whole pipeline: usage
  /// when the libpq in the process is older than 14, or the connection is busy; canceled when
  /// the interrupt or timeout came first (a cancel request is sent for the statement running;
  /// the connection is closed when the server does not finish within cancel_grace);
  /// connection_lost when the connection broke.
  std::vector<pipeline_result> collect();

 private:
  struct impl;
  std::unique_ptr<impl> m_impl;
};

/// Opens a connection as `config` describes, which `stop` interrupts (kind canceled) besides
/// the connect timeout. Throws pgkit::error of kind `connection` as connect(config) does.
std::unique_ptr<pqxx::connection> connect(const connection_config& config, const interrupt& stop);

}  // namespace pgkit
