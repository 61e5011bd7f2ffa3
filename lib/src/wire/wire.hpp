#pragma once
// The wire layer: the one sender. Every statement pgkit sends — the stores, the query toolkit,
// COPY, the listener, the sweeps, the migration engine, run_transaction, savepoints and the
// pool's validation — goes through `wire`, the only code that calls libpq's PQsend*/PQexec*
// (scripts/check-layers enforces it). A wire is a view of one libpq connection: cheap to make
// for each call, holding no state of its own beyond the statements prepared on the connection,
// which live with the pooled connection.
//
// Before anything is sent it checks what a server cannot: the interrupt or deadline has not
// already passed, the connection is not busy with another statement or a COPY, the transaction
// it was given is still open, and no text parameter holds a NUL byte (libpq would cut it
// there). It then waits for results under the interrupt and the deadline: when either passes
// it sends a cancel request, and when the server does not answer within the grace period it
// closes the socket so that no wait outlives the deadline it was given.

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/pqxx_compat.hpp"
#include "pgkit/error.hpp"
#include "pgkit/query.hpp"

namespace pgkit::detail {

using steady_clock = std::chrono::steady_clock;

/// libpq's PQsetChunkedRowsMode (libpq 17 and newer).
using chunked_rows_setter = int (*)(pg_conn*, int);
/// PGRES_TUPLES_CHUNK's value in libpq 17's ExecStatusType; older headers do not name it.
constexpr int k_tuples_chunk = 12;
/// The libpq in this process's PQsetChunkedRowsMode: from the header at build time, else looked
/// up in the libpq loaded at run time; nullptr when that libpq is older than 17 (streaming then
/// uses single-row mode).
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

/// How a store statement is planned.
enum class planning {
  /// Prepared once per connection; the server may settle on a generic plan after five runs.
  cached,
  /// Sent unnamed, so that every run is planned for its parameters and the table as it is now.
  /// For statements whose table starts empty and grows fast: a generic plan made while it was
  /// empty (a sequential scan) stays in use until the next ANALYZE.
  each_time,
};

/// A statement of a store: its name on the connection and its SQL.
struct statement {
  std::string name;
  std::string sql;
  planning plan = planning::cached;
};

/// A store statement as written in its store's statements header: a short name and SQL in
/// which `{S}` stands for the quoted schema.
struct statement_text {
  const char* name;
  const char* sql;
  planning plan = planning::cached;
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
using owned_result = std::unique_ptr<pg_result, result_deleter>;

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
  owned_result m_result;
};

/// Statement name -> SQL, for every statement prepared on one connection.
using prepared_statements = std::unordered_map<std::string, std::string>;

/// What the session on a connection is doing, from libpq's point of view (nothing is sent).
enum class session_state {
  idle,            ///< open, outside any transaction block: safe to hand to someone else
  in_transaction,  ///< inside a transaction block that can still commit
  failed,          ///< inside a transaction block that an error aborted
  busy,            ///< a statement or COPY is still running
  broken,          ///< closed or lost
};

/// Returns the state of the session on `conn` without talking to the server.
session_state session_state_of(pg_conn* conn) noexcept;

/// How a streamed statement ended.
struct stream_end {
  /// The command tag of a statement that ran to its end ("DELETE 12", "SELECT 40"); empty when
  /// it was canceled before its end.
  std::string command_tag;
};

/// What draining the rest of a statement found.
struct drained {
  std::exception_ptr failure;  ///< the first failure, as the error it maps to
  std::string command_tag;     ///< the last success's command tag ("DELETE 12")
};

/// One statement of a pipeline: unnamed, text parameters, text results.
struct pipelined_statement {
  std::string sql;
  params parameters;
  bool sync_after = false;  ///< a sync point follows it (the last statement always gets one)
};

/// What became of one pipelined statement.
struct pipelined_result {
  enum class outcome { ok, failed, skipped };
  outcome how = outcome::skipped;
  result rows;                 ///< ok: the statement's result
  std::exception_ptr failure;  ///< failed: the error it maps to
};

/// True when the libpq in this process has pipeline mode (libpq 14 or newer).
bool has_pipeline_mode() noexcept;

/// The direction of a COPY.
enum class copy_direction { in, out };

/// The one sender on one libpq connection.
class wire {
 public:
  /// What the caller was given: a connection (any state) or a transaction, which must still be
  /// open on the server when a statement is sent.
  enum class scope { connection, transaction };

  explicit wire(pg_conn* conn, prepared_statements* prepared = nullptr,
                scope given = scope::connection) noexcept
      : m_conn(conn), m_prepared(prepared), m_scope(given) {}

  /// The wire of a libpqxx connection, for statements outside a transaction of the caller's.
  static wire of(pqxx::connection& connection) noexcept;
  /// The wire of the connection `tx` runs on. For a transaction with a block (pqxx::work and
  /// the like) statements are refused once the block is gone on the server.
  static wire of(pqxx::transaction_base& tx) noexcept;

  pg_conn* handle() const noexcept { return m_conn; }
  session_state state() const noexcept { return session_state_of(m_conn); }

  /// Runs `stmt` with `parameters`: prepared once under its name when this wire has the
  /// connection's prepared statements (reused after), unnamed otherwise (a pooler in
  /// transaction mode) or when it is planned each time. Throws pgkit::error (the server's message
  /// prefixed by `context`).
  result run(const statement& stmt, const std::vector<bound_param>& parameters,
             result_format format, std::string_view context,
             const stop_control& control = {}) const;

  /// Runs `sql` unnamed with text parameters. Throws pgkit::error.
  result run(std::string_view sql, const params& parameters, result_format format,
             std::string_view context, const stop_control& control = {}) const;

  /// Runs `sql` in the simple query protocol, which allows several statements in one string
  /// (a migration file): returns the last result. Throws pgkit::error for the first failure.
  result script(std::string_view sql, std::string_view context,
                const stop_control& control = {}) const;

  /// Runs `sql` with text parameters, giving `on_batch` each result of rows as it arrives
  /// (one row, or one chunk with libpq 17), the first one also when there are no rows.
  /// `on_batch` returns false to stop: outside a transaction block the statement is canceled;
  /// inside one the rest is read and thrown away (a cancel would abort the transaction), and a
  /// failure in that rest is thrown (the transaction is aborted: it must not look committed).
  /// Every wait, the rest's included, honours `control`. An exception from `on_batch` passes on
  /// after the same clean-up. Throws pgkit::error.
  stream_end stream(std::string_view sql, const params& parameters,
                    const std::function<bool(const pg_result*)>& on_batch, std::string_view context,
                    const stop_control& control) const;

  /// Sends a COPY statement and waits under `control` until the server is in COPY `direction`.
  /// Throws usage_error for a statement that is not a COPY in that direction, else
  /// pgkit::error.
  void start_copy(std::string_view sql, copy_direction direction, std::string_view context,
                  const stop_control& control) const;
  /// Queues COPY data, waiting under `control` while the socket is full.
  void put_copy(std::string_view data, std::string_view context, const stop_control& control,
                std::string_view sql) const;
  /// Ends a COPY IN (`abort_reason` non-empty aborts it) and returns the rows the server
  /// copied. Throws pgkit::error.
  std::uint64_t end_copy_in(const char* abort_reason, std::string_view context,
                            const stop_control& control, std::string_view sql) const;
  /// Reads a COPY OUT to its end under `control`, giving `on_data` each chunk; returns the
  /// rows copied. An exception from `on_data` passes on after the COPY is read to its end.
  std::uint64_t read_copy(const std::function<void(std::string_view)>& on_data,
                          std::string_view context, const stop_control& control,
                          std::string_view sql) const;

  /// Sends `statements` in libpq's pipeline mode (a sync after each one marked and after the
  /// last), then reads one result per statement in order, waiting under `control` (which
  /// cancels the statement running when it expires). Leaves pipeline mode before it returns.
  /// Throws usage_error when the libpq in the process has no pipeline mode, else pgkit::error
  /// for what fails the whole pipeline (a lost connection, a cancel not answered in time).
  std::vector<pipelined_result> pipeline(const std::vector<pipelined_statement>& statements,
                                         std::string_view context,
                                         const stop_control& control) const;

  /// Sends `sql` without waiting for its results (an event loop reads them); returns false
  /// when the connection broke.
  bool send_nowait(const std::string& sql) const noexcept;

  /// Sends an empty statement and returns true when the server answered before `deadline`;
  /// a server that does not answer in time gets its connection dropped. Never throws.
  bool ping(steady_clock::time_point deadline) const noexcept;

  /// Ends the transaction block on the connection, if any, with ROLLBACK; drops the
  /// connection when that does not finish within `grace`. Never throws.
  void rollback(std::chrono::milliseconds grace = std::chrono::milliseconds{2000}) const noexcept;

  /// Sends a cancel request for what runs on the connection, waiting at most `grace` for the
  /// postmaster to take it; never throws.
  void cancel(std::chrono::milliseconds grace) const noexcept;

  /// Reads and frees the rest of the results of the statement in flight: until `control`
  /// expires (then a cancel request is sent), and after a cancel (`canceled`: one was sent
  /// already) within the grace period. Drops the connection when the server does not finish
  /// in time. Never throws pgkit errors of the statement: it returns them.
  drained drain(const stop_control& control, std::string_view context, bool canceled = false) const;

  /// Closes the socket so that libpq sees the connection as broken (status failed), without
  /// freeing it: libpqxx still owns it.
  void drop() const noexcept;

 private:
  // Throws what makes sending pointless or wrong (see the file's comment).
  void check_sendable(std::string_view context, const stop_control& control) const;
  result collect(int sent, std::string_view context, std::string_view sql,
                 const stop_control& control) const;

  pg_conn* m_conn;
  prepared_statements* m_prepared;
  scope m_scope;
};

/// A transaction block on a wire: BEGIN now, COMMIT by commit(), ROLLBACK when destroyed
/// without it. For pgkit's own transactions (sweeps, migrations), not the caller's.
class block {
 public:
  block(const wire& on, std::string_view context, const stop_control& control = {});
  ~block();
  block(const block&) = delete;
  block& operator=(const block&) = delete;

  /// Commits. Throws pgkit::error; a connection lost during COMMIT is reported as such, its
  /// outcome unknown.
  void commit(std::string_view context, const stop_control& control = {});

 private:
  const wire& m_wire;
  bool m_open = true;
};

/// Throws the pgkit::error for a failed statement on `conn` (frees `failed`, which may be null):
/// the SQLSTATE's kind with the server's message, or connection_lost with the server's reason.
[[noreturn]] void throw_failure(pg_conn* conn, pg_result* failed, std::string_view context,
                                std::string_view sql);

/// Throws the sql_error (SQLSTATE 25P02) of a transaction that cannot commit because an earlier
/// statement's failure aborted it on the server; the caller has rolled it back.
[[noreturn]] void throw_aborted(std::string_view context);

/// Throws usage_error when `text` (a parameter or statement) holds a NUL byte: libpq would send
/// only what comes before it.
void check_no_nul(std::string_view text, std::string_view what);

}  // namespace pgkit::detail
