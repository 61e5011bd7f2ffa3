#include "pqxx_compat.hpp"

#include <exception>
#include <string>

#include "pgkit/error.hpp"

namespace pgkit::detail {
namespace {

std::string with_context(std::string_view context, std::string_view message) {
  std::string text{message};
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.pop_back();
  if (context.empty())
    return text;
  return std::string{context} + ": " + text;
}

}  // namespace

void rethrow_as_pgkit(std::string_view context) {
  try {
    throw;
  } catch (const pgkit::error&) {
    throw;
  } catch (const pqxx::in_doubt_error& e) {
    throw error(error_kind::connection_lost, with_context(context, e.what()),
                "the connection broke during COMMIT; check whether the change was applied");
  } catch (const pqxx::broken_connection& e) {
    throw error(error_kind::connection_lost, with_context(context, e.what()));
  } catch (const pqxx::sql_error& e) {
    throw sql_error(with_context(context, e.what()), e.sqlstate(), e.query());
  } catch (const pqxx::usage_error& e) {
    throw error(error_kind::internal, with_context(context, e.what()));
  } catch (const std::exception& e) {
    throw error(error_kind::internal, with_context(context, e.what()));
  }
}

}  // namespace pgkit::detail
