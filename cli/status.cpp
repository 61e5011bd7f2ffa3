// `pgkit status [MODULE...]`: per module, the applied version, pending, drifted and unknown
// migrations. --exit-code turns "something is pending or drifted" into exit 3 for CI.

#include <iomanip>
#include <memory>
#include <sstream>

#include "commands.hpp"
#include "migration_common.hpp"
#include "pgkit/migration.hpp"

namespace pgkit::cli {
namespace {

struct status_options : migration_cli_options {
  bool exit_code = false;
};

nlohmann::ordered_json files_json(const std::vector<migration>& list) {
  auto out = nlohmann::ordered_json::array();
  for (const auto& m : list)
    out.push_back({{"version", m.version}, {"name", m.name}, {"file", m.path}});
  return out;
}

nlohmann::ordered_json document(const migration_status& status) {
  auto modules = nlohmann::ordered_json::array();
  for (const auto& module : status.modules) {
    auto unknown = nlohmann::ordered_json::array();
    for (const auto& row : module.unknown) {
      unknown.push_back(
          {{"version", row.version}, {"name", row.name}, {"applied_at", row.applied_at}});
    }
    modules.push_back({{"module", module.module},
                       {"known", module.known},
                       {"applied_version", module.applied_version.empty()
                                               ? nlohmann::ordered_json(nullptr)
                                               : nlohmann::ordered_json(module.applied_version)},
                       {"pending", files_json(module.pending)},
                       {"out_of_order", files_json(module.out_of_order)},
                       {"drifted", files_json(module.drifted)},
                       {"unknown", unknown}});
  }
  return {{"schema", status.schema},
          {"pending", status.pending_count()},
          {"drifted", status.drifted_count()},
          {"modules", modules}};
}

std::string report(const migration_status& status) {
  std::ostringstream out;
  out << "schema " << status.schema << '\n';
  if (status.modules.empty())
    out << "no module is applied in this schema\n";
  for (const auto& module : status.modules) {
    std::string summary;
    auto add = [&summary](std::size_t count, const char* what) {
      if (count > 0)
        summary += (summary.empty() ? "" : ", ") + std::to_string(count) + " " + what;
    };
    add(module.pending.size(), "pending");
    add(module.out_of_order.size(), "out of order");
    add(module.drifted.size(), "drifted");
    add(module.unknown.size(), "unknown");
    if (!module.known)
      summary = "no files for this module (pass its --migrations-dir)";
    if (summary.empty())
      summary = "up to date";
    out << std::left << std::setw(12) << module.module << ' ' << std::setw(14)
        << (module.applied_version.empty() ? "-" : module.applied_version) << "  " << summary
        << '\n';
    for (const auto& m : module.pending) {
      bool late = false;
      for (const auto& o : module.out_of_order)
        late = late || o.version == m.version;
      out << "  pending  " << m.file_name << (late ? " (out of order)" : "") << '\n';
    }
    for (const auto& m : module.drifted)
      out << "  drifted  " << m.file_name << " (changed since it was applied)\n";
    if (module.known) {
      for (const auto& row : module.unknown)
        out << "  unknown  " << row.version << "_" << row.name << " (applied, no file)\n";
    }
  }
  return out.str();
}

int run_status(const status_options& options, context& ctx) {
  const auto& out = ctx.out();
  auto settings = library_options(ctx, options);
  auto status = read_migration_status(*ctx.connect(options.wait), settings);
  if (out.json())
    out.document(document(status));
  else if (!out.quiet())
    out.data(report(status));
  if (options.exit_code && (status.pending_count() > 0 || status.drifted_count() > 0))
    return exit_check_failed;
  return exit_ok;
}

}  // namespace

void setup_status(CLI::App& command, const global_options& globals, int& exit_status) {
  auto options = std::make_shared<status_options>();
  command.add_option("module", options->modules,
                     "modules to report on (default: every module applied in the schema)");
  add_migrations_dir_option(command, *options);
  command.add_flag("--exit-code", options->exit_code,
                   "exit 3 when a migration is pending or drifted");
  add_wait_option(command, *options);
  command.callback([options, &globals, &exit_status] {
    context ctx{globals};
    exit_status = run_status(*options, ctx);
  });
}

}  // namespace pgkit::cli
