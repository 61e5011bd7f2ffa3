// Configuration files: reading one (bounded, regular files only), the one search for a file when
// none is named, and the resolution of a command's connection (--addr, DATABASE_URL, the file,
// libpq's defaults).

#include "config/config_file.hpp"

#include <filesystem>
#include <fstream>

#include "core/suggest.hpp"
#include "pgkit/error.hpp"

namespace pgkit {

config_file load_config(const std::string& path, const env_lookup& env) {
  // Checked before opening: opening a FIFO blocks, and /dev/zero never ends.
  std::error_code status_error;
  auto status = std::filesystem::status(path, status_error);
  if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status)) {
    throw config_error("cannot read the configuration file " + path +
                           ": it is not a regular file (a directory, a device or a pipe)",
                       "pass --config FILE with an existing database.toml");
  }
  std::ifstream in{path, std::ios::binary};
  if (!in) {
    throw config_error(
        "cannot read the configuration file " + path + ": " +
            (std::filesystem::exists(path) ? "permission denied or not a file" : "no such file"),
        "pass --config FILE with an existing database.toml");
  }
  std::string text(max_config_file_bytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > max_config_file_bytes) {
    throw config_error("the configuration file " + path + " is larger than " +
                           std::to_string(max_config_file_bytes / 1024 / 1024) + " MiB",
                       "a database.toml holds connection settings only; pass the right --config");
  }
  return parse_config(text, path, env);
}

std::vector<std::string> default_config_files() {
  return {"database.toml", "config/database.toml"};
}

namespace detail {

std::optional<std::string> find_config_file(const std::string& explicit_path,
                                            const std::vector<std::string>& search) {
  if (!explicit_path.empty())
    return explicit_path;
  for (const auto& candidate : search) {
    std::error_code ignored;
    if (std::filesystem::exists(candidate, ignored))
      return candidate;
  }
  return std::nullopt;
}

}  // namespace detail

connection_config resolve_connection(const connection_request& request, const env_lookup& env) {
  if (!request.addr.empty())
    return config_from_url(request.addr, "--addr");
  if (!request.database_url.empty())
    return config_from_url(request.database_url, "DATABASE_URL");
  if (auto file = detail::find_config_file(request.config_file, request.search))
    return load_config(*file, env).connection(request.connection);
  if (request.connection != "main") {
    throw config_error("connection '" + request.connection +
                           "' was asked for, but there is no configuration file (looked for " +
                           join_words(request.search) + ")",
                       "create database.toml with a [connections." + request.connection +
                           "] table, or pass --config FILE");
  }
  auto config = config_from_url("", "libpq defaults");
  return config;
}

std::string resolve_schema(const std::string& requested, const connection_config& config) {
  if (!requested.empty())
    return requested;
  if (!config.schema.empty())
    return config.schema;
  return "pgkit";
}

}  // namespace pgkit
