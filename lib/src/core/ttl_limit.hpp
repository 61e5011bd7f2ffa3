#pragma once
// The one bound on lifetimes that the stores send to the server (cache ttls, session periods):
// past it, now() + ttl overflows PostgreSQL's timestamps and the server refuses the statement.

#include <chrono>
#include <string>
#include <string_view>

#include "pgkit/error.hpp"

namespace pgkit::detail {

/// The longest ttl or session period a store accepts: 100 years (36 525 days).
inline constexpr std::chrono::milliseconds max_ttl = std::chrono::hours{24 * 36525};

/// Throws usage_error naming `what` ("the cache ttl") when `ttl` is longer than max_ttl, before
/// anything is sent.
inline void check_ttl_limit(std::chrono::milliseconds ttl, std::string_view what) {
  if (ttl > max_ttl) {
    throw usage_error(std::string{what} + " is " + std::to_string(ttl.count()) +
                          " ms; the longest accepted is " + std::to_string(max_ttl.count()) +
                          " ms (100 years)",
                      "give a shorter ttl (for the cache, never_expires keeps an entry until it "
                      "is removed)");
  }
}

}  // namespace pgkit::detail
