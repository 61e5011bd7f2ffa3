// Sweeping expired sessions, auth sessions and spent one-time tokens in short batches.

#include <algorithm>

#include "core/pqxx_compat.hpp"
#include "core/text.hpp"
#include "pgkit/error.hpp"
#include "pgkit/migration.hpp"
#include "pgkit/session.hpp"
#include "stores/citus.hpp"
#include "stores/expiry_sweep.hpp"
#include "stores/session_statements.hpp"
#include "stores/statements.hpp"

namespace pgkit {
namespace {

// One table a purge cleans, with its module and its statements.
struct purge_target {
  const char* table;
  const char* module;
  const detail::statement_text* delete_batch;
  const detail::statement_text* count;
};

const purge_target k_targets[] = {
    {"session", "session", &detail::session_sql::k_purge_session,
     &detail::session_sql::k_count_session},
    {"auth_session", "auth", &detail::session_sql::k_purge_auth_session,
     &detail::session_sql::k_count_auth_session},
    {"auth_one_time_token", "auth", &detail::session_sql::k_purge_one_time_token,
     &detail::session_sql::k_count_one_time_token},
};

bool in_scope(const purge_target& target, sweep_scope scope) {
  switch (scope) {
    case sweep_scope::all:
      return true;
    case sweep_scope::session:
      return std::string_view{target.module} == "session";
    case sweep_scope::auth:
      return std::string_view{target.module} == "auth";
  }
  return false;
}

// The error when no module of `scope` is applied: one module's is the stores' one wording.
error no_module(sweep_scope scope, const std::string& schema) {
  switch (scope) {
    case sweep_scope::session:
      return detail::module_not_applied("session", schema);
    case sweep_scope::auth:
      return detail::module_not_applied("auth", schema);
    case sweep_scope::all:
      break;
  }
  return error(error_kind::undefined_object,
               "neither the session nor the auth module is applied in schema " + schema,
               detail::apply_hint("session auth", schema) + " (or the one you use)");
}

}  // namespace

sweep_result sweep_expired_sessions(pqxx::connection& connection, const std::string& schema,
                                    const sweep_options& options) {
  validate_schema_name(schema);
  if (options.resource_type) {
    throw usage_error("sweep_options::resource_type is for the cache store",
                      "leave it unset for sessions (scope chooses the tables)");
  }
  const auto on = detail::wire::of(connection);
  // Checks the options before anything is sent. Unnamed statements: the connection is the
  // caller's, with no record of what is prepared.
  detail::expiry_sweep sweep{on, options, "expired rows", "the sweep"};
  const auto quoted_schema = detail::quote_identifier(schema);
  std::vector<std::string> skipped;

  // Which tables exist decides which modules are applied.
  std::vector<const purge_target*> targets;
  for (const auto& target : k_targets) {
    if (!in_scope(target, options.scope))
      continue;
    auto found = on.run("SELECT to_regclass($1) IS NOT NULL", {quoted_schema + "." + target.table},
                        detail::result_format::text, "looking for the session and auth tables");
    if (found.view(0, 0) == "t") {
      targets.push_back(&target);
    } else if (std::find(skipped.begin(), skipped.end(), target.module) == skipped.end()) {
      skipped.emplace_back(target.module);
    }
  }
  if (targets.empty()) {
    throw no_module(options.scope, schema);
  }

  std::vector<sweep_result::table_count> tables;
  for (const auto* target : targets)
    tables.push_back({target->table, 0});
  for (std::size_t i = 0; i < targets.size() && sweep.result().complete; ++i) {
    auto delete_batch = detail::make_statement("session", *targets[i]->delete_batch, schema);
    auto count = detail::make_statement("session", *targets[i]->count, schema);
    detail::sweep_target target{&delete_batch, &count, {}, nullptr, {}};
    // On Citus a distributed table's batches run shard by shard (stores/citus.hpp).
    const auto table = quoted_schema + "." + targets[i]->table;
    if (detail::is_distributed_table(on, table, "looking for the session and auth tables")) {
      delete_batch =
          detail::per_shard_statement("session", *targets[i]->delete_batch, schema, table);
      target.per_shard = true;
    }
    tables[i].rows = sweep.sweep(target);
  }
  auto result = sweep.result();
  result.tables = std::move(tables);
  result.skipped_modules = std::move(skipped);
  return result;
}

// The deprecated purge_expired_sessions forwards to sweep_expired_sessions.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
purge_result purge_expired_sessions(pqxx::connection& connection, const std::string& schema,
                                    const purge_options& options) {
  sweep_options settings = options;
  settings.dry_run = options.dry_run || options.mode == purge_mode::count_only;
  purge_result result;
  static_cast<sweep_result&>(result) = sweep_expired_sessions(connection, schema, settings);
  return result;
}
#pragma GCC diagnostic pop

}  // namespace pgkit
