// `pgkit load [--schema-file FILE]`: what `pgkit dump` wrote, into an empty database, in one
// transaction.

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "commands.hpp"
#include "database_common.hpp"
#include "pgkit/database.hpp"
#include "pgkit/error.hpp"

namespace pgkit::cli {
namespace {

std::string read_schema_file(const std::string& path) {
  std::error_code ignored;
  if (!std::filesystem::is_regular_file(path, ignored)) {
    throw usage_error(
        "--schema-file " + path + " is " +
            (std::filesystem::exists(path, ignored) ? "not a regular file" : "missing"),
        "name the file pgkit dump wrote (default db/schema.sql)");
  }
  std::ifstream in{path, std::ios::binary};
  std::ostringstream text;
  text << in.rdbuf();
  if (!in)
    throw usage_error("cannot read --schema-file " + path, "check its permissions");
  return text.str();
}

}  // namespace

void setup_load(CLI::App& command, const global_options& globals, int& exit_status) {
  auto given = std::make_shared<std::string>();
  command
      .add_option("--schema-file", *given,
                  "file to load, default the schema_file key, else db/schema.sql")
      ->option_text("FILE");
  command.callback([given, &globals, &exit_status] {
    context ctx{globals};
    auto path = schema_file_path(*given, ctx);
    auto sql = read_schema_file(path);
    load_schema(*ctx.connect(), sql);
    ctx.out().report("loaded " + path);
    exit_status = exit_ok;
  });
}

}  // namespace pgkit::cli
