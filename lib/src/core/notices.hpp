#pragma once
// Routing what the server says outside of results (notices, warnings, and a FATAL that arrives
// while no statement runs) away from stderr: every connection pgkit opens goes through here.

// libpq's connection type (PGconn), named without including libpq-fe.h here.
struct pg_conn;

#include <string>
#include <string_view>

#include "pgkit/error.hpp"

namespace pgkit::detail {

/// Sends `connection`'s notices to the handler set with pgkit::set_notice_handler instead of
/// libpq's or libpqxx's default (which print to stderr). Call right after the connection opens.
void route_notices(pg_conn* connection) noexcept;

/// Returns, and forgets, the last FATAL or PANIC message that a connection used on this thread
/// received ("terminating connection due to administrator command"), or "" when there is none.
/// The error mapping adds it to a connection_lost error.
std::string take_server_farewell();

/// Forgets what take_server_farewell() would return (a new connection starts).
void forget_server_farewell() noexcept;

/// Returns the hint of every connection_lost error: what happened and what to do.
std::string connection_lost_hint();

/// Returns the error for a connection that broke: kind connection_lost, the server's last
/// words when it sent any (else `driver_message`), prefixed by `context`, and a hint.
pgkit::error connection_lost_error(std::string_view context, std::string_view driver_message);

}  // namespace pgkit::detail
