#pragma once
/// Schema modules and the migration engine: parsing dbmate-format files, selecting modules,
/// reading the state of a database, applying, rolling back and rendering offline SQL.
/// The semantics are described in docs/migrations.md and pgkit(1).

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pqxx/connection>

#include "pgkit/config.hpp"

namespace pgkit {

/// Whether a migration section runs inside a transaction (dbmate's `transaction:false`).
enum class transaction_mode { inside, outside };

/// One migration file of a module, parsed.
struct migration {
  std::string module;       ///< the module it belongs to
  std::string version;      ///< the 14-digit version from the file name
  std::string name;         ///< the file name's part after the version, without `.sql`
  std::string file_name;    ///< `<version>_<name>.sql`
  std::string path;         ///< where it was read: a file path, or `<module>/<file>` when built in
  std::string up_sql;       ///< the up section, without surrounding blank space
  std::string down_sql;     ///< the down section, without surrounding blank space (may be empty)
  std::size_t up_line = 0;  ///< the file's line on which up_sql starts (1-based)
  std::size_t down_line = 0;  ///< the file's line on which down_sql starts (1-based)
  transaction_mode up_transaction = transaction_mode::inside;    ///< how the up section runs
  transaction_mode down_transaction = transaction_mode::inside;  ///< how the down section runs
  std::string checksum;  ///< hex SHA-256 of up_sql; a different one in the database is drift
};

/// A named, ordered list of migrations.
struct schema_module {
  std::string name;                     ///< the module's name (directory name)
  std::string origin;                   ///< "built in", or the directory it was read from
  std::vector<std::string> depends_on;  ///< modules that must be applied first
  std::vector<migration> migrations;    ///< sorted by version
};

/// Parses one dbmate-format file. Throws pgkit::usage_error naming `path` and the reason when
/// the name is not `<14-digit version>_<name>.sql` or a section is missing, repeated,
/// misplaced or carries an unknown option.
migration parse_migration(const std::string& module, const std::string& file_name,
                          std::string_view text, const std::string& path);

/// The modules pgkit knows: the built-in ones and those read from migrations directories.
class module_catalog {
 public:
  /// Loads the built-in modules and every subdirectory of each of `migrations_dirs` as a
  /// module. Throws pgkit::usage_error for unreadable directories, malformed files, duplicate
  /// versions within a module and module names that clash.
  static module_catalog load(const std::vector<std::string>& migrations_dirs = {});

  /// Returns every known module, sorted by name.
  const std::vector<schema_module>& modules() const noexcept { return m_modules; }
  /// Returns the names of every known module, sorted.
  std::vector<std::string> names() const;
  /// Returns the module called `name`, or nullptr.
  const schema_module* find(std::string_view name) const noexcept;
  /// Returns the named modules plus what they depend on, dependencies first. Throws
  /// pgkit::usage_error listing the known modules when a name is unknown or none is given.
  std::vector<const schema_module*> select(const std::vector<std::string>& names) const;

 private:
  std::vector<schema_module> m_modules;
};

/// Creates `<migrations_dir>/<module>/<UTC now as 14 digits>_<name>.sql` holding an empty
/// `-- migrate:up` and `-- migrate:down` section, creating the directories when missing, and
/// returns its path. Throws pgkit::usage_error when `name` is not `[a-z0-9_]+`, `module` is
/// not a valid module name or is a built-in one, or the new version would not sort after the
/// module's newest file; pgkit::error when the file cannot be written.
std::string create_migration_file(const std::string& migrations_dir, const std::string& module,
                                  const std::string& name);

/// Returns the migrations of `modules` in the order a run applies them: by version, ties by
/// module order. Throws pgkit::usage_error when two modules share a version or a module's
/// first migration is older than the first migration of a module it depends on.
std::vector<const migration*> run_order(const std::vector<const schema_module*>& modules);

/// Throws pgkit::usage_error unless `schema` is a plain identifier (letters, digits, `_`, `$`,
/// not starting with a digit or `pg_`) of at most 63 bytes.
void validate_schema_name(std::string_view schema);

/// Returns the advisory lock key that apply and rollback take for `schema`.
std::int64_t migration_lock_key(std::string_view schema);

/// What to do with a pending migration older than its module's newest applied one.
enum class out_of_order_policy { refuse, allow };

/// Everything a migration run needs besides the connection.
struct migration_options {
  /// Creates the defaults. (User-provided so that the type is no aggregate and
  /// `apply_modules(connection, {"cache"})` picks the module-list overload.)
  migration_options() {}

  std::string schema = "pgkit";                  ///< the schema holding pgkit's tables
  std::vector<std::string> modules;              ///< modules to act on (dependencies are added)
  std::vector<std::string> migrations_dirs;      ///< directories of user modules
  std::chrono::milliseconds lock_wait{60000};    ///< how long to poll for the advisory lock
  std::chrono::milliseconds lock_timeout{1000};  ///< SET LOCAL lock_timeout of each migration
  /// How often a transaction of migrations that failed on lock_timeout is run again, whole,
  /// after a pause that doubles from 250 ms (capped at 4 s); 0: fail at the first timeout.
  std::size_t lock_retries = 3;
  std::optional<std::chrono::milliseconds> statement_timeout;      ///< SET LOCAL statement_timeout
  out_of_order_policy out_of_order = out_of_order_policy::refuse;  ///< see out_of_order_policy
  std::function<void(const std::string&)> progress;  ///< receives one line per step, if set
  /// The pooler between pgkit and the server: apply and rollback refuse
  /// pooler_mode::pgbouncer_transaction (pgkit::config_error) before taking the lock.
  pooler_mode pooler = pooler_mode::none;
  /// Polled while waiting for the lock and before each migration; once it returns true, the
  /// run stops with pgkit::error of kind canceled, rolling back the running transaction. To
  /// stop a running statement too, also call `connection.cancel_query()` from another thread.
  std::function<bool()> interrupted;
};

/// A migration recorded in schema_migration.
struct applied_migration {
  std::string module;      ///< the module
  std::string version;     ///< the version
  std::string name;        ///< the name it had when applied
  std::string checksum;    ///< the checksum of its up section when applied
  std::string applied_at;  ///< when, as PostgreSQL prints a timestamptz
};

/// The state of one module in one database.
struct module_status {
  std::string module;                      ///< the module's name
  bool known = true;                       ///< false when files for it were not given
  std::string applied_version;             ///< the newest applied version, or ""
  std::vector<migration> pending;          ///< not yet applied, in run order
  std::vector<migration> out_of_order;     ///< pending ones older than applied_version
  std::vector<migration> drifted;          ///< applied, but the file's checksum differs
  std::vector<applied_migration> unknown;  ///< applied versions that no file describes
};

/// The state of the selected modules (or, with none selected, of every applied one).
struct migration_status {
  std::string schema;                  ///< the schema that was read
  std::vector<module_status> modules;  ///< one entry per module, sorted by name
  /// Returns how many migrations are pending across all modules.
  std::size_t pending_count() const;
  /// Returns how many applied migrations have drifted across all modules.
  std::size_t drifted_count() const;
};

/// Reads the state of the modules in `options` (every module that has applied migrations
/// when none is named) without taking any lock. Throws pgkit::error.
migration_status read_migration_status(pqxx::connection& connection,
                                       const migration_options& options);

/// One migration that a run applied or rolled back.
struct migration_step {
  std::string module;                     ///< the module
  std::string version;                    ///< the version
  std::string name;                       ///< the name
  std::chrono::microseconds duration{0};  ///< how long its SQL took
};

/// What a run would apply, read without taking the lock.
struct migration_plan {
  std::vector<migration> pending;  ///< in run order
  std::vector<migration> drifted;  ///< applied migrations whose files changed since
};

/// Returns what apply_modules would apply now. Throws as apply_modules does for unknown
/// modules and refused out-of-order migrations.
migration_plan plan_migrations(pqxx::connection& connection, const migration_options& options);

/// What apply_modules did.
struct apply_result {
  std::vector<migration_step> applied;  ///< in the order they ran; empty when up to date
  std::vector<migration> drifted;       ///< applied migrations whose files changed since
};

/// Applies every pending migration of the selected modules under the schema's advisory lock,
/// all in one transaction (split only around `transaction:false` migrations), with
/// bookkeeping. A transaction that fails on lock_timeout is rolled back and run again up to
/// `options.lock_retries` times (a `transaction:false` migration is not: part of it may have
/// committed). Throws pgkit::error of kind timeout naming the lock holder's pid, usage for
/// unknown modules and refused out-of-order migrations, or the server's kind for a failing
/// migration (whose message names module, version and file); nothing of a failed
/// transaction remains.
apply_result apply_modules(pqxx::connection& connection, const migration_options& options);

/// Applies the built-in (or already known) `modules` to `schema` with default options: the
/// one-liner for tests and applications. Throws as the other overload does.
apply_result apply_modules(pqxx::connection& connection, const std::vector<std::string>& modules,
                           const std::string& schema = "pgkit");

/// Which applied migrations of one module to roll back.
struct rollback_target {
  std::size_t steps = 1;  ///< the newest `steps` ones, unless `to_version` is set
  /// Every one newer than this 14-digit version ("0": all); anything else is refused with
  /// pgkit::usage_error.
  std::optional<std::string> to_version;
};

/// Runs down sections of `module`'s applied migrations, newest first, in one transaction under
/// the advisory lock, with bookkeeping (a transaction:false down section runs alone, and its
/// bookkeeping goes only once it has succeeded). Returns what was rolled back (empty: nothing was
/// applied). Throws pgkit::usage_error when the module is unknown, an applied version has no
/// file, or other applied modules still depend on what would be removed.
std::vector<migration_step> rollback_module(pqxx::connection& connection,
                                            const migration_options& options,
                                            const std::string& module,
                                            const rollback_target& target);

/// Records the migrations of `module` up to and including `version` as applied, with the
/// checksums of today's files, without running them: for a database that has their schema
/// already. Applies what the module depends on first (core's bookkeeping tables), then records
/// under the advisory lock in one transaction. Returns what it recorded. Throws usage_error
/// when the module is unknown, `version` is none of its files' versions, or any of them is
/// recorded already (nothing is recorded then).
std::vector<migration_step> baseline_module(pqxx::connection& connection,
                                            const migration_options& options,
                                            const std::string& module, const std::string& version);

/// Returns the SQL that applies `migrations` (in this order) from the state where none of them
/// is applied, as one script for `psql -v ON_ERROR_STOP=1 -f`: the statements apply_modules
/// runs, bookkeeping included.
std::string render_plain_script(const std::vector<const migration*>& migrations,
                                const std::string& schema);

/// One file of the dbmate layout.
struct dbmate_file {
  std::string file_name;  ///< `<version>_<module>_<name>.sql`
  std::string text;       ///< a dbmate migration that also keeps pgkit's bookkeeping in step
};

/// Returns one dbmate migration per migration, in run order. Throws pgkit::usage_error for a
/// `transaction:false` section, whose bookkeeping dbmate could not run with it.
std::vector<dbmate_file> render_dbmate_files(const std::vector<const migration*>& migrations,
                                             const std::string& schema);

}  // namespace pgkit
