#pragma once
// The URL and conninfo grammar (internal): the key=value pairs libpq would use for a URL or
// conninfo string, and for a whole connection_config. connection_config::conninfo(),
// describe() and config_from_url (pgkit/config.hpp) are built on these.

#include <string>
#include <utility>
#include <vector>

#include "pgkit/config.hpp"

namespace pgkit::detail {

/// libpq keyword and value pairs, in libpq's order.
using conninfo_pairs = std::vector<std::pair<std::string, std::string>>;

/// Returns the pairs libpq would use for `url` (a URL or conninfo string; "" gives none).
/// `source` names it in messages, which never quote its text. Throws config_error when libpq
/// would refuse it, or would read it differently from a person (an unencoded '@' or '/' in a
/// password), or when it names a parameter libpq does not know.
conninfo_pairs parse_conninfo(const std::string& url, const std::string& source);

/// Returns the pairs for `config`: its url's, overridden by each part that is set, with the
/// default connect_timeout and fallback_application_name. Throws config_error as
/// parse_conninfo does, and for a bad `hosts` entry or a NUL byte in a value.
conninfo_pairs merged_pairs(const connection_config& config);

}  // namespace pgkit::detail
