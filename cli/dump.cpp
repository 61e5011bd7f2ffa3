// `pgkit dump [--schema-file FILE]`: the database's schema and pgkit's bookkeeping as SQL, to
// FILE (default db/schema.sql, as dbmate), for review in version control and for `pgkit load`.

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "commands.hpp"
#include "database_common.hpp"
#include "pgkit/database.hpp"
#include "pgkit/error.hpp"

namespace pgkit::cli {

namespace fs = std::filesystem;

// Refuses a path that exists and is not a regular file (a directory, a FIFO, a device): a
// schema file is replaced whole, and a FIFO would block.
void check_schema_file(const std::string& path) {
  std::error_code ignored;
  auto status = fs::status(path, ignored);
  if (!fs::exists(status) || fs::is_regular_file(status))
    return;
  throw usage_error("--schema-file " + path + " is " +
                        (fs::is_directory(status) ? "a directory" : "not a regular file") +
                        ", not a file pgkit can replace",
                    "name a file, such as db/schema.sql");
}

std::string schema_file_path(const std::string& given, context& ctx) {
  if (!given.empty())
    return given;
  const auto& configured = ctx.connection().schema_file;
  return configured.empty() ? k_default_schema_file : configured;
}

std::size_t write_schema(const std::string& path, context& ctx) {
  check_schema_file(path);
  auto parent = fs::path{path}.parent_path();
  std::error_code failed;
  if (!parent.empty())
    fs::create_directories(parent, failed);
  // The new text goes to a temporary file beside FILE, renamed over it once complete: a failed
  // dump leaves the old file as it was. Opened before connecting, so that an unwritable place
  // is found before any work.
  auto temporary = path + ".pgkit-tmp";
  std::ofstream out{temporary, std::ios::binary | std::ios::trunc};
  if (failed || !out) {
    throw usage_error("cannot write --schema-file " + path + ": " +
                          (failed ? failed.message() : std::string{std::strerror(errno)}),
                      "check that its directory exists and is writable, or name another file");
  }
  std::string text;
  try {
    text = dump_schema(*ctx.connect(), ctx.schema());
  } catch (...) {
    out.close();
    std::remove(temporary.c_str());
    throw;
  }
  out << text;
  out.close();
  if (!out || std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    throw error(error_kind::internal, "cannot write --schema-file " + path,
                "check the free space and permissions of its directory");
  }
  ctx.out().report("wrote the schema to " + path);
  return text.size();
}

void setup_dump(CLI::App& command, const global_options& globals, int& exit_status) {
  auto given = std::make_shared<std::string>();
  command
      .add_option("--schema-file", *given,
                  "file to write, default the schema_file key, else db/schema.sql")
      ->option_text("FILE");
  command.callback([given, &globals, &exit_status] {
    context ctx{globals};
    auto path = schema_file_path(*given, ctx);
    auto bytes = write_schema(path, ctx);
    if (ctx.out().json())
      ctx.out().document({{"schema_file", path}, {"bytes", bytes}});
    exit_status = exit_ok;
  });
}

}  // namespace pgkit::cli
