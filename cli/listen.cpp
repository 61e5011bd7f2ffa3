// `pgkit listen CHANNEL... [--count N] [--timeout S] [--heartbeat S] [--exec CMD [ARG...]]`:
// prints one line per notification as it arrives, or runs a command for each.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "context.hpp"
#include "number_option.hpp"
#include "pgkit/error.hpp"
#include "pgkit/listener.hpp"
#include "pgkit/notify.hpp"

extern char** environ;

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

std::string command_text(const std::vector<std::string>& command) {
  std::string text;
  for (const auto& word : command)
    text += (text.empty() ? "" : " ") + word;
  return text;
}

// Runs `command` for one notification: payload on stdin, PGKIT_CHANNEL and PGKIT_PID in the
// environment. Waits for it (one at a time, in order) and reports a failure without throwing.
void run_command(const std::vector<std::string>& command, const notification& received,
                 const output& out) {
  auto warn = [&out](const std::string& message) { out.warning(message); };
  std::vector<std::string> env_strings;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string_view pair = *entry;
    if (pair.rfind("PGKIT_CHANNEL=", 0) != 0 && pair.rfind("PGKIT_PID=", 0) != 0)
      env_strings.emplace_back(pair);
  }
  env_strings.push_back("PGKIT_CHANNEL=" + received.channel);
  env_strings.push_back("PGKIT_PID=" + std::to_string(received.sender_pid));
  std::vector<char*> env;
  for (auto& entry : env_strings)
    env.push_back(entry.data());
  env.push_back(nullptr);
  std::vector<char*> args;
  for (const auto& word : command)
    args.push_back(const_cast<char*>(word.c_str()));
  args.push_back(nullptr);

  int input[2];
  if (::pipe2(input, O_CLOEXEC) != 0) {
    warn(std::string{"cannot create a pipe for the command: "} + std::strerror(errno));
    return;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, input[0], STDIN_FILENO);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  // The command gets the signal dispositions a shell would give it, not pgkit's.
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF);
  pid_t child = 0;
  int spawn_error = ::posix_spawnp(&child, args[0], &actions, &attributes, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  ::close(input[0]);
  if (spawn_error != 0) {
    ::close(input[1]);
    warn("cannot run '" + command_text(command) + "': " + std::strerror(spawn_error));
    return;
  }
  // Payloads are under 8000 bytes, less than a pipe holds, so this never blocks; a command that
  // does not read its stdin only causes an EPIPE here.
  std::string_view payload = received.payload;
  while (!payload.empty()) {
    auto written = ::write(input[1], payload.data(), payload.size());
    if (written < 0 && errno == EINTR)
      continue;
    if (written <= 0)
      break;
    payload.remove_prefix(static_cast<std::size_t>(written));
  }
  ::close(input[1]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
    if (errno != EINTR)
      return;
  }
  std::string what = "'" + command_text(command) + "'";
  std::string which = " (notification on channel '" + received.channel + "' from pid " +
                      std::to_string(received.sender_pid) + ")";
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
    warn(what + " exited with status " + std::to_string(WEXITSTATUS(status)) + which);
  if (WIFSIGNALED(status))
    warn(what + " was killed by signal " + std::to_string(WTERMSIG(status)) + which);
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
