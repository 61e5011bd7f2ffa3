// The migration engine's database side: reading the bookkeeping, the advisory lock, applying
// and rolling back.

#include <algorithm>
#include <map>
#include <regex>
#include <set>
#include <thread>

#include "core/pqxx_compat.hpp"
#include "core/sqlstate.hpp"
#include "migrate/migration_sql.hpp"
#include "migrate/sql_lexer.hpp"
#include "pgkit/error.hpp"
#include "pgkit/migration.hpp"
#include "wire/wire.hpp"

namespace pgkit {
namespace {

using std::chrono::milliseconds;
using clock_type = std::chrono::steady_clock;
using detail::wire;

// The first field of the first row of `sql`'s result, as text.
std::string first_value(const wire& on, const std::string& sql, std::string_view context) {
  auto rows = on.run(sql, {}, detail::result_format::text, context);
  return rows.rows() == 0 || rows.is_null(0, 0) ? std::string{} : rows.bytes(0, 0);
}

void report(const migration_options& options, const std::string& line) {
  if (options.progress)
    options.progress(line);
}

bool interrupted(const migration_options& options) {
  return options.interrupted && options.interrupted();
}

// Throws the error that ends an interrupted run, saying what stays applied.
[[noreturn]] void throw_interrupted(std::size_t committed) {
  throw error(error_kind::canceled,
              committed == 0 ? std::string{"interrupted: the running transaction was rolled back "
                                           "and nothing was applied"}
                             : "interrupted: " + std::to_string(committed) + " migration" +
                                   (committed == 1 ? "" : "s") +
                                   " committed before the interruption stay applied; the rest "
                                   "was rolled back",
              "run pgkit status to see what is applied, and apply again when ready");
}

// Runs `step`, a part of a run before its first change (a check, the lock, reading what is
// applied). The cancel request sent on an interruption makes whichever statement is running
// fail, these included: then the run ends as interrupted, nothing done, instead of with that
// statement's "canceling statement due to user request".
template <typename Step>
auto before_any_change(const migration_options& options, const Step& step) {
  try {
    return step();
  } catch (const error&) {
    if (interrupted(options))
      throw_interrupted(0);
    throw;
  }
}

// A standby takes no writes: say so, naming it, before any lock is taken or waited for.
void refuse_standby(pqxx::connection& connection) {
  if (first_value(wire::of(connection), "SELECT pg_is_in_recovery()",
                  "asking whether the server is a standby") != "t") {
    return;
  }
  std::string server = connection.hostname() == nullptr ? "" : connection.hostname();
  if (connection.port() != nullptr)
    server += std::string{server.empty() ? "port " : ":"} + connection.port();
  throw error(error_kind::sql,
              "the server at " + server +
                  " is a standby (read-only, in recovery): migrations run on the primary",
              "point the command at the primary; with a multi-host URL add "
              "target_session_attrs=read-write",
              std::string{detail::sqlstate_of(detail::sql_condition::read_only_sql_transaction)});
}

// What apply and rollback check before they take the migration lock: the one place for
// refusals that make the lock, or the run, meaningless (a transaction-mode pooler, a standby).
void check_before_lock(pqxx::connection& connection, const migration_options& options) {
  if (options.pooler == pooler_mode::pgbouncer_transaction) {
    throw config_error(
        "migrations cannot run through a transaction-mode pooler (pooler = \"" +
            std::string{to_string(pooler_mode::pgbouncer_transaction)} +
            "\"): the advisory lock and its unlock would land on different server connections",
        "run migrations over a direct connection to PostgreSQL (or a session-mode pooler), "
        "for example a second connection in database.toml or --addr");
  }
  refuse_standby(connection);
}

detail::run_timeouts timeouts_of(const migration_options& options) {
  return {options.lock_timeout, options.statement_timeout};
}

std::string describe(const migration& m) {
  return m.module + " " + m.version + " (" + m.path + ")";
}

// Every row of schema_migration, or none when the table does not exist yet.
std::vector<applied_migration> read_applied(pqxx::connection& connection,
                                            const std::string& schema) {
  const auto on = wire::of(connection);
  const auto context = "reading the migration state of schema " + schema;
  auto table = detail::quote_identifier(schema) + ".schema_migration";
  if (first_value(on, "SELECT to_regclass(" + detail::quote_literal(table) + ") IS NOT NULL",
                  context) != "t") {
    return {};
  }
  auto rows = on.run("SELECT module, version, name, checksum, applied_at::text FROM " + table +
                         " ORDER BY module, version",
                     {}, detail::result_format::text, context);
  std::vector<applied_migration> applied;
  for (int row = 0; row < rows.rows(); ++row) {
    applied.push_back({rows.bytes(row, 0), rows.bytes(row, 1), rows.bytes(row, 2),
                       rows.bytes(row, 3), rows.bytes(row, 4)});
  }
  return applied;
}

module_status status_of(const schema_module& module,
                        const std::vector<applied_migration>& applied) {
  module_status status;
  status.module = module.name;
  std::map<std::string, const applied_migration*> by_version;
  for (const auto& row : applied) {
    if (row.module == module.name) {
      by_version[row.version] = &row;
      status.applied_version = std::max(status.applied_version, row.version);
    }
  }
  std::set<std::string> file_versions;
  for (const auto& m : module.migrations) {
    file_versions.insert(m.version);
    auto it = by_version.find(m.version);
    if (it == by_version.end()) {
      status.pending.push_back(m);
      if (m.version < status.applied_version)
        status.out_of_order.push_back(m);
    } else if (it->second->checksum != m.checksum) {
      status.drifted.push_back(m);
    }
  }
  for (const auto& [version, row] : by_version) {
    if (file_versions.count(version) == 0)
      status.unknown.push_back(*row);
  }
  return status;
}

// The modules a status call covers: the selection, or every module with applied migrations.
migration_status compute_status(const module_catalog& catalog, const migration_options& options,
                                const std::vector<applied_migration>& applied) {
  migration_status result;
  result.schema = options.schema;
  if (!options.modules.empty()) {
    for (const auto* module : catalog.select(options.modules))
      result.modules.push_back(status_of(*module, applied));
  } else {
    std::set<std::string> names;
    for (const auto& row : applied)
      names.insert(row.module);
    for (const auto& name : names) {
      if (const auto* module = catalog.find(name)) {
        result.modules.push_back(status_of(*module, applied));
        continue;
      }
      module_status unknown;
      unknown.module = name;
      unknown.known = false;
      for (const auto& row : applied) {
        if (row.module == name) {
          unknown.unknown.push_back(row);
          unknown.applied_version = std::max(unknown.applied_version, row.version);
        }
      }
      result.modules.push_back(std::move(unknown));
    }
  }
  std::sort(result.modules.begin(), result.modules.end(),
            [](const module_status& a, const module_status& b) { return a.module < b.module; });
  return result;
}

// What a run applies: the pending migrations of the selection, in run order.
struct plan {
  std::vector<const migration*> pending;
  std::vector<migration> drifted;
};

plan make_plan(const std::vector<const migration*>& order,
               const std::vector<applied_migration>& applied, const migration_options& options) {
  std::map<std::pair<std::string, std::string>, const applied_migration*> done;
  std::map<std::string, std::string> newest;
  for (const auto& row : applied) {
    done[{row.module, row.version}] = &row;
    newest[row.module] = std::max(newest[row.module], row.version);
  }
  plan result;
  std::vector<std::string> out_of_order;
  for (const auto* m : order) {
    auto it = done.find({m->module, m->version});
    if (it != done.end()) {
      if (it->second->checksum != m->checksum)
        result.drifted.push_back(*m);
      continue;
    }
    result.pending.push_back(m);
    if (m->version < newest[m->module])
      out_of_order.push_back(m->path + " (module " + m->module + " is at " + newest[m->module] +
                             ")");
  }
  if (!out_of_order.empty() && options.out_of_order == out_of_order_policy::refuse) {
    std::string list;
    for (const auto& line : out_of_order)
      list += "\n  " + line;
    throw usage_error(
        "refusing to apply migrations older than their module's newest applied one:" + list,
        "if they are independent of the newer ones, pass --allow-out-of-order");
  }
  return result;
}

// A session-level advisory lock taken by polling pg_try_advisory_lock (a blocked waiter would
// deadlock a CREATE INDEX CONCURRENTLY of the holder), released on destruction.
class migration_lock {
 public:
  migration_lock(pqxx::connection& connection, const migration_options& options)
      : m_connection(connection), m_key(migration_lock_key(options.schema)) {
    auto deadline = clock_type::now() + options.lock_wait;
    auto pause = milliseconds{20};
    bool told = false;
    for (;;) {
      if (interrupted(options))
        throw_interrupted(0);
      if (try_lock())
        return;
      if (clock_type::now() >= deadline)
        break;
      if (!told) {
        report(options, "waiting up to " + seconds_text(options.lock_wait) +
                            " for the migration lock of schema " + options.schema + holder_text());
        told = true;
      }
      auto left = std::chrono::duration_cast<milliseconds>(deadline - clock_type::now());
      std::this_thread::sleep_for(std::max(milliseconds{1}, std::min(pause, left)));
      pause = std::min(milliseconds{250}, pause * 3 / 2);
    }
    auto holder = holder_pid();
    std::string who =
        holder ? "backend pid " + std::to_string(*holder) + " holds it" : "another session held it";
    std::string hint = "another pgkit apply or rollback is probably running; wait for it";
    if (holder) {
      hint += ", or look at it with: SELECT * FROM pg_stat_activity WHERE pid = " +
              std::to_string(*holder);
    }
    throw error(error_kind::timeout,
                "could not take the migration lock of schema " + options.schema + " within " +
                    seconds_text(options.lock_wait) + ": " + who,
                hint);
  }
  ~migration_lock() {
    try {
      first_value(wire::of(m_connection),
                  "SELECT pg_advisory_unlock(" + std::to_string(m_key) + ")",
                  "releasing the migration lock");
    } catch (...) {
      // A broken connection has released the lock already.
    }
  }
  migration_lock(const migration_lock&) = delete;
  migration_lock& operator=(const migration_lock&) = delete;

 private:
  static std::string seconds_text(milliseconds duration) {
    auto count = duration.count();
    if (count % 1000 == 0)
      return std::to_string(count / 1000) + " s";
    return std::to_string(count) + " ms";
  }
  bool try_lock() {
    return first_value(wire::of(m_connection),
                       "SELECT pg_try_advisory_lock(" + std::to_string(m_key) + ")",
                       "taking the migration lock") == "t";
  }
  std::optional<long> holder_pid() {
    try {
      auto pid = first_value(wire::of(m_connection),
                             "SELECT pid FROM pg_locks WHERE " +
                                 detail::migration_lock_held(m_key, "pg_locks") +
                                 " AND pid <> pg_backend_pid() LIMIT 1",
                             "looking for the migration lock's holder");
      if (pid.empty())
        return std::nullopt;
      return std::stol(pid);
    } catch (...) {
      return std::nullopt;
    }
  }
  std::string holder_text() {
    auto pid = holder_pid();
    return pid ? " (held by backend pid " + std::to_string(*pid) + ")" : "";
  }

  pqxx::connection& m_connection;
  std::int64_t m_key;
};

// Runs `statements` as one script: one round trip.
void exec_all(const wire& on, const std::vector<std::string>& statements,
              const std::string& context) {
  std::string script;
  for (const auto& statement : statements)
    script += (script.empty() ? "" : ";\n") + statement;
  on.script(script, context);
}

// The file line that the server's "LINE n:" refers to, when it says one.
std::string file_position(const std::string& message, const migration& m, std::size_t first_line) {
  static const std::regex line_pattern{"LINE ([0-9]+):"};
  std::smatch match;
  if (!std::regex_search(message, match, line_pattern))
    return {};
  auto line = std::stoul(match[1].str());
  return " at " + m.path + ":" + std::to_string(first_line + line - 1);
}

// Runs `sql` (one section, or one statement of it starting at file line `first_line`); on
// failure throws an error naming module, version, file and position.
void run_sql(const wire& on, const migration& m, const std::string& sql, std::size_t first_line,
             const std::string& what) {
  try {
    on.script(sql, {});
  } catch (const error& e) {
    std::string position = e.sqlstate().empty() ? "" : file_position(e.what(), m, first_line);
    throw error(e.kind(), what + " " + describe(m) + " failed" + position + ": " + e.what(),
                e.hint(), e.sqlstate());
  }
}

// Runs one section inside a transaction: as one string, as dbmate does.
std::chrono::microseconds run_section(const wire& on, const migration& m, const std::string& sql,
                                      std::size_t first_line, const std::string& what) {
  auto start = clock_type::now();
  run_sql(on, m, sql, first_line, what);
  return std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - start);
}

// Runs a transaction:false section one top-level statement at a time, as psql runs the plain
// script: each statement commits on its own, and the server runs several statements sent as
// one string in one implicit transaction, which CREATE INDEX CONCURRENTLY refuses.
std::chrono::microseconds run_statements(const wire& on, const migration& m, const std::string& sql,
                                         std::size_t first_line, const std::string& what) {
  auto start = clock_type::now();
  for (const auto& statement : detail::split_statements(sql)) {
    run_sql(on, m, sql.substr(statement.begin, statement.end - statement.begin),
            first_line + statement.line - 1, what);
  }
  return std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - start);
}

// Runs a transaction:false section with pgkit's session settings, and resets them afterwards,
// also when the section fails.
std::chrono::microseconds run_outside_transaction(pqxx::connection& connection, const migration& m,
                                                  const std::string& sql, std::size_t first_line,
                                                  const std::string& what,
                                                  const migration_options& options) {
  const auto on = wire::of(connection);
  exec_all(on, detail::session_setup_statements(options.schema, timeouts_of(options)),
           "preparing the session in schema " + options.schema);
  std::chrono::microseconds took{0};
  try {
    took = run_statements(on, m, sql, first_line, what);
  } catch (...) {
    try {
      exec_all(on, detail::session_reset_statements(timeouts_of(options)), "resetting the session");
    } catch (...) {
      // The original failure is what matters.
    }
    throw;
  }
  exec_all(on, detail::session_reset_statements(timeouts_of(options)), "resetting the session");
  return took;
}

// Creates pgkit's schema when missing and returns the current transaction's id (to notice a
// migration that ended pgkit's transaction although the lexer found no transaction control in
// it): one round trip.
std::string prepare_transaction(const wire& on, const std::string& schema,
                                const std::string& context) {
  auto rows = on.script(detail::create_schema_statement(schema) + ";\nSELECT txid_current()::text",
                        context);
  return rows.bytes(0, 0);
}

std::string interval_literal(std::chrono::microseconds duration) {
  return "interval '" + std::to_string(duration.count()) + " microseconds'";
}

std::string milliseconds_text(std::chrono::microseconds duration) {
  auto tenths = duration.count() / 100;
  return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + " ms";
}

[[noreturn]] void throw_transaction_ended(const migration& m) {
  throw error(error_kind::usage,
              "migration " + describe(m) +
                  " ended pgkit's transaction; what the run did so far may be committed",
              "remove the transaction control (COMMIT, ROLLBACK, ...) from the file; check with "
              "pgkit status what is applied");
}

// Throws when the section that just ran ended the transaction `transaction` (the lexer refuses
// transaction control, but a server-side trick could still end it).
void check_same_transaction(const wire& on, const std::string& transaction, const migration& m) {
  if (first_value(on, "SELECT txid_current()::text", "reading the transaction id") == transaction)
    return;
  throw_transaction_ended(m);
}

// Applies `batch` (all transactional) in one transaction. Each migration starts with pgkit's
// settings, so that a `SET search_path` in one file does not move the next file's objects.
void apply_batch(pqxx::connection& connection, const std::vector<const migration*>& batch,
                 const migration_options& options, std::vector<migration_step>& applied) {
  std::vector<migration_step> steps;
  const auto tx = wire::of(connection);
  detail::block transaction_block{tx, "starting the migration transaction"};
  auto transaction = prepare_transaction(
      tx, options.schema, "preparing the migration transaction in schema " + options.schema);
  // Two round trips per migration: its settings with its section (one line before it, so the
  // server's LINE n is one more than the section's line), then the record, which also checks
  // that the section left pgkit's transaction open.
  std::string settings;
  for (const auto& statement :
       detail::migration_settings_statements(options.schema, timeouts_of(options), "SET LOCAL"))
    settings += statement + "; ";
  settings.back() = '\n';
  for (const auto* m : batch) {
    if (interrupted(options))
      throw_interrupted(applied.size());
    report(options, "applying " + m->module + " " + m->file_name);
    auto took = run_section(tx, *m, settings + m->up_sql, m->up_line - 1, "migration");
    if (first_value(tx,
                    detail::record_up_in_transaction_sql(*m, options.schema, interval_literal(took),
                                                         transaction),
                    "recording migration " + describe(*m)) != "t") {
      throw_transaction_ended(*m);
    }
    steps.push_back({m->module, m->version, m->name, took});
  }
  transaction_block.commit("committing migrations");
  for (const auto& step : steps) {
    report(options, "applied " + step.module + " " + step.version + "_" + step.name + " in " +
                        milliseconds_text(step.duration));
  }
  applied.insert(applied.end(), steps.begin(), steps.end());
}

// Runs `attempt` (one transaction of migrations) and, while it fails on lock_timeout, rolls
// back (the attempt's transaction block did) and runs it again after a pause, up to
// options.lock_retries times: a migration stuck behind a long query gives up its place in the
// lock queue quickly instead of holding every later query on the table behind it.
template <typename Attempt>
void with_lock_retries(const migration_options& options, std::size_t committed,
                       const Attempt& attempt) {
  auto pause = milliseconds{250};
  for (std::size_t retry = 1;; ++retry) {
    try {
      attempt();
      return;
    } catch (const error& e) {
      if (!detail::is(e.sqlstate(), detail::sql_condition::lock_not_available) ||
          interrupted(options)) {
        throw;
      }
      if (retry > options.lock_retries) {
        throw error(e.kind(),
                    std::string{e.what()} + " (gave up after " +
                        std::to_string(options.lock_retries) + " retr" +
                        (options.lock_retries == 1 ? "y" : "ies") + ")",
                    "another transaction holds a lock the migration needs (see pg_locks and "
                    "pg_stat_activity); end it, or raise --lock-timeout or --lock-retries",
                    e.sqlstate());
      }
      report(options, "lock_timeout: the migration transaction was rolled back; retrying in " +
                          std::to_string(pause.count()) + " ms (retry " + std::to_string(retry) +
                          " of " + std::to_string(options.lock_retries) + ")");
    }
    for (auto until = clock_type::now() + pause; clock_type::now() < until;) {
      if (interrupted(options))
        throw_interrupted(committed);
      std::this_thread::sleep_for(std::min(milliseconds{20}, pause));
    }
    pause = std::min(milliseconds{4000}, pause * 2);
  }
}

// Applies one transaction:false migration on its own.
void apply_alone(pqxx::connection& connection, const migration& m, const migration_options& options,
                 std::vector<migration_step>& applied) {
  if (interrupted(options))
    throw_interrupted(applied.size());
  report(options, "applying " + m.module + " " + m.file_name + " (transaction:false)");
  auto took = run_outside_transaction(connection, m, m.up_sql, m.up_line, "migration", options);
  const auto tx = wire::of(connection);
  detail::block transaction_block{tx, "recording migration " + describe(m)};
  exec_all(tx, {detail::record_up_sql(m, options.schema, interval_literal(took))},
           "recording migration " + describe(m));
  transaction_block.commit("recording migration " + describe(m));
  report(options, "applied " + m.module + " " + m.file_name + " in " + milliseconds_text(took));
  applied.push_back({m.module, m.version, m.name, took});
}

// Applies `batch` (when not empty) as apply_batch does, retried on lock_timeout, and empties it.
void apply_retried(pqxx::connection& connection, std::vector<const migration*>& batch,
                   const migration_options& options, std::vector<migration_step>& applied) {
  if (batch.empty())
    return;
  with_lock_retries(options, applied.size(),
                    [&] { apply_batch(connection, batch, options, applied); });
  batch.clear();
}

}  // namespace

migration_status read_migration_status(pqxx::connection& connection,
                                       const migration_options& options) {
  validate_schema_name(options.schema);
  auto catalog = module_catalog::load(options.migrations_dirs);
  if (!options.modules.empty())
    catalog.select(options.modules);  // unknown modules fail before the database is asked
  return compute_status(catalog, options, read_applied(connection, options.schema));
}

migration_plan plan_migrations(pqxx::connection& connection, const migration_options& options) {
  validate_schema_name(options.schema);
  auto catalog = module_catalog::load(options.migrations_dirs);
  auto order = run_order(catalog.select(options.modules));
  auto found = make_plan(order, read_applied(connection, options.schema), options);
  migration_plan result;
  for (const auto* m : found.pending)
    result.pending.push_back(*m);
  result.drifted = std::move(found.drifted);
  return result;
}

apply_result apply_modules(pqxx::connection& connection, const migration_options& options) {
  validate_schema_name(options.schema);
  auto catalog = module_catalog::load(options.migrations_dirs);
  auto order = run_order(catalog.select(options.modules));

  apply_result result;
  // Most runs find nothing to do; they need not wait for a lock to learn that.
  auto first_look = before_any_change(options, [&] {
    check_before_lock(connection, options);
    return make_plan(order, read_applied(connection, options.schema), options);
  });
  if (first_look.pending.empty()) {
    result.drifted = std::move(first_look.drifted);
    return result;
  }
  auto lock = before_any_change(options, [&] { return migration_lock{connection, options}; });
  auto work = before_any_change(
      options, [&] { return make_plan(order, read_applied(connection, options.schema), options); });
  result.drifted = std::move(work.drifted);
  try {
    std::vector<const migration*> batch;
    for (const auto* m : work.pending) {
      if (m->up_transaction == transaction_mode::inside) {
        batch.push_back(m);
        continue;
      }
      apply_retried(connection, batch, options, result.applied);
      apply_alone(connection, *m, options, result.applied);
    }
    apply_retried(connection, batch, options, result.applied);
  } catch (const error& e) {
    // A cancel request sent on the interruption makes the running statement fail.
    if (interrupted(options))
      throw_interrupted(result.applied.size());
    throw;
  }
  return result;
}

apply_result apply_modules(pqxx::connection& connection, const std::vector<std::string>& modules,
                           const std::string& schema) {
  migration_options options;
  options.modules = modules;
  options.schema = schema;
  return apply_modules(connection, options);
}

std::vector<migration_step> rollback_module(pqxx::connection& connection,
                                            const migration_options& options,
                                            const std::string& module_name,
                                            const rollback_target& target) {
  validate_schema_name(options.schema);
  auto catalog = module_catalog::load(options.migrations_dirs);
  catalog.select({module_name});
  const auto* module = catalog.find(module_name);
  if (target.to_version) {
    const auto& version = *target.to_version;
    bool digits =
        (version.size() == 14 || version == "0") &&
        std::all_of(version.begin(), version.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits) {
      throw usage_error("--to '" + version + "' is not a version",
                        "give a 14-digit version such as 20240101000000 (the part before the "
                        "first '_' of a file name), or 0 for everything");
    }
  }
  auto lock = before_any_change(options, [&] {
    check_before_lock(connection, options);
    return migration_lock{connection, options};
  });
  auto applied =
      before_any_change(options, [&] { return read_applied(connection, options.schema); });
  std::vector<const applied_migration*> mine;
  std::set<std::string> other_modules;
  for (const auto& row : applied) {
    if (row.module == module_name)
      mine.push_back(&row);
    else
      other_modules.insert(row.module);
  }
  std::sort(mine.begin(), mine.end(), [](const applied_migration* a, const applied_migration* b) {
    return a->version > b->version;
  });
  std::vector<const applied_migration*> chosen;
  for (const auto* row : mine) {
    if (target.to_version) {
      if (*target.to_version != "0" && row->version <= *target.to_version)
        break;
    } else if (chosen.size() >= target.steps) {
      break;
    }
    chosen.push_back(row);
  }
  if (chosen.empty()) {
    report(options, "nothing to roll back in module " + module_name);
    return {};
  }
  if (chosen.size() == mine.size()) {
    std::vector<std::string> dependents;
    for (const auto& other : other_modules) {
      const auto* m = catalog.find(other);
      bool depends = m == nullptr || std::find(m->depends_on.begin(), m->depends_on.end(),
                                               module_name) != m->depends_on.end();
      if (depends)
        dependents.push_back(other);
    }
    if (!dependents.empty()) {
      std::string list;
      for (const auto& name : dependents)
        list += (list.empty() ? "" : ", ") + name;
      throw usage_error("cannot roll back all of module " + module_name + ": " + list + " depend" +
                            (dependents.size() == 1 ? "s" : "") + " on it",
                        "roll back " + list + " first");
    }
  }
  std::vector<const migration*> steps;
  for (const auto* row : chosen) {
    auto it = std::find_if(module->migrations.begin(), module->migrations.end(),
                           [&](const migration& m) { return m.version == row->version; });
    if (it == module->migrations.end()) {
      throw usage_error("module " + module_name + " has version " + row->version +
                            " applied but no file for it, so its down section is unknown",
                        "restore the file, or pass the --migrations-dir that holds it");
    }
    steps.push_back(&*it);
  }

  std::vector<migration_step> done;
  // Consecutive transactional down sections share one transaction, each with its bookkeeping
  // removed just before it (core's down section drops the bookkeeping tables). A
  // transaction:false one runs on its own first and loses its bookkeeping only once it has
  // succeeded, so a failing one stays applied.
  std::size_t i = 0;
  while (i < steps.size()) {
    const auto& m = *steps[i];
    if (m.down_transaction == transaction_mode::outside) {
      report(options, "rolling back " + m.module + " " + m.file_name + " (transaction:false)");
      auto took = run_outside_transaction(connection, m, m.down_sql, m.down_line,
                                          "rolling back migration", options);
      const auto tx = wire::of(connection);
      detail::block transaction_block{tx, "recording the rollback of " + describe(m)};
      exec_all(tx, {detail::record_down_sql(m, options.schema)},
               "recording the rollback of " + describe(m));
      transaction_block.commit("recording the rollback of " + describe(m));
      done.push_back({m.module, m.version, m.name, took});
      ++i;
      continue;
    }
    const auto tx = wire::of(connection);
    detail::block transaction_block{tx, "starting the rollback transaction"};
    auto transaction = prepare_transaction(
        tx, options.schema, "preparing the rollback transaction in schema " + options.schema);
    while (i < steps.size() && steps[i]->down_transaction == transaction_mode::inside) {
      const auto& step = *steps[i++];
      report(options, "rolling back " + step.module + " " + step.file_name);
      auto statements =
          detail::migration_settings_statements(options.schema, timeouts_of(options), "SET LOCAL");
      statements.push_back(detail::record_down_sql(step, options.schema));
      exec_all(tx, statements, "recording the rollback of " + describe(step));
      std::chrono::microseconds took{0};
      if (!step.down_sql.empty())
        took = run_section(tx, step, step.down_sql, step.down_line, "rolling back migration");
      check_same_transaction(tx, transaction, step);
      done.push_back({step.module, step.version, step.name, took});
    }
    transaction_block.commit("committing the rollback");
  }
  for (const auto& step : done)
    report(options, "rolled back " + step.module + " " + step.version + "_" + step.name);
  return done;
}

std::vector<migration_step> baseline_module(pqxx::connection& connection,
                                            const migration_options& options,
                                            const std::string& module_name,
                                            const std::string& version) {
  validate_schema_name(options.schema);
  auto catalog = module_catalog::load(options.migrations_dirs);
  catalog.select({module_name});
  const auto* module = catalog.find(module_name);
  bool known = std::any_of(module->migrations.begin(), module->migrations.end(),
                           [&](const migration& m) { return m.version == version; });
  if (!known) {
    std::string versions;
    for (const auto& m : module->migrations)
      versions += (versions.empty() ? "" : ", ") + m.version;
    throw usage_error("--to " + version + " is not a version of module " + module_name,
                      "give one of its files' versions: " + versions);
  }
  if (!module->depends_on.empty()) {
    auto dependencies = options;
    dependencies.modules = module->depends_on;
    apply_modules(connection, dependencies);
  }
  auto lock = before_any_change(options, [&] {
    check_before_lock(connection, options);
    return migration_lock{connection, options};
  });
  auto applied =
      before_any_change(options, [&] { return read_applied(connection, options.schema); });
  std::vector<const migration*> chosen;
  std::string recorded;
  for (const auto& m : module->migrations) {
    if (m.version > version)
      break;
    chosen.push_back(&m);
    bool done = std::any_of(applied.begin(), applied.end(), [&](const applied_migration& row) {
      return row.module == m.module && row.version == m.version;
    });
    if (done)
      recorded += "\n  " + m.path;
  }
  if (!recorded.empty()) {
    throw usage_error("refusing to baseline module " + module_name +
                          ": these migrations are recorded as applied already:" + recorded,
                      "baseline is for a database where none of them is recorded; run pgkit "
                      "status " +
                          module_name + " to see what is");
  }
  const auto tx = wire::of(connection);
  detail::block transaction_block{tx, "starting the baseline transaction"};
  std::vector<migration_step> done;
  for (const auto* m : chosen) {
    exec_all(tx, {detail::record_up_sql(*m, options.schema, "interval '0'")},
             "recording migration " + describe(*m));
    done.push_back({m->module, m->version, m->name, std::chrono::microseconds{0}});
  }
  transaction_block.commit("committing the baseline");
  for (const auto& step : done)
    report(options,
           "recorded " + step.module + " " + step.version + "_" + step.name + " as applied");
  return done;
}

}  // namespace pgkit
