#pragma once
/// Keeping passwords out of messages: every text pgkit shows passes through redact_secrets.

#include <string>
#include <string_view>

namespace pgkit {

/// Returns `text` with every password replaced by `***`: the password of any
/// `postgres://` or `postgresql://` URL in it (`postgresql://app:***@host/db`), `password=`
/// query parameters, and `password=...` pairs of libpq conninfo strings, quoted or not.
std::string redact_secrets(std::string_view text);

}  // namespace pgkit
