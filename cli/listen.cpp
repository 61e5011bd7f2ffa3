// `pgkit listen CHANNEL... [--count N] [--timeout S] [--heartbeat S] [--exec CMD [ARG...]]`:
// prints one line per notification as it arrives, or runs a command for each.

#include <signal.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "child_command.hpp"
#include "commands.hpp"
#include "context.hpp"
#include "number_option.hpp"
#include "pgkit/error.hpp"
#include "pgkit/listener.hpp"
#include "pgkit/notify.hpp"

namespace pgkit::cli {
namespace {

struct listen_options {
  std::vector<std::string> channels;
  std::size_t count = 0;                             // 0: no limit
  std::optional<std::chrono::milliseconds> timeout;  // std::nullopt: wait for ever
  std::chrono::milliseconds heartbeat{30000};        // 0: no heartbeat
  bool exec = false;                                 // the command is in global_options::trailing
};

// The listener that SIGINT and SIGTERM stop. stop() is async-signal-safe.
pgkit::listener* volatile g_running_listener = nullptr;
volatile sig_atomic_t g_stop_signal = 0;

extern "C" void on_stop_signal(int signal_number) {
  g_stop_signal = signal_number;
  if (auto* listener = g_running_listener)
    listener->stop();
}

// Installs the handlers for the life of the command and restores the old ones afterwards.
class signal_scope {
 public:
  signal_scope() {
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, &m_old_int);
    ::sigaction(SIGTERM, &action, &m_old_term);
    // A command that exits without reading its stdin must not kill pgkit; a closed stdout is
    // seen as EPIPE instead.
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    ::sigaction(SIGPIPE, &ignore, &m_old_pipe);
  }
  ~signal_scope() {
    g_running_listener = nullptr;
    ::sigaction(SIGINT, &m_old_int, nullptr);
    ::sigaction(SIGTERM, &m_old_term, nullptr);
    ::sigaction(SIGPIPE, &m_old_pipe, nullptr);
  }
  signal_scope(const signal_scope&) = delete;
  signal_scope& operator=(const signal_scope&) = delete;

 private:
  struct sigaction m_old_int {};
  struct sigaction m_old_term {};
  struct sigaction m_old_pipe {};
};

// Backslash escapes for the text format: one notification stays one line.
std::string escape_field(const std::string& text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '\\':
        escaped += "\\\\";
        break;
      case '\n':
        escaped += "\\n";
        break;
      case '\t':
        escaped += "\\t";
        break;
      case '\r':
        escaped += "\\r";
        break;
      default:
        escaped += c;
    }
  }
  return escaped;
}

std::string iso8601_utc(std::chrono::system_clock::time_point when) {
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(when.time_since_epoch());
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(micros);
  std::time_t whole = static_cast<std::time_t>(seconds.count());
  std::tm utc{};
  ::gmtime_r(&whole, &utc);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &utc);
  return fmt::format("{}.{:06d}Z", date, (micros - seconds).count());
}

// Prints one notification: a line of text, or a JSON line with --json. Returns false when the
// reader of stdout went away (`pgkit listen jobs | head -1`), which ends listen normally; throws
// on any other failed write.
bool print_notification(const output& out, const notification& received) {
  try {
    if (out.json()) {
      out.json_line({{"channel", received.channel},
                     {"payload", received.payload},
                     {"pid", received.sender_pid},
                     {"received_at", iso8601_utc(received.received_at)}});
    } else {
      out.data(escape_field(received.channel) + '\t' + escape_field(received.payload) + '\n');
    }
  } catch (const stdout_closed&) {
    return false;
  }
  return true;
}

// Runs `command` for one notification: payload on stdin, PGKIT_CHANNEL and PGKIT_PID in the
// environment. Waits for it (one at a time, in order) and reports a failure without throwing.
void run_command(const std::vector<std::string>& command, const notification& received,
                 const output& out) {
  auto outcome = run_child_command(
      command, received.payload,
      {{"PGKIT_CHANNEL", received.channel}, {"PGKIT_PID", std::to_string(received.sender_pid)}});
  if (outcome.succeeded())
    return;
  if (!outcome.failure.empty()) {
    out.warning(outcome.failure);
    return;
  }
  out.warning("'" + command_text(command) + "' " + outcome.describe() +
              " (notification on channel '" + received.channel + "' from pid " +
              std::to_string(received.sender_pid) + ")");
}

void report_event(const listener_event& event, std::size_t channel_count, const output& out) {
  auto warn = [&out](const std::string& message) { out.warning(message); };
  switch (event.kind) {
    case listener_event_kind::connection_lost:
      warn("connection lost (" + event.reason + "); reconnecting");
      break;
    case listener_event_kind::reconnect_failed:
      warn(fmt::format("reconnect attempt {} failed ({}); next attempt in {}", event.attempt,
                       event.reason, duration_text(event.next_attempt_in)));
      break;
    case listener_event_kind::reconnected:
      warn(
          fmt::format("reconnected after {} attempt{}, listening again on {} channel{}; "
                      "notifications sent while disconnected were lost",
                      event.attempt, event.attempt == 1 ? "" : "s", channel_count,
                      channel_count == 1 ? "" : "s"));
      break;
  }
}

int run_listen(const listen_options& options, context& ctx) {
  const auto& globals = ctx.globals();
  const auto& out = ctx.out();
  for (const auto& channel : options.channels)
    check_channel_name(channel);
  if (options.exec && globals.trailing.empty()) {
    throw usage_error("--exec needs a command", "put --exec last: --exec CMD [ARG...]");
  }
  const auto& connection = ctx.connection();
  listener_options settings;
  settings.pooler = connection.pooler;
  settings.heartbeat_interval = options.heartbeat;
  auto channel_count = options.channels.size();
  settings.on_event = [channel_count, &out](const listener_event& event) {
    report_event(event, channel_count, out);
  };

  signal_scope signals;
  out.detail("connecting to " + connection.describe() + " (from " + connection.source + ")");
  listener listener{connection.conninfo(), settings};
  g_running_listener = &listener;
  if (g_stop_signal != 0)
    listener.stop();
  for (const auto& channel : options.channels)
    listener.listen(channel);
  if (out.verbose()) {
    std::string names;
    for (const auto& channel : options.channels)
      names += (names.empty() ? "'" : ", '") + channel + "'";
    out.detail("listening on " + names + " (backend pid " + std::to_string(listener.backend_pid()) +
               ")");
  }

  int status = exit_ok;
  std::size_t handled = 0;
  auto idle = options.timeout.value_or(std::chrono::milliseconds::max());
  while (options.count == 0 || handled < options.count) {
    auto received = listener.receive(idle);
    if (!received) {
      if (!listener.stopped()) {
        out.note("no notification within " + duration_text(idle));
        status = exit_check_failed;
      }
      break;
    }
    if (options.exec) {
      run_command(globals.trailing, *received, out);
    } else if (!print_notification(out, *received)) {
      break;
    }
    ++handled;
  }
  g_running_listener = nullptr;
  listener.close();
  return status;
}

}  // namespace

void setup_listen(CLI::App& command, const global_options& globals, int& exit_status) {
  auto options = std::make_shared<listen_options>();
  command.add_option("channel", options->channels, "channels to listen on (names kept as given)")
      ->required();
  add_count_option(command, "--count", options->count, 1, 1000000000,
                   "exit 0 after N notifications (with --exec: commands)");
  add_seconds_option(command, "--timeout", options->timeout, zero_seconds::allowed,
                     "exit 3 after this long without a notification, default wait for ever");
  add_seconds_option(command, "--heartbeat", options->heartbeat, zero_seconds::allowed,
                     "send an empty query this often to catch a dead server, default 30, 0: off");
  command
      .add_flag("--exec", options->exec,
                "run CMD for each notification, payload on stdin, PGKIT_CHANNEL and PGKIT_PID set; "
                "must come last")
      ->option_text("CMD [ARG...]");
  command.callback([options, &globals, &exit_status] {
    context ctx{globals};
    exit_status = run_listen(*options, ctx);
  });
}

}  // namespace pgkit::cli
