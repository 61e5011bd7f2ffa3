#pragma once
// What the migration commands (migrate, apply, status, rollback, print-sql) share: their
// common options and the translation into pgkit::migration_options.

#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "command.hpp"
#include "context.hpp"
#include "pgkit/migration.hpp"

namespace pgkit::cli {

/// Options common to the commands that run migrations.
struct migration_cli_options {
  std::vector<std::string> modules;                ///< MODULE... positionals
  std::vector<std::string> migrations_dirs;        ///< --migrations-dir DIR (repeatable)
  std::chrono::milliseconds lock_wait{60000};      ///< --lock-wait SECONDS
  std::chrono::milliseconds lock_timeout{1000};    ///< --lock-timeout SECONDS
  std::size_t lock_retries = 3;                    ///< --lock-retries N
  std::chrono::milliseconds statement_timeout{0};  ///< --statement-timeout SECONDS (0: none)
  bool allow_out_of_order = false;                 ///< --allow-out-of-order
  std::chrono::milliseconds wait{0};               ///< --wait SECONDS
};

/// Adds --migrations-dir.
void add_migrations_dir_option(CLI::App& command, migration_cli_options& options);
/// Adds --wait.
void add_wait_option(CLI::App& command, migration_cli_options& options);
/// Adds --lock-wait, --lock-timeout, --lock-retries and --statement-timeout.
void add_lock_options(CLI::App& command, migration_cli_options& options);

/// Sets up `apply`'s options and callback on `command`, running `before` (when not null) on the
/// run's context first: `up` is `apply` after `create`.
void setup_apply_then(CLI::App& command, const global_options& globals, int& exit_status,
                      void (*before)(context&));

/// Returns the library options for `options` and the run's schema, with progress lines going
/// to stderr unless --quiet.
migration_options library_options(context& ctx, const migration_cli_options& options);

/// While it exists, SIGINT and SIGTERM stop a run on `connection` instead of killing pgkit: a
/// watcher thread receives them, makes interrupted() true, sends cancel requests to the server
/// until the run has rolled back and the guard is destroyed, and exits the process with status
/// 1 if that takes longer than `grace`.
class interrupt_guard {
 public:
  explicit interrupt_guard(pqxx::connection& connection,
                           std::chrono::seconds grace = std::chrono::seconds{10});
  ~interrupt_guard();
  interrupt_guard(const interrupt_guard&) = delete;
  interrupt_guard& operator=(const interrupt_guard&) = delete;

  /// Returns a callback for migration_options::interrupted.
  std::function<bool()> interrupted() const;

 private:
  void watch();

  pqxx::connection& m_connection;
  std::chrono::seconds m_grace;
  sigset_t m_signals{};
  sigset_t m_old_mask{};
  std::atomic<int> m_signal{0};
  std::mutex m_mutex;
  std::condition_variable m_finished;
  bool m_done = false;
  std::thread m_watcher;
};

/// Returns `duration` in milliseconds, as JSON wants it.
double to_milliseconds(std::chrono::microseconds duration);

}  // namespace pgkit::cli
