// COPY in and out on libpq's handle, in text format.

#include <libpq-fe.h>

#include <exception>

#include "migrate/migration_sql.hpp"
#include "pgkit/error.hpp"
#include "pgkit/query.hpp"
#include "query/statement.hpp"

namespace pgkit {
namespace detail {
namespace {

// Data is sent in pieces of about this size: fewer calls into libpq than one per row, and the
// memory held stays small.
constexpr std::size_t k_copy_buffer = 64 * 1024;

// How long an abandoned COPY may take to end before its connection is closed.
constexpr std::chrono::milliseconds k_abort_grace{2000};

// Sends `sql` and returns its first result, which must be `expected` (a COPY state).
void start_copy(PGconn* conn, std::string_view sql, ExecStatusType expected,
                std::string_view context) {
  std::string text{sql};
  if (PQsendQuery(conn, text.c_str()) == 0)
    throw_failure(conn, nullptr, context, text);
  PGresult* first = PQgetResult(conn);
  auto status = first == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(first);
  if (status == expected) {
    PQclear(first);
    return;
  }
  if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH) {
    PQclear(first);
    if (status == PGRES_COPY_IN)
      PQputCopyEnd(conn, "not the COPY direction pgkit expected");
    drain(conn, k_abort_grace);
    throw usage_error(std::string{context} + ": the statement is a COPY in the other direction",
                      expected == PGRES_COPY_IN ? "give a COPY ... FROM STDIN statement"
                                                : "give a COPY ... TO STDOUT statement");
  }
  if (status == PGRES_FATAL_ERROR || first == nullptr) {
    drain(conn, k_abort_grace);
    throw_failure(conn, first, context, text);
  }
  PQclear(first);
  drain(conn, k_abort_grace);
  throw usage_error(std::string{context} + ": the statement is not a COPY: " + text.substr(0, 200),
                    expected == PGRES_COPY_IN ? "give a COPY ... FROM STDIN statement"
                                              : "give a COPY ... TO STDOUT statement");
}

// Reads the results that end a COPY and returns the rows it copied.
std::uint64_t end_copy(PGconn* conn, std::string_view context, std::string_view sql) {
  PGresult* done = PQgetResult(conn);
  PGresult* extra = nullptr;
  while ((extra = PQgetResult(conn)) != nullptr)
    PQclear(extra);
  return checked(conn, done, context, sql, {}, false).affected_rows();
}

}  // namespace

/// A COPY FROM STDIN in progress on one connection.
class copy_stream {
 public:
  copy_stream(PGconn* conn, std::string statement)
      : m_conn(conn), m_statement(std::move(statement)) {
    start_copy(m_conn, m_statement, PGRES_COPY_IN, k_context);
    m_buffer.reserve(k_copy_buffer + 1024);
  }

  ~copy_stream() {
    if (m_finished || PQstatus(m_conn) != CONNECTION_OK)
      return;
    // Not finished: the server throws the rows away and ends the COPY with an error.
    PQputCopyEnd(m_conn, "pgkit: the COPY was abandoned before finish()");
    drain(m_conn, k_abort_grace);
  }

  std::string& buffer() {
    if (m_finished)
      throw usage_error("the COPY is already finished; start a new one");
    return m_buffer;
  }

  void flush_if_full() {
    if (m_buffer.size() >= k_copy_buffer)
      flush();
  }

  std::uint64_t finish() {
    if (m_finished)
      throw usage_error("the COPY is already finished; start a new one");
    m_finished = true;
    flush();
    if (PQputCopyEnd(m_conn, nullptr) != 1)
      fail();
    return end_copy(m_conn, k_context, m_statement);
  }

 private:
  static constexpr std::string_view k_context = "copying into the database";

  void flush() {
    if (m_buffer.empty())
      return;
    if (PQputCopyData(m_conn, m_buffer.data(), static_cast<int>(m_buffer.size())) != 1)
      fail();
    m_buffer.clear();
  }

  // The COPY failed while sending: the server's error is in the results.
  [[noreturn]] void fail() {
    m_finished = true;
    end_copy(m_conn, k_context, m_statement);
    throw_failure(m_conn, nullptr, k_context, m_statement);
  }

  PGconn* m_conn;
  std::string m_statement;
  std::string m_buffer;
  bool m_finished = false;
};

namespace {

std::string copy_statement(std::string_view table, const std::vector<std::string>& columns,
                           std::string_view schema) {
  if (table.empty())
    throw usage_error("copy_in needs a table name");
  if (columns.empty())
    throw usage_error("copy_in needs at least one column");
  std::string sql = "COPY ";
  if (!schema.empty())
    sql += quote_identifier(std::string{schema}) + ".";
  sql += quote_identifier(std::string{table}) + " (";
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (i > 0)
      sql += ", ";
    sql += quote_identifier(columns[i]);
  }
  return sql + ") FROM STDIN";
}

// Appends `value` in COPY's text format.
void append_escaped(std::string& out, std::string_view value) {
  std::size_t plain_from = 0;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    const char* escape = nullptr;
    switch (c) {
      case '\\':
        escape = "\\\\";
        break;
      case '\t':
        escape = "\\t";
        break;
      case '\n':
        escape = "\\n";
        break;
      case '\r':
        escape = "\\r";
        break;
      default:
        continue;
    }
    out.append(value.data() + plain_from, i - plain_from);
    out.append(escape);
    plain_from = i + 1;
  }
  out.append(value.data() + plain_from, value.size() - plain_from);
}

std::uint64_t read_copy(PGconn* conn, std::string_view sql,
                        const std::function<void(std::string_view chunk)>& on_data) {
  constexpr std::string_view context = "copying out of the database";
  start_copy(conn, sql, PGRES_COPY_OUT, context);
  std::exception_ptr callback_error;
  for (;;) {
    char* chunk = nullptr;
    int length = PQgetCopyData(conn, &chunk, 0);
    if (length < 0)
      break;
    if (!callback_error) {
      try {
        on_data(std::string_view{chunk, static_cast<std::size_t>(length)});
      } catch (...) {
        callback_error = std::current_exception();
      }
    }
    PQfreemem(chunk);
  }
  auto rows = end_copy(conn, context, sql);
  if (callback_error)
    std::rethrow_exception(callback_error);
  return rows;
}

}  // namespace
}  // namespace detail

copy_in::copy_in(pqxx::connection& conn, std::string_view table, std::vector<std::string> columns,
                 std::string_view schema)
    : m_stream(std::make_unique<detail::copy_stream>(
          detail::libpq_handle(conn), detail::copy_statement(table, columns, schema))),
      m_columns(columns.size()) {}

copy_in::copy_in(pqxx::transaction_base& tx, std::string_view table,
                 std::vector<std::string> columns, std::string_view schema)
    : m_stream(std::make_unique<detail::copy_stream>(
          detail::handle_of(tx), detail::copy_statement(table, columns, schema))),
      m_columns(columns.size()) {}

copy_in::~copy_in() = default;

void copy_in::write_row(const params& values) {
  if (values.size() != m_columns) {
    throw usage_error("copy_in::write_row got " + std::to_string(values.size()) + " values for " +
                      std::to_string(m_columns) + " columns");
  }
  auto& out = m_stream->buffer();
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0)
      out += '\t';
    if (values[i])
      detail::append_escaped(out, *values[i]);
    else
      out += "\\N";
  }
  out += '\n';
  m_stream->flush_if_full();
}

std::uint64_t copy_in::finish() {
  return m_stream->finish();
}

copy_in_raw::copy_in_raw(pqxx::connection& conn, std::string_view copy_statement)
    : m_stream(std::make_unique<detail::copy_stream>(detail::libpq_handle(conn),
                                                     std::string{copy_statement})) {}

copy_in_raw::copy_in_raw(pqxx::transaction_base& tx, std::string_view copy_statement)
    : m_stream(std::make_unique<detail::copy_stream>(detail::handle_of(tx),
                                                     std::string{copy_statement})) {}

copy_in_raw::~copy_in_raw() = default;

void copy_in_raw::write(std::string_view data) {
  m_stream->buffer().append(data);
  m_stream->flush_if_full();
}

std::uint64_t copy_in_raw::finish() {
  return m_stream->finish();
}

std::uint64_t copy_out(pqxx::connection& conn, std::string_view copy_statement,
                       const std::function<void(std::string_view chunk)>& on_data) {
  return detail::read_copy(detail::libpq_handle(conn), copy_statement, on_data);
}

std::uint64_t copy_out(pqxx::transaction_base& tx, std::string_view copy_statement,
                       const std::function<void(std::string_view chunk)>& on_data) {
  return detail::read_copy(detail::handle_of(tx), copy_statement, on_data);
}

}  // namespace pgkit
