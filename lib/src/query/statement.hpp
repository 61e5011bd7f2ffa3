#pragma once
// The one statement layer under the query toolkit and every store. Here, and nowhere else:
//  - statements are named (the schema hashed in, always under PostgreSQL's 63-byte limit) and
//    sent prepared or unnamed (run());
//  - a failed result becomes a pgkit::error by SQLSTATE (throw_failure());
//  - a statement is waited for under an interrupt and a client-side deadline, which cancel it
//    and drop the connection when the server does not answer (await()).
// It works on libpq's handle of a libpqxx connection (core/pqxx_compat.hpp reaches it), inside
// or outside a libpqxx transaction.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/pqxx_compat.hpp"
#include "pgkit/query.hpp"

namespace pgkit::detail {

using steady_clock = std::chrono::steady_clock;

/// libpq's PQsetChunkedRowsMode (libpq 17 and newer).
using chunked_rows_setter = int (*)(pg_conn*, int);
/// PGRES_TUPLES_CHUNK's value in libpq 17's ExecStatusType; older headers do not name it.
constexpr int k_tuples_chunk = 12;
/// The libpq in this process's PQsetChunkedRowsMode: from the header at build time, else looked
/// up in the libpq loaded at run time; nullptr when that libpq is older than 17 (stream_query
/// then uses single-row mode).
chunked_rows_setter chunked_rows_function() noexcept;
/// "chunked rows" or "single-row mode": how stream_query receives rows in this process.
std::string_view row_mode() noexcept;

/// What may stop a statement: an interrupt and a deadline (both optional).
struct stop_control {
  const interrupt* stop = nullptr;
  std::optional<steady_clock::time_point> deadline;
  /// The timeout the deadline came from, for messages ("the 200 ms timeout passed").
  std::chrono::milliseconds timeout{0};
  std::chrono::milliseconds cancel_grace{2000};

  bool active() const noexcept { return stop != nullptr || deadline.has_value(); }
  /// Returns true when the interrupt was triggered or the deadline has passed.
  bool expired() const noexcept;
  /// Says why the statement was stopped.
  std::string reason() const;

  /// The control for a toolkit call, its deadline counted from now.
  static stop_control from(const query_options& options);
};

/// A statement of a store: its name on the connection and its SQL.
struct statement {
  std::string name;
  std::string sql;
};

/// A store statement as written in its store's statements header: a short name and SQL in
/// which `{S}` stands for the quoted schema.
struct statement_text {
  const char* name;
  const char* sql;
};

/// Returns "pgkit_<store>_<name>_<16 hex digits of a hash of schema>"; throws pgkit::error of
/// kind internal when that would not fit PostgreSQL's 63 bytes (the server would cut it, and
/// two schemas would share a name).
std::string statement_name(std::string_view store, std::string_view name, std::string_view schema);

/// Binds a store statement to `schema`.
statement make_statement(std::string_view store, const statement_text& text,
                         const std::string& schema);

/// One parameter of a store statement: text, binary bytes (borrowed) or NULL.
struct bound_param {
  enum class kind { text, binary, null };
  kind type = kind::null;
  std::string text;
  std::string_view bytes;
};
bound_param text_param(std::string_view text);
bound_param binary_param(std::string_view bytes);
bound_param int_param(std::optional<std::int64_t> number);

/// The format results come back in.
enum class result_format { text = 0, binary = 1 };

struct result_deleter {
  void operator()(pg_result* result) const noexcept;
};

/// A successful result, owned.
class result {
 public:
  result() = default;
  explicit result(pg_result* raw) noexcept : m_result(raw) {}
  int rows() const noexcept;
  bool is_null(int row, int column) const noexcept;
  /// The bytes of a field (binary or text format).
  std::string bytes(int row, int column) const;
  std::string_view view(int row, int column) const noexcept;
  /// A bigint field in binary format.
  std::int64_t int8(int row, int column) const noexcept;
  /// A boolean field in binary format.
  bool boolean(int row, int column) const noexcept;
  /// The rows a command affected (0 when it reports none).
  std::uint64_t affected_rows() const;
  const pg_result* get() const noexcept { return m_result.get(); }

 private:
  std::unique_ptr<pg_result, result_deleter> m_result;
};

/// Statement name -> SQL, for every statement prepared on one connection.
using prepared_statements = std::unordered_map<std::string, std::string>;

/// Returns true when `stmt` is not prepared yet; throws pgkit::error of kind internal when its
/// name was prepared with different SQL on this connection.
bool needs_prepare(const prepared_statements& prepared, const statement& stmt);

/// Runs `stmt` on `conn` with `parameters`: prepared once under its name and reused when
/// `prepared` is given (a pooler in transaction mode gets nullptr: unnamed every time). Throws
/// pgkit::error (the server's message prefixed by `context`).
result run(pg_conn* conn, prepared_statements* prepared, const statement& stmt,
           const std::vector<bound_param>& parameters, result_format format,
           std::string_view context, const stop_control& control = {});

/// Runs `sql` unnamed with text parameters. Throws pgkit::error.
result run_sql(pg_conn* conn, std::string_view sql, const params& parameters, result_format format,
               std::string_view context, const stop_control& control = {});

/// Throws the pgkit::error for a failed statement on `conn` (frees `failed`, which may be null):
/// the SQLSTATE's kind with the server's message, or connection_lost with the server's reason.
[[noreturn]] void throw_failure(pg_conn* conn, pg_result* failed, std::string_view context,
                                std::string_view sql);

/// Throws when `failed` (freed here) is not a success: a result that is not TUPLES_OK,
/// COMMAND_OK or EMPTY_QUERY (or null) goes to throw_failure, with a canceled error when
/// `control` stopped the statement.
result checked(pg_conn* conn, pg_result* raw, std::string_view context, std::string_view sql,
               const stop_control& control, bool canceled);

/// Waits for a statement's results under a stop_control.
class result_wait {
 public:
  result_wait(pg_conn* conn, const stop_control& control, std::string_view context) noexcept
      : m_conn(conn), m_control(control), m_context(context) {}

  /// Returns once libpq can give the next result without blocking. When the control expires
  /// first it sends a cancel request (once; the statement then ends with 57014), and when the
  /// server does not answer within the grace period it closes the connection and throws kind
  /// canceled. A broken connection returns at once (PQgetResult reports it).
  void ready();
  /// Returns true once a cancel request was sent.
  bool canceled() const noexcept { return m_canceled; }

 private:
  pg_conn* m_conn;
  const stop_control& m_control;
  std::string_view m_context;
  bool m_canceled = false;
  steady_clock::time_point m_grace_end{};
};

/// Sends a cancel request for what runs on `conn`, waiting at most `grace` for the postmaster
/// to take it; never throws.
void send_cancel(pg_conn* conn, std::chrono::milliseconds grace) noexcept;

/// Reads and frees the remaining results of the statement on `conn`, within `grace` when it
/// was canceled; returns the first failure's SQLSTATE ("" for none). Drops the connection when
/// the server does not finish in time.
std::string drain(pg_conn* conn, std::chrono::milliseconds grace);

/// Closes `conn`'s socket so that libpq sees the connection as broken (status failed), without
/// freeing it: libpqxx still owns it.
void drop(pg_conn* conn) noexcept;

/// Returns `text` without trailing newlines and spaces.
std::string trimmed(std::string_view text);

/// libpq's handle behind `tx`'s connection.
pg_conn* handle_of(pqxx::transaction_base& tx) noexcept;

}  // namespace pgkit::detail
