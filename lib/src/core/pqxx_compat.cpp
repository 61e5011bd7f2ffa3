#include "core/pqxx_compat.hpp"

#include <libpq-fe.h>

#include <exception>
#include <string>

#include "core/notices.hpp"
#include "core/sqlstate.hpp"
#include "core/text.hpp"
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

PGconn* raw_handle(const connection_class& connection) noexcept {
  return connection.*member_of(raw_handle_tag{});
}

}  // namespace

pg_conn* libpq_handle(const pqxx::connection& connection) noexcept {
  return raw_handle(connection);
}

pg_conn* libpq_handle(pqxx::transaction_base& tx) noexcept {
  return raw_handle(tx.conn());
}

void disable_reactivation([[maybe_unused]] pqxx::connection& connection) noexcept {
#if PQXX_VERSION_MAJOR < 7
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  connection.inhibit_reactivation(true);
#pragma GCC diagnostic pop
#endif
}

namespace {

error translate_as(const std::exception& failure, std::string_view context) {
  if (const auto* known = dynamic_cast<const pgkit::error*>(&failure))
    return *known;
  if (dynamic_cast<const pqxx::in_doubt_error*>(&failure) != nullptr) {
    return error(error_kind::connection_lost, with_context(context, failure.what()),
                 "the connection broke during COMMIT; check whether the change was applied");
  }
  if (dynamic_cast<const pqxx::broken_connection*>(&failure) != nullptr)
    return connection_lost_error(context, failure.what());
  if (dynamic_cast<const pqxx::statement_completion_unknown*>(&failure) != nullptr) {
    return error(error_kind::connection_lost, with_context(context, failure.what()),
                 "the statement's outcome is unknown; check whether the change was applied");
  }
  if (const auto* rollback = dynamic_cast<const pqxx::transaction_rollback*>(&failure)) {
    // 6.4 derives these from pqxx::failure without a SQLSTATE; 7.x from sql_error with one.
#if PQXX_VERSION_MAJOR >= 7
    return sql_error(with_context(context, failure.what()), rollback->sqlstate(),
                     rollback->query());
#else
    auto condition = sql_condition::transaction_rollback;
    if (dynamic_cast<const pqxx::serialization_failure*>(rollback) != nullptr)
      condition = sql_condition::serialization_failure;
    else if (dynamic_cast<const pqxx::deadlock_detected*>(rollback) != nullptr)
      condition = sql_condition::deadlock_detected;
    return sql_error(with_context(context, failure.what()), std::string{sqlstate_of(condition)});
#endif
  }
  if (const auto* server = dynamic_cast<const pqxx::sql_error*>(&failure))
    return sql_error(with_context(context, failure.what()), server->sqlstate(), server->query());
  if (dynamic_cast<const pqxx::usage_error*>(&failure) != nullptr) {
    return error(error_kind::usage, with_context(context, failure.what()),
                 "libpqxx refused the call: a transaction already closed, or a second "
                 "transaction open on the same connection");
  }
  return error(error_kind::internal, with_context(context, failure.what()));
}

bool is_pqxx_exception(const std::exception& failure) noexcept {
  return dynamic_cast<const pqxx::failure*>(&failure) != nullptr ||
         dynamic_cast<const pqxx::usage_error*>(&failure) != nullptr ||
         dynamic_cast<const pqxx::in_doubt_error*>(&failure) != nullptr ||
         dynamic_cast<const pqxx::internal_error*>(&failure) != nullptr ||
         dynamic_cast<const pqxx::argument_error*>(&failure) != nullptr ||
         dynamic_cast<const pqxx::conversion_error*>(&failure) != nullptr ||
         dynamic_cast<const pqxx::range_error*>(&failure) != nullptr;
}

}  // namespace

void rethrow_as_pgkit(std::string_view context) {
  try {
    throw;
  } catch (const pgkit::error&) {
    throw;
  } catch (const std::exception& e) {
    throw translate_as(e, context);
  }
}

void rethrow_translated() {
  try {
    throw;
  } catch (const pgkit::error&) {
    throw;
  } catch (const std::exception& e) {
    if (is_pqxx_exception(e))
      throw translate_as(e, {});
    throw;
  }
}

}  // namespace pgkit::detail

namespace pgkit {

error translate(const std::exception& failure) {
  return detail::translate_as(failure, {});
}

}  // namespace pgkit
