// `pgkit migrate [--apply] MODULE...` and `pgkit apply MODULE...`: Pevensie's behaviour. Without
// --apply the SQL of what is pending goes to stdout and nothing changes; with it (or as
// `apply`) the pending migrations run under the advisory lock.

#include <memory>

#include "commands.hpp"
#include "database_common.hpp"
#include "job_metrics.hpp"
#include "lint.hpp"
#include "migration_common.hpp"
#include "pgkit/migration.hpp"
#include "progress_line.hpp"

namespace pgkit::cli {
namespace {

struct migrate_options : migration_cli_options {
  bool apply = false;
  bool lint = false;              ///< --lint: lint the pending migrations first
  std::string fail_on = "error";  ///< --fail-on
  std::string metrics_file;       ///< --metrics-file
};

nlohmann::ordered_json migration_json(const migration& m) {
  return {{"module", m.module}, {"version", m.version}, {"name", m.name}, {"file", m.path}};
}

void warn_drift(const std::vector<migration>& drifted, const output& out) {
  for (const auto& m : drifted) {
    out.warning(m.path + " (module " + m.module +
                ") has changed since it was applied (its checksum differs)");
  }
}

std::string module_list(const std::vector<std::string>& modules) {
  std::string out;
  for (const auto& name : modules)
    out += (out.empty() ? "" : ", ") + name;
  return out;
}

int run_apply(const migrate_options& options, context& ctx, job_outcome& outcome) {
  const auto& out = ctx.out();
  auto settings = library_options(ctx, options);
  if (options.lint)
    check_lint_available();
  auto connection = ctx.connect(options.wait);
  if (options.lint)
    lint_before_apply(ctx, *connection, plan_migrations(*connection, settings).pending,
                      options.fail_on);
  progress_line progress{out};
  if (progress.active()) {
    // Each "applying ..." line stays, followed by the migration and its elapsed time below it.
    settings.progress = [&progress, &out](const std::string& line) {
      progress.hide();
      out.report(line);
      if (line.rfind("applying ", 0) == 0)
        progress.show("apply: running " + line.substr(9));
    };
  }
  apply_result result;
  {
    interrupt_guard guard{*connection};
    settings.interrupted = guard.interrupted();
    result = apply_modules(*connection, settings);
  }
  progress.hide();
  outcome.migrations_applied = result.applied.size();
  warn_drift(result.drifted, out);
  if (out.json()) {
    auto applied = nlohmann::ordered_json::array();
    for (const auto& step : result.applied) {
      applied.push_back({{"module", step.module},
                         {"version", step.version},
                         {"name", step.name},
                         {"duration_ms", to_milliseconds(step.duration)}});
    }
    auto drifted = nlohmann::ordered_json::array();
    for (const auto& m : result.drifted)
      drifted.push_back(migration_json(m));
    out.document({{"schema", settings.schema}, {"applied", applied}, {"drifted", drifted}});
  } else if (result.applied.empty()) {
    out.report("nothing to apply: " + module_list(options.modules) + " up to date in schema " +
               settings.schema);
  } else {
    out.report("applied " + std::to_string(result.applied.size()) + " migration" +
               (result.applied.size() == 1 ? "" : "s") + " in schema " + settings.schema);
  }
  return exit_ok;
}

int run_dry(const migrate_options& options, context& ctx) {
  const auto& out = ctx.out();
  auto settings = library_options(ctx, options);
  auto plan = plan_migrations(*ctx.connect(options.wait), settings);
  warn_drift(plan.drifted, out);
  std::vector<const migration*> pending;
  for (const auto& m : plan.pending)
    pending.push_back(&m);
  std::string sql = pending.empty() ? std::string{} : render_plain_script(pending, settings.schema);
  if (out.json()) {
    auto list = nlohmann::ordered_json::array();
    for (const auto& m : plan.pending)
      list.push_back(migration_json(m));
    out.document({{"schema", settings.schema}, {"pending", list}, {"sql", sql}});
    return exit_ok;
  }
  out.data(sql);
  if (pending.empty()) {
    out.report("nothing to apply: " + module_list(options.modules) + " up to date in schema " +
               settings.schema);
  }
  for (const auto& m : plan.pending)
    out.report("pending: " + m.module + " " + m.file_name);
  if (!pending.empty()) {
    out.report(std::to_string(pending.size()) + " pending migration" +
               (pending.size() == 1 ? "" : "s") +
               " printed; nothing was changed (pass --apply, or run pgkit apply, to apply)");
  }
  return exit_ok;
}

void add_run_options(CLI::App& command, migrate_options& options) {
  command.add_option("module", options.modules, "modules to migrate (dependencies are added)");
  add_migrations_dir_option(command, options);
  add_lock_options(command, options);
  command.add_flag("--allow-out-of-order", options.allow_out_of_order,
                   "apply pending migrations older than their module's newest applied one");
  add_wait_option(command, options);
  command.add_flag("--lint", options.lint,
                   "lint the pending migrations first; refuse (exit 3, nothing applied) on a "
                   "finding at or above --fail-on");
  add_fail_on_option(command, options.fail_on);
  add_metrics_file_option(command, options.metrics_file);
}

int run_apply_job(const migrate_options& options, context& ctx) {
  return run_job("apply", options.metrics_file,
                 [&](job_outcome& outcome) { return run_apply(options, ctx, outcome); });
}

}  // namespace

void setup_migrate(CLI::App& command, const global_options& globals, int& exit_status) {
  auto options = std::make_shared<migrate_options>();
  command.add_flag("--apply", options->apply, "apply the pending migrations instead of printing");
  add_run_options(command, *options);
  command.callback([options, &globals, &exit_status] {
    context ctx{globals};
    if (!options->apply && !options->metrics_file.empty())
      throw usage_error("--metrics-file needs --apply",
                        "run 'pgkit migrate --apply' or 'pgkit apply'");
    exit_status = options->apply ? run_apply_job(*options, ctx) : run_dry(*options, ctx);
  });
}

void setup_apply(CLI::App& command, const global_options& globals, int& exit_status) {
  setup_apply_then(command, globals, exit_status, nullptr);
}

void setup_apply_then(CLI::App& command, const global_options& globals, int& exit_status,
                      void (*before)(context&)) {
  auto options = std::make_shared<migrate_options>();
  add_run_options(command, *options);
  auto dump = std::make_shared<bool>(false);
  command.add_flag("--dump-schema", *dump,
                   "after a successful run, write the schema to the schema_file key's file, "
                   "default db/schema.sql (pgkit dump)");
  command.callback([options, dump, &globals, &exit_status, before] {
    context ctx{globals};
    auto path = *dump ? schema_file_path({}, ctx) : std::string{};
    if (*dump)
      check_schema_file(path);
    if (before != nullptr)
      before(ctx);
    exit_status = run_apply_job(*options, ctx);
    if (*dump)
      write_schema(path, ctx);
  });
}

}  // namespace pgkit::cli
