#include "migration_common.hpp"

#include <pthread.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <iostream>

#include "connect.hpp"

namespace pgkit::cli {
namespace {

std::chrono::milliseconds to_duration(double seconds) {
  return std::chrono::milliseconds{static_cast<long long>(std::llround(seconds * 1000.0))};
}

}  // namespace

void add_migrations_dir_option(CLI::App& command, migration_cli_options& options) {
  command
      .add_option("--migrations-dir", options.migrations_dirs,
                  "directory of your own modules, one subdirectory each (repeatable)")
      ->option_text("DIR")
      ->allow_extra_args(false);
}

void add_wait_option(CLI::App& command, migration_cli_options& options) {
  command
      .add_option("--wait", options.wait_s,
                  "wait up to SECONDS for the server to accept connections")
      ->option_text("SECONDS")
      ->check(CLI::NonNegativeNumber);
}

void add_lock_options(CLI::App& command, migration_cli_options& options) {
  command
      .add_option("--lock-wait", options.lock_wait_s,
                  "give up after SECONDS waiting for another run's migration lock (default 60)")
      ->option_text("SECONDS")
      ->check(CLI::NonNegativeNumber);
  command
      .add_option("--lock-timeout", options.lock_timeout_s,
                  "lock_timeout for the migrations' statements (default 10)")
      ->option_text("SECONDS")
      ->check(CLI::PositiveNumber);
  command
      .add_option("--statement-timeout", options.statement_timeout_s,
                  "statement_timeout for the migrations' statements (default none)")
      ->option_text("SECONDS")
      ->check(CLI::NonNegativeNumber);
}

migration_options library_options(const global_options& globals,
                                  const migration_cli_options& options) {
  migration_options result;
  result.schema = resolve_schema(globals);
  validate_schema_name(result.schema);
  result.modules = options.modules;
  result.migrations_dirs = options.migrations_dirs;
  result.lock_wait = to_duration(options.lock_wait_s);
  result.lock_timeout = to_duration(options.lock_timeout_s);
  if (options.statement_timeout_s > 0)
    result.statement_timeout = to_duration(options.statement_timeout_s);
  result.out_of_order =
      options.allow_out_of_order ? out_of_order_policy::allow : out_of_order_policy::refuse;
  result.pooler = resolve_connection(globals).pooler;
  if (!globals.quiet)
    result.progress = [](const std::string& line) { std::cerr << line << '\n'; };
  return result;
}

interrupt_guard::interrupt_guard(pqxx::connection& connection, std::chrono::seconds grace)
    : m_connection(connection), m_grace(grace) {
  sigemptyset(&m_signals);
  sigaddset(&m_signals, SIGINT);
  sigaddset(&m_signals, SIGTERM);
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
