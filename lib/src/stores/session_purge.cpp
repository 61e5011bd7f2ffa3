// Purging expired sessions, auth sessions and spent one-time tokens in short batches.

#include <algorithm>
#include <numeric>

#include "core/pqxx_compat.hpp"
#include "migrate/migration_sql.hpp"
#include "pgkit/error.hpp"
#include "pgkit/migration.hpp"
#include "pgkit/session.hpp"

namespace pgkit {
namespace {

using clock_type = std::chrono::steady_clock;

// One table a purge cleans: its key column and what makes a row deletable. `order` lets the
// batch walk the expiry index instead of rescanning the heap from its start.
struct purge_target {
  const char* table;
  const char* module;
  const char* key;
  const char* doomed;
  const char* order;
};

const purge_target k_targets[] = {
    {"session", "session", "key_hash", "expires_at <= now()", " ORDER BY expires_at"},
    {"auth_session", "auth", "id", "expires_at <= now()", " ORDER BY expires_at"},
    {"auth_one_time_token", "auth", "id",
     "(expires_at <= now() OR used_at IS NOT NULL OR deleted_at IS NOT NULL)", ""},
};

bool in_scope(const purge_target& target, purge_scope scope) {
  switch (scope) {
    case purge_scope::all:
      return true;
    case purge_scope::session:
      return std::string_view{target.module} == "session";
    case purge_scope::auth:
      return std::string_view{target.module} == "auth";
  }
  return false;
}

std::string no_module_message(purge_scope scope, const std::string& schema) {
  auto where = " in schema " + detail::quote_identifier(schema);
  switch (scope) {
    case purge_scope::session:
      return "the session module is not applied" + where;
    case purge_scope::auth:
      return "the auth module is not applied" + where;
    case purge_scope::all:
      break;
  }
  return "neither the session nor the auth module is applied" + where;
}

std::string no_module_hint(purge_scope scope, const std::string& schema) {
  std::string modules = scope == purge_scope::session ? "session"
                        : scope == purge_scope::auth  ? "auth"
                                                      : "session auth";
  return "apply " + std::string{scope == purge_scope::all ? "them" : "it"} +
         " first: pgkit apply --schema " + schema + " " + modules +
         (scope == purge_scope::all ? " (or the one you use)" : "");
}

}  // namespace

std::uint64_t purge_result::rows(std::string_view table) const noexcept {
  for (const auto& entry : tables) {
    if (entry.table == table)
      return entry.rows;
  }
  return 0;
}

std::uint64_t purge_result::total() const noexcept {
  return std::accumulate(
      tables.begin(), tables.end(), std::uint64_t{0},
      [](std::uint64_t sum, const table_count& entry) { return sum + entry.rows; });
}

purge_result purge_expired_sessions(pqxx::connection& connection, const std::string& schema,
                                    const purge_options& options) {
  validate_schema_name(schema);
  if (options.batch_size == 0)
    throw usage_error("the purge batch size must be at least 1");
  if (options.max_duration && options.max_duration->count() <= 0)
    throw usage_error("the purge's maximum duration must be positive");
  const auto started = clock_type::now();
  const auto quoted_schema = detail::quote_identifier(schema);
  purge_result result;

  // Which tables exist decides which modules are applied.
  std::vector<const purge_target*> targets;
  try {
    pqxx::nontransaction tx{connection};
    for (const auto& target : k_targets) {
      if (!in_scope(target, options.scope))
        continue;
      auto found = detail::exec_params(tx, "SELECT to_regclass($1) IS NOT NULL",
                                       quoted_schema + "." + target.table);
      if (found[0][0].as<bool>()) {
        targets.push_back(&target);
      } else if (std::find(result.skipped_modules.begin(), result.skipped_modules.end(),
                           target.module) == result.skipped_modules.end()) {
        result.skipped_modules.emplace_back(target.module);
      }
    }
  } catch (...) {
    detail::rethrow_as_pgkit("looking for the session and auth tables");
  }
  if (targets.empty()) {
    throw error(error_kind::undefined_object, no_module_message(options.scope, schema),
                no_module_hint(options.scope, schema));
  }

  const auto batch_limit = static_cast<std::int64_t>(options.batch_size);
  const auto lock_timeout = std::to_string(options.lock_timeout.count()) + "ms";
  // The first batch always runs, so a run under a time limit always makes progress.
  auto out_of_time = [&] {
    return result.batches > 0 && options.max_duration &&
           clock_type::now() - started >= *options.max_duration;
  };
  for (const auto* target : targets)
    result.tables.push_back({target->table, 0});
  for (std::size_t i = 0; i < targets.size() && result.complete; ++i) {
    const auto* target = targets[i];
    const auto table = quoted_schema + "." + target->table;
    auto& count = result.tables[i].rows;
    const std::string context = std::string{"purging "} + target->table;
    if (options.mode == purge_mode::count_only) {
      try {
        pqxx::nontransaction tx{connection};
        count = tx.exec("SELECT count(*) FROM " + table + " WHERE " + target->doomed)[0][0]
                    .as<std::uint64_t>();
      } catch (...) {
        detail::rethrow_as_pgkit(context);
      }
      continue;
    }
    const std::string batch_sql =
        "DELETE FROM " + table + " WHERE " + target->key + " IN (SELECT " + target->key + " FROM " +
        table + " WHERE " + target->doomed + target->order + " LIMIT $1 FOR UPDATE SKIP LOCKED)";
    for (;;) {
      if (out_of_time()) {
        result.complete = false;
        break;
      }
      std::uint64_t deleted = 0;
      try {
        pqxx::work tx{connection};
        detail::exec_params(tx, "SELECT set_config('lock_timeout', $1, true)", lock_timeout);
        deleted = static_cast<std::uint64_t>(
            detail::exec_params(tx, batch_sql, batch_limit).affected_rows());
        tx.commit();
      } catch (...) {
        detail::rethrow_as_pgkit(context);
      }
      count += deleted;
      ++result.batches;
      // A short batch means nothing expired is left, or only rows that others hold right now
      // (a reader deleting them, another purge): either way this table is done.
      if (deleted < options.batch_size)
        break;
    }
  }
  result.elapsed =
      std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - started);
  return result;
}

}  // namespace pgkit
