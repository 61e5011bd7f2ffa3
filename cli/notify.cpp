// `pgkit notify CHANNEL [PAYLOAD]`: sends one notification; without PAYLOAD it reads it from
// stdin.

#include <unistd.h>

#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "connect.hpp"
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
  std::string payload{std::istreambuf_iterator<char>{std::cin}, std::istreambuf_iterator<char>{}};
  // `echo 42 | pgkit notify jobs` sends "42", as $(...) would in a shell.
  if (!payload.empty() && payload.back() == '\n')
    payload.pop_back();
  return payload;
}

int run_notify(const notify_options& options, const global_options& globals) {
  check_channel_name(options.channel);
  auto payload = options.payload_given ? options.payload : read_payload_from_stdin();
  // Refused here, before any connection is opened.
  check_payload(payload);
  auto connection = open_connection(globals);
  notify(*connection, options.channel, payload);
  if (globals.json) {
    nlohmann::json sent = {{"channel", options.channel}, {"payload_bytes", payload.size()}};
    std::cout << sent.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  } else if (globals.verbose) {
    std::cerr << "pgkit: sent a notification on '" << options.channel << "' (" << payload.size()
              << " bytes)\n";
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
    exit_status = run_notify(*options, globals);
  });
}

}  // namespace pgkit::cli
