#include "pgkit/version.hpp"

#include "core/pqxx_compat.hpp"

namespace pgkit {

const char* version() noexcept {
  return PGKIT_VERSION_STRING;
}

const char* pqxx_version() noexcept {
  return PQXX_VERSION;
}

}  // namespace pgkit
