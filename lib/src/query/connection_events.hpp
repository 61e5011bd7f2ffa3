#pragma once
// What the query toolkit keeps per connection besides libpq's own state: the callbacks of
// listen_to_notifications and which connections close() is closing (for status and
// close_finished).

#include <cstddef>

// libpq's connection type (PGconn), named without including libpq-fe.h here.
struct pg_conn;

namespace pgkit::detail {

/// Calls the callbacks kept for `handle` with each notification libpq has already read, one at
/// a time (a callback's exception passes on and leaves the rest queued); returns how many were
/// taken. Does nothing, cheaply, when no callbacks are kept for the connection.
std::size_t dispatch_notifications(pg_conn* handle);

}  // namespace pgkit::detail
