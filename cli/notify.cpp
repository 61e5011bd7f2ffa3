// `pgkit notify CHANNEL [PAYLOAD]`: sends one notification; without PAYLOAD it reads it from
// stdin.

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "commands.hpp"
#include "context.hpp"
#include "pgkit/error.hpp"
#include "pgkit/notify.hpp"

namespace pgkit::cli {
namespace {

struct notify_options {
  std::string channel;
  std::string payload;
  bool payload_given = false;
};

std::string read_payload_from_stdin() {
  if (::isatty(STDIN_FILENO) == 1) {
    throw usage_error("no PAYLOAD given and standard input is a terminal",
                      "pass the payload as an argument or pipe it in: echo 42 | pgkit notify jobs");
  }
  // One byte more than a payload may have (plus a final newline) is enough to refuse it: an
  // endless stdin (/dev/zero) is never read to its end.
  std::string payload(max_payload_bytes + 2, '\0');
  std::size_t size = 0;
  while (size < payload.size()) {
    auto got = ::read(STDIN_FILENO, payload.data() + size, payload.size() - size);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0) {
      throw usage_error(
          std::string{"cannot read the payload from standard input: "} + std::strerror(errno),
          "pipe the payload in (echo 42 | pgkit notify jobs) or pass it as PAYLOAD");
    }
    if (got == 0)
      break;
    size += static_cast<std::size_t>(got);
  }
  payload.resize(size);
  // `echo 42 | pgkit notify jobs` sends "42", as $(...) would in a shell.
  if (!payload.empty() && payload.back() == '\n')
    payload.pop_back();
  return payload;
}

int run_notify(const notify_options& options, context& ctx) {
  check_channel_name(options.channel);
  auto payload = options.payload_given ? options.payload : read_payload_from_stdin();
  // Refused here, before any connection is opened.
  check_payload(payload);
  notify(*ctx.connect(), options.channel, payload);
  const auto& out = ctx.out();
  if (out.json()) {
    out.document({{"channel", options.channel}, {"payload_bytes", payload.size()}});
  } else {
    out.detail("sent a notification on '" + options.channel + "' (" +
               std::to_string(payload.size()) + " bytes)");
  }
  return exit_ok;
}

}  // namespace

void setup_notify(CLI::App& command, const global_options& globals, int& exit_status) {
  auto options = std::make_shared<notify_options>();
  command.add_option("channel", options->channel, "channel to notify (name kept as given)")
      ->required();
  auto* payload = command.add_option("payload", options->payload,
                                     "payload, under 8000 bytes (default: read from stdin)");
  command.callback([options, payload, &globals, &exit_status] {
    options->payload_given = payload->count() > 0;
    context ctx{globals};
    exit_status = run_notify(*options, ctx);
  });
}

}  // namespace pgkit::cli
