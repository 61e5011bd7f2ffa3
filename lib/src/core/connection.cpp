#include "pgkit/connection.hpp"

#include <libpq-events.h>
#include <libpq-fe.h>

#include <mutex>
#include <utility>

#include "core/notices.hpp"
#include "core/pqxx_compat.hpp"
#include "core/sqlstate.hpp"
#include "core/text.hpp"
#include "pgkit/config.hpp"
#include "pgkit/error.hpp"

namespace pgkit {
namespace {

std::mutex g_handler_mutex;
std::shared_ptr<const notice_handler> g_handler;  // guarded by g_handler_mutex

thread_local std::string t_farewell;

std::string field(const PGresult* result, int code) {
  const char* value = PQresultErrorField(result, code);
  return value == nullptr ? std::string{} : std::string{value};
}

// The primary message of `result` on one line.
std::string primary_message(const PGresult* result) {
  auto message = field(result, PG_DIAG_MESSAGE_PRIMARY);
  for (auto& c : message) {
    if (c == '\n' || c == '\r')
      c = ' ';
  }
  return message;
}

// Keeps the server's last words: a FATAL that arrives while a statement runs becomes that
// statement's result, which libpqxx 6.4 drops when it finds the connection closed (it then
// reports only "Could not obtain client encoding: not connected.").
void remember_farewell(const PGresult* result) {
  if (PQresultStatus(result) != PGRES_FATAL_ERROR)
    return;
  auto severity = field(result, PG_DIAG_SEVERITY_NONLOCALIZED);
  if (severity == "FATAL" || severity == "PANIC")
    t_farewell = primary_message(result);
}

int watch_results(PGEventId event, void* info, void*) noexcept {
  try {
    if (event == PGEVT_RESULTCREATE)
      remember_farewell(static_cast<PGEventResultCreate*>(info)->result);
  } catch (...) {
    // Out of memory while copying a message: the error keeps libpqxx's words instead.
  }
  return 1;  // never fails a libpq operation
}

// libpq's notice receiver: replaces the default one, which prints to stderr.
void receive_notice(void*, const PGresult* result) noexcept {
  try {
    server_notice notice;
    notice.severity = field(result, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (notice.severity.empty())
      notice.severity = field(result, PG_DIAG_SEVERITY);
    notice.sqlstate = field(result, PG_DIAG_SQLSTATE);
    notice.message = primary_message(result);
    if (notice.severity == "FATAL" || notice.severity == "PANIC")
      t_farewell = notice.message;  // it arrived while no statement ran
    std::shared_ptr<const notice_handler> handler;
    {
      std::lock_guard<std::mutex> lock{g_handler_mutex};
      handler = g_handler;
    }
    if (handler && *handler)
      (*handler)(notice);
  } catch (...) {
    // A notice is advice; losing one must not break the statement that caused it.
  }
}

}  // namespace

namespace detail {

void route_notices(pg_conn* connection) noexcept {
  if (connection == nullptr)
    return;
  PQsetNoticeReceiver(connection, receive_notice, nullptr);
  PQregisterEventProc(connection, watch_results, "pgkit", nullptr);
}

std::string take_server_farewell() {
  return std::exchange(t_farewell, {});
}

void forget_server_farewell() noexcept {
  t_farewell.clear();
}

pgkit::error connection_lost_error(std::string_view context, std::string_view driver_message) {
  // libpqxx's own words ("Could not obtain client encoding: not connected.") say less than
  // the server's, which libpq received just before the connection closed: as a notice, or as
  // the result of the statement that the server cut off.
  std::string reason = take_server_farewell();
  reason =
      reason.empty() ? detail::trimmed(driver_message) : "the server ended the session: " + reason;
  std::string message = context.empty() ? reason : std::string{context} + ": " + reason;
  return pgkit::error(error_kind::connection_lost, message, connection_lost_hint());
}

}  // namespace detail

void set_notice_handler(notice_handler handler) {
  auto shared = std::make_shared<const notice_handler>(std::move(handler));
  std::lock_guard<std::mutex> lock{g_handler_mutex};
  g_handler = std::move(shared);
}

std::unique_ptr<pqxx::connection> connect(const std::string& conninfo) {
  return connect(config_from_url(conninfo, "the connection string"));
}

std::unique_ptr<pqxx::connection> connect(const connection_config& config) {
  auto conninfo = config.conninfo();
  try {
    auto connection = std::make_unique<pqxx::connection>(conninfo);
    detail::disable_reactivation(*connection);
    detail::route_notices(detail::libpq_handle(*connection));
    detail::forget_server_farewell();
    return connection;
  } catch (const pqxx::broken_connection& e) {
    std::string from = config.source.empty() ? "" : " (" + config.source + ")";
    throw error(error_kind::connection,
                "cannot connect to " + config.describe() + from + ": " + detail::trimmed(e.what()),
                detail::connect_failure_hint(e.what()));
  }
}

}  // namespace pgkit
