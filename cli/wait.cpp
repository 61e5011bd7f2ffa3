// `pgkit wait [--wait-timeout SECONDS]`: returns once the server accepts connections (dbmate's
// `wait`, for a container's entrypoint), or fails saying what the last attempt got.

#include <memory>

#include "commands.hpp"
#include "context.hpp"
#include "number_option.hpp"
#include "pgkit/database.hpp"

namespace pgkit::cli {

void setup_wait(CLI::App& command, const global_options& globals, int& exit_status) {
  auto timeout = std::make_shared<std::chrono::milliseconds>(60000);
  add_seconds_option(command, "--wait-timeout", *timeout, zero_seconds::allowed,
                     "give up (exit 1) after this long, default 60");
  command.callback([timeout, &globals, &exit_status] {
    context ctx{globals};
    const auto& config = ctx.connection();
    ctx.out().detail("waiting for " + config.describe() + " (from " + config.source + ")");
    auto started = std::chrono::steady_clock::now();
    wait_for_server(config, *timeout);
    ctx.out().report("the server accepts connections (waited " +
                     duration_text(std::chrono::steady_clock::now() - started) + ")");
    exit_status = exit_ok;
  });
}

}  // namespace pgkit::cli
