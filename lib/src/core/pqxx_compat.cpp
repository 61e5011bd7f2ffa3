#include "core/pqxx_compat.hpp"

#include <libpq-fe.h>

#include <exception>
#include <string>

#include "core/notices.hpp"
#include "pgkit/error.hpp"

namespace pgkit::detail {
namespace {

// libpqxx keeps the libpq handle private (`m_conn`, in connection_base in 6.4 and in connection
// in 7.x) and offers no transaction status. An explicit instantiation may name a private member
// ([temp.spec]), which is how this reads the handle without changing libpqxx.
#if PQXX_VERSION_MAJOR >= 7
using connection_class = pqxx::connection;
#else
using connection_class = pqxx::connection_base;
#endif

struct raw_handle_tag {
  using type = pqxx::internal::pq::PGconn* connection_class::*;
  friend type member_of(raw_handle_tag);
};

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-template-friend"
#endif
template <typename Tag, typename Tag::type Member>
struct expose_member {
  friend typename Tag::type member_of(Tag) { return Member; }
};
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

template struct expose_member<raw_handle_tag, &connection_class::m_conn>;

PGconn* raw_handle(const pqxx::connection& connection) noexcept {
  return connection.*member_of(raw_handle_tag{});
}

std::string with_context(std::string_view context, std::string_view message) {
  std::string text{message};
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.pop_back();
  if (context.empty())
    return text;
  return std::string{context} + ": " + text;
}

}  // namespace

pg_conn* libpq_handle(const pqxx::connection& connection) noexcept {
  return raw_handle(connection);
}

session_state session_state_of(const pqxx::connection& connection) noexcept {
  PGconn* handle = raw_handle(connection);
  if (handle == nullptr || PQstatus(handle) != CONNECTION_OK)
    return session_state::broken;
  switch (PQtransactionStatus(handle)) {
    case PQTRANS_IDLE:
      return session_state::idle;
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR:
      return session_state::in_transaction;
    case PQTRANS_ACTIVE:
      return session_state::busy;
    default:
      return session_state::broken;
  }
}

bool ping(pqxx::connection& connection) noexcept {
  PGconn* handle = raw_handle(connection);
  if (handle == nullptr || PQstatus(handle) != CONNECTION_OK)
    return false;
  PGresult* result = PQexec(handle, "");
  bool answered = result != nullptr && PQresultStatus(result) == PGRES_EMPTY_QUERY;
  PQclear(result);
  return answered && PQstatus(handle) == CONNECTION_OK;
}

void disable_reactivation([[maybe_unused]] pqxx::connection& connection) noexcept {
#if PQXX_VERSION_MAJOR < 7
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  connection.inhibit_reactivation(true);
#pragma GCC diagnostic pop
#endif
}

void rethrow_as_pgkit(std::string_view context) {
  try {
    throw;
  } catch (const pgkit::error&) {
    throw;
  } catch (const pqxx::in_doubt_error& e) {
    throw error(error_kind::connection_lost, with_context(context, e.what()),
                "the connection broke during COMMIT; check whether the change was applied");
  } catch (const pqxx::broken_connection& e) {
    throw connection_lost_error(context, e.what());
  } catch (const pqxx::statement_completion_unknown& e) {
    throw error(error_kind::connection_lost, with_context(context, e.what()),
                "the statement's outcome is unknown; check whether the change was applied");
  } catch (const pqxx::transaction_rollback& e) {
    // 6.4 derives these from pqxx::failure without a SQLSTATE; 7.x from sql_error with one.
#if PQXX_VERSION_MAJOR >= 7
    std::string sqlstate = e.sqlstate();
    std::string query = e.query();
#else
    std::string query;
    std::string sqlstate = "40000";
    if (dynamic_cast<const pqxx::serialization_failure*>(&e) != nullptr)
      sqlstate = "40001";
    else if (dynamic_cast<const pqxx::deadlock_detected*>(&e) != nullptr)
      sqlstate = "40P01";
#endif
    throw sql_error(with_context(context, e.what()), sqlstate, query);
  } catch (const pqxx::sql_error& e) {
    throw sql_error(with_context(context, e.what()), e.sqlstate(), e.query());
  } catch (const pqxx::usage_error& e) {
    throw error(error_kind::internal, with_context(context, e.what()));
  } catch (const std::exception& e) {
    throw error(error_kind::internal, with_context(context, e.what()));
  }
}

}  // namespace pgkit::detail
