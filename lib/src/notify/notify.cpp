#include "pgkit/notify.hpp"

#include <string>

#include "core/pqxx_compat.hpp"
#include "core/utf8.hpp"
#include "pgkit/error.hpp"
#include "pgkit/pool.hpp"
#include "wire/wire.hpp"

namespace pgkit {
namespace {

// Shows a channel name in a message without flooding it: long names are cut.
std::string shown(std::string_view channel) {
  constexpr std::size_t shown_bytes = 80;
  if (channel.size() <= shown_bytes)
    return "'" + std::string{channel} + "'";
  return "'" + std::string{channel.substr(0, shown_bytes)} + "...'";
}

}  // namespace

void check_channel_name(std::string_view channel) {
  if (channel.empty())
    throw usage_error("a channel name cannot be empty");
  if (channel.find('\0') != std::string_view::npos)
    throw usage_error("a channel name cannot contain a NUL byte");
  check_utf8("the channel name", channel);
  if (channel.size() > max_channel_bytes) {
    throw usage_error("channel name " + shown(channel) + " is " + std::to_string(channel.size()) +
                          " bytes long; PostgreSQL allows at most " +
                          std::to_string(max_channel_bytes),
                      "use a shorter channel name");
  }
}

void check_payload(std::string_view payload) {
  if (payload.size() > max_payload_bytes) {
    throw usage_error("the payload is " + std::to_string(payload.size()) +
                          " bytes long; PostgreSQL refuses payloads of 8000 bytes or more",
                      "send a key (a row id) in the notification and keep the data in a table");
  }
  if (payload.find('\0') != std::string_view::npos)
    throw usage_error("a payload cannot contain a NUL byte");
  check_utf8("the payload", payload);
}

std::string quote_channel(std::string_view channel) {
  std::string quoted{"\""};
  for (char c : channel) {
    if (c == '"')
      quoted += '"';
    quoted += c;
  }
  quoted += '"';
  return quoted;
}

namespace {

void send_notification(const detail::wire& on, std::string_view channel, std::string_view payload,
                       const query_options& options) {
  check_channel_name(channel);
  check_payload(payload);
  on.run("SELECT pg_notify($1, $2)", {std::string{channel}, std::string{payload}},
         detail::result_format::text, "sending a notification on channel " + shown(channel),
         detail::stop_control::from(options));
}

}  // namespace

void notify(pqxx::transaction_base& tx, std::string_view channel, std::string_view payload) {
  notify(tx, channel, payload, query_options{});
}

void notify(pqxx::transaction_base& tx, std::string_view channel, std::string_view payload,
            const query_options& options) {
  send_notification(detail::wire::of(tx), channel, payload, options);
}

void notify(pqxx::connection& connection, std::string_view channel, std::string_view payload) {
  notify(connection, channel, payload, query_options{});
}

void notify(pqxx::connection& connection, std::string_view channel, std::string_view payload,
            const query_options& options) {
  send_notification(detail::wire::of(connection), channel, payload, options);
}

void notify(pool& pool, std::string_view channel, std::string_view payload) {
  notify(pool, channel, payload, query_options{});
}

void notify(pool& pool, std::string_view channel, std::string_view payload,
            const query_options& options) {
  // Refuse bad input before taking a connection from the pool.
  check_channel_name(channel);
  check_payload(payload);
  auto lease = pool.acquire();
  notify(*lease, channel, payload, options);
}

}  // namespace pgkit
