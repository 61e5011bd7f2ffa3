#include "migration_common.hpp"

#include <pthread.h>
#include <unistd.h>

#include <cstring>
#include <iostream>

#include "number_option.hpp"

namespace pgkit::cli {

void add_migrations_dir_option(CLI::App& command, migration_cli_options& options) {
  command
      .add_option("-d,--migrations-dir", options.migrations_dirs,
                  "directory of your own modules, one subdirectory each (repeatable)")
      ->option_text("DIR")
      ->allow_extra_args(false);
}

void add_wait_option(CLI::App& command, migration_cli_options& options) {
  add_seconds_option(command, "--wait", options.wait, zero_seconds::allowed,
                     "wait this long for the server to accept connections, default 0");
}

void add_lock_options(CLI::App& command, migration_cli_options& options) {
  add_seconds_option(command, "--lock-wait", options.lock_wait, zero_seconds::allowed,
                     "give up after this long waiting for another run's migration lock, "
                     "default 60");
  add_seconds_option(command, "--lock-timeout", options.lock_timeout, zero_seconds::refused,
                     "lock_timeout for the migrations' statements, default 1");
  add_count_option(command, "--lock-retries", options.lock_retries, 0, 100,
                   "run a transaction that hit lock_timeout again, with backoff, up to N "
                   "times, default 3");
  add_seconds_option(command, "--statement-timeout", options.statement_timeout,
                     zero_seconds::allowed,
                     "statement_timeout for the migrations' statements, default 0: none");
}

migration_options library_options(context& ctx, const migration_cli_options& options) {
  migration_options result;
  result.schema = ctx.schema();
  validate_schema_name(result.schema);
  result.modules = options.modules;
  result.migrations_dirs = options.migrations_dirs;
  result.lock_wait = options.lock_wait;
  result.lock_timeout = options.lock_timeout;
  result.lock_retries = options.lock_retries;
  if (options.statement_timeout.count() > 0)
    result.statement_timeout = options.statement_timeout;
  result.out_of_order =
      options.allow_out_of_order ? out_of_order_policy::allow : out_of_order_policy::refuse;
  result.pooler = ctx.connection().pooler;
  if (!ctx.out().quiet())
    result.progress = [&out = ctx.out()](const std::string& line) { out.report(line); };
  return result;
}

interrupt_guard::interrupt_guard(pqxx::connection& connection, std::chrono::seconds grace)
    : m_connection(connection), m_grace(grace) {
  sigemptyset(&m_signals);
  sigaddset(&m_signals, SIGINT);
  sigaddset(&m_signals, SIGTERM);
  // SIGUSR1 is how the destructor wakes the watcher at once (it waited up to 100 ms, which
  // added 50 ms to every run on average).
  sigaddset(&m_signals, SIGUSR1);
  // Blocked in every thread, the signals wait for sigtimedwait in the watcher.
  pthread_sigmask(SIG_BLOCK, &m_signals, &m_old_mask);
  m_watcher = std::thread{[this] { watch(); }};
}

interrupt_guard::~interrupt_guard() {
  {
    std::lock_guard<std::mutex> lock{m_mutex};
    m_done = true;
  }
  m_finished.notify_all();
  pthread_kill(m_watcher.native_handle(), SIGUSR1);
  m_watcher.join();
  pthread_sigmask(SIG_SETMASK, &m_old_mask, nullptr);
}

std::function<bool()> interrupt_guard::interrupted() const {
  return [this] { return m_signal.load() != 0; };
}

void interrupt_guard::watch() {
  const timespec poll{0, 100 * 1000 * 1000};
  for (;;) {
    {
      std::lock_guard<std::mutex> lock{m_mutex};
      if (m_done)
        return;
    }
    int received = sigtimedwait(&m_signals, nullptr, &poll);
    if (received == SIGUSR1)
      continue;  // the destructor's wake-up (or someone else's SIGUSR1): look at m_done
    if (received > 0) {
      m_signal = received;
      break;
    }
  }
  // The run may be between statements when the first cancel request arrives: repeat it until
  // the run has ended.
  auto deadline = std::chrono::steady_clock::now() + m_grace;
  std::unique_lock<std::mutex> lock{m_mutex};
  while (!m_done) {
    try {
      m_connection.cancel_query();
    } catch (...) {
      // The server may be gone; the run then fails by itself.
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string message = std::string{"pgkit: error: interrupted by "} +
                            (m_signal == SIGINT ? "SIGINT" : "SIGTERM") +
                            ", and the server did not stop the run within " +
                            std::to_string(m_grace.count()) + " s\n";
      auto written = ::write(STDERR_FILENO, message.data(), message.size());
      static_cast<void>(written);
      _exit(exit_failure);
    }
    m_finished.wait_for(lock, std::chrono::milliseconds{500});
  }
}

double to_milliseconds(std::chrono::microseconds duration) {
  return static_cast<double>(duration.count()) / 1000.0;
}

}  // namespace pgkit::cli
