// `pgkit print-sql [--format plain|dbmate] [--out PATH] MODULE...`: the SQL of the selected
// modules, for psql or dbmate, without any database.

#include <filesystem>
#include <fstream>
#include <memory>

#include "commands.hpp"
#include "migration_common.hpp"
#include "pgkit/error.hpp"
#include "pgkit/migration.hpp"

namespace pgkit::cli {
namespace {

struct print_sql_options : migration_cli_options {
  std::string format = "plain";
  std::string out;
};

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream file{path, std::ios::binary | std::ios::trunc};
  file << text;
  file.close();
  if (!file)
    throw error(error_kind::internal, "cannot write " + path.string());
}

int run_print_sql(const print_sql_options& options, context& ctx) {
  const auto& out = ctx.out();
  const auto& schema = ctx.schema();
  validate_schema_name(schema);
  auto catalog = module_catalog::load(options.migrations_dirs);
  auto order = run_order(catalog.select(options.modules));
  if (options.format == "plain") {
    auto script = render_plain_script(order, schema);
    if (options.out.empty()) {
      out.data(script);
    } else {
      write_file(options.out, script);
      out.report("wrote " + std::to_string(order.size()) + " migrations to " + options.out);
    }
    return exit_ok;
  }
  if (options.out.empty()) {
    throw usage_error("--format dbmate writes one file per migration and needs --out DIR",
                      "e.g. pgkit print-sql --format dbmate --out db/migrations auth cache");
  }
  auto files = render_dbmate_files(order, schema);
  std::error_code failure;
  std::filesystem::create_directories(options.out, failure);
  if (failure)
    throw error(error_kind::internal, "cannot create " + options.out + ": " + failure.message());
  for (const auto& file : files)
    write_file(std::filesystem::path{options.out} / file.file_name, file.text);
  out.report("wrote " + std::to_string(files.size()) + " dbmate migration" +
             (files.size() == 1 ? "" : "s") + " to " + options.out);
  return exit_ok;
}

}  // namespace

void setup_print_sql(CLI::App& command, const global_options& globals, int& exit_status) {
  auto options = std::make_shared<print_sql_options>();
  command.add_option("module", options->modules, "modules to print (dependencies are added)");
  command
      .add_option("--format", options->format,
                  "plain: one script for psql (default); dbmate: one file per migration")
      ->option_text("plain|dbmate")
      ->check(CLI::IsMember({"plain", "dbmate"}));
  command
      .add_option("--out", options->out,
                  "plain: the file to write (default stdout); dbmate: the directory to write")
      ->option_text("PATH");
  add_migrations_dir_option(command, *options);
  command.callback([options, &globals, &exit_status] {
    context ctx{globals};
    exit_status = run_print_sql(*options, ctx);
  });
}

}  // namespace pgkit::cli
