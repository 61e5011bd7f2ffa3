#pragma once
/// Sending notifications: `notify` binds channel and payload to `SELECT pg_notify($1, $2)` and
/// refuses what the server would refuse before anything is sent.

#include <cstddef>
#include <string>
#include <string_view>

#include <pqxx/connection>
#include <pqxx/transaction_base>

namespace pgkit {

class pool;

/// The longest channel name PostgreSQL keeps whole, in bytes (NAMEDATALEN - 1).
inline constexpr std::size_t max_channel_bytes = 63;

/// The longest payload PostgreSQL accepts, in bytes: a payload of 8000 bytes or more is refused.
inline constexpr std::size_t max_payload_bytes = 7999;

/// Throws pgkit::usage_error unless `channel` is a name LISTEN and pg_notify both take as it is:
/// not empty, at most max_channel_bytes bytes, no NUL byte, valid UTF-8. Any other character, upper
/// case, spaces and quotes included, is fine: pgkit always quotes channel names.
void check_channel_name(std::string_view channel);

/// Throws pgkit::usage_error unless `payload` is at most max_payload_bytes bytes of valid UTF-8
/// with no NUL byte.
void check_payload(std::string_view payload);

/// Returns `channel` as a quoted SQL identifier (`"Jobs ""A"""`), for LISTEN and UNLISTEN.
std::string quote_channel(std::string_view channel);

/// Queues a notification in `tx`; PostgreSQL delivers it when `tx` commits and drops it when
/// `tx` rolls back. Throws pgkit::usage_error for an invalid channel or payload (nothing is
/// sent), else pgkit::error from the server.
void notify(pqxx::transaction_base& tx, std::string_view channel, std::string_view payload = {});

/// Sends a notification at once on `connection`, which must not have a transaction open. Throws
/// as the transaction overload does.
void notify(pqxx::connection& connection, std::string_view channel, std::string_view payload = {});

/// Sends a notification at once on a connection leased from `pool` for the call. Throws as the
/// transaction overload does, or pgkit::error of kind `timeout` when no connection is free in
/// the pool's acquire_timeout.
void notify(pool& pool, std::string_view channel, std::string_view payload = {});

}  // namespace pgkit
