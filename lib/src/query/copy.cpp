// COPY in and out, in text format, through the wire layer.

#include <exception>

#include "core/text.hpp"
#include "pgkit/error.hpp"
#include "pgkit/query.hpp"
#include "wire/wire.hpp"

namespace pgkit {
namespace detail {

/// A COPY FROM STDIN in progress on one connection.
class copy_stream {
 public:
  copy_stream(const wire& on, std::string statement, const query_options& options)
      : m_wire(on), m_statement(std::move(statement)), m_control(stop_control::from(options)) {
    m_wire.start_copy(m_statement, copy_direction::in, k_context, m_control);
    m_buffer.reserve(k_copy_buffer + 1024);
  }

  ~copy_stream() {
    if (m_finished || m_wire.state() == session_state::broken)
      return;
    // Not finished: the server throws the rows away and ends the COPY with an error.
    try {
      m_wire.end_copy_in("pgkit: the COPY was abandoned before finish()", k_context, m_control,
                         m_statement);
    } catch (...) {
      // The expected outcome: the server reports the abandoned COPY as an error.
    }
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
    flush();
    m_finished = true;
    return m_wire.end_copy_in(nullptr, k_context, m_control, m_statement);
  }

 private:
  static constexpr std::string_view k_context = "copying into the database";
  // Data is sent in pieces of about this size: fewer calls into libpq than one per row, and the
  // memory held stays small.
  static constexpr std::size_t k_copy_buffer = 64 * 1024;

  void flush() {
    if (m_buffer.empty())
      return;
    try {
      m_wire.put_copy(m_buffer, k_context, m_control, m_statement);
    } catch (...) {
      // The COPY is over (canceled, or the server refused the data): nothing more is sent.
      m_finished = true;
      if (m_wire.state() == session_state::busy)
        m_wire.drain(m_control, k_context, true);
      throw;
    }
    m_buffer.clear();
  }

  wire m_wire;
  std::string m_statement;
  stop_control m_control;
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
    sql += quote_identifier(schema) + ".";
  sql += quote_identifier(table) + " (";
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (i > 0)
      sql += ", ";
    sql += quote_identifier(columns[i]);
  }
  return sql + ") FROM STDIN";
}

// Appends `value` in COPY's text format.
void append_escaped(std::string& out, std::string_view value) {
  check_no_nul(value, "a COPY value");
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

}  // namespace
}  // namespace detail

copy_in::copy_in(pqxx::connection& conn, std::string_view table, std::vector<std::string> columns,
                 std::string_view schema, const query_options& options)
    : m_stream(std::make_unique<detail::copy_stream>(
          detail::wire::of(conn), detail::copy_statement(table, columns, schema), options)),
      m_columns(columns.size()) {}

copy_in::copy_in(pqxx::transaction_base& tx, std::string_view table,
                 std::vector<std::string> columns, std::string_view schema,
                 const query_options& options)
    : m_stream(std::make_unique<detail::copy_stream>(
          detail::wire::of(tx), detail::copy_statement(table, columns, schema), options)),
      m_columns(columns.size()) {}

copy_in::~copy_in() = default;

void copy_in::write_row(const params& values) {
  if (values.size() != m_columns) {
    throw usage_error("copy_in::write_row got " + std::to_string(values.size()) + " values for " +
                      std::to_string(m_columns) + " columns");
  }
  auto& out = m_stream->buffer();
  const auto row_start = out.size();
  try {
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (i > 0)
        out += '\t';
      if (values[i])
        detail::append_escaped(out, *values[i]);
      else
        out += "\\N";
    }
  } catch (...) {
    out.resize(row_start);  // a refused row leaves nothing half-written behind
    throw;
  }
  out += '\n';
  m_stream->flush_if_full();
}

std::uint64_t copy_in::finish() {
  return m_stream->finish();
}

copy_in_raw::copy_in_raw(pqxx::connection& conn, std::string_view copy_statement,
                         const query_options& options)
    : m_stream(std::make_unique<detail::copy_stream>(detail::wire::of(conn),
                                                     std::string{copy_statement}, options)) {}

copy_in_raw::copy_in_raw(pqxx::transaction_base& tx, std::string_view copy_statement,
                         const query_options& options)
    : m_stream(std::make_unique<detail::copy_stream>(detail::wire::of(tx),
                                                     std::string{copy_statement}, options)) {}

copy_in_raw::~copy_in_raw() = default;

void copy_in_raw::write(std::string_view data) {
  m_stream->buffer().append(data);
  m_stream->flush_if_full();
}

std::uint64_t copy_in_raw::finish() {
  return m_stream->finish();
}

namespace {

constexpr std::string_view k_copy_out_context = "copying out of the database";

std::uint64_t read_copy(const detail::wire& on, std::string_view sql,
                        const std::function<void(std::string_view chunk)>& on_data,
                        const query_options& options) {
  const auto control = detail::stop_control::from(options);
  on.start_copy(sql, detail::copy_direction::out, k_copy_out_context, control);
  return on.read_copy(on_data, k_copy_out_context, control, sql);
}

}  // namespace

std::uint64_t copy_out(pqxx::connection& conn, std::string_view copy_statement,
                       const std::function<void(std::string_view chunk)>& on_data,
                       const query_options& options) {
  return read_copy(detail::wire::of(conn), copy_statement, on_data, options);
}

std::uint64_t copy_out(pqxx::transaction_base& tx, std::string_view copy_statement,
                       const std::function<void(std::string_view chunk)>& on_data,
                       const query_options& options) {
  return read_copy(detail::wire::of(tx), copy_statement, on_data, options);
}

}  // namespace pgkit
