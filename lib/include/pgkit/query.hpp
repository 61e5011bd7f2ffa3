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
  std::size_t size() const noexcept;
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

  /// Wraps one row of `result` (for pgkit's own code).
  row_view(const pg_result* result, int row) noexcept : m_result(result), m_row(row) {}

 private:
  void check(std::size_t column) const;
  // The text of `column` when its type is one of `types` (OIDs); throws usage_error otherwise.
  std::optional<std::string_view> typed(std::size_t column, const char* wanted,
                                        std::initializer_list<std::uint32_t> types) const;

  const pg_result* m_result;
  int m_row;
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
  open,    ///< usable
  busy,    ///< a statement or COPY is in progress
  failed,  ///< the connection broke (server gone, backend terminated)
  closed,  ///< closed by close()
};

/// Returns `conn`'s state; reads what the server already sent (a termination notice) but never
/// waits and never sends anything.
connection_state status(const pqxx::connection& conn) noexcept;

/// Closes `conn` gracefully: Terminate sent, socket closed. Never throws.
void close(pqxx::connection& conn) noexcept;

/// Opens a connection as `config` describes, which `stop` interrupts (kind canceled) besides
/// the connect timeout. Throws pgkit::error of kind `connection` as connect(config) does.
std::unique_ptr<pqxx::connection> connect(const connection_config& config, const interrupt& stop);

}  // namespace pgkit
