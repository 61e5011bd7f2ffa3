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

/// What a store's ttl is for, to say what to do instead of a longer one.
enum class ttl_of { cache_entry, session, job };

/// What to do instead of a longer ttl, for `kind`'s store.
inline const char* ttl_limit_hint(ttl_of kind) {
  switch (kind) {
    case ttl_of::cache_entry:
      return "give a shorter ttl (never_expires keeps an entry until it is removed)";
    case ttl_of::session:
      return "give a shorter period; a session that should outlive it has to be renewed (set or "
             "touch it again)";
    case ttl_of::job:
      break;
  }
  return "give a shorter duration";
}

/// Throws usage_error naming `what` ("the cache ttl") when `ttl` is longer than max_ttl, before
/// anything is sent, with the hint for `kind`'s store.
inline void check_ttl_limit(std::chrono::milliseconds ttl, std::string_view what, ttl_of kind) {
  if (ttl > max_ttl) {
    throw usage_error(std::string{what} + " is " + std::to_string(ttl.count()) +
                          " ms; the longest accepted is " + std::to_string(max_ttl.count()) +
                          " ms (100 years)",
                      ttl_limit_hint(kind));
  }
}

}  // namespace pgkit::detail
