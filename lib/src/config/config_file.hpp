#pragma once
// Configuration files (internal): the one search for the configuration file, which the CLI
// (--config and the default files), pgkit::start(name) and resolve_connection all go through.
// load_config, default_config_files and resolve_connection are declared in pgkit/config.hpp.

#include <optional>
#include <string>
#include <vector>

#include "pgkit/config.hpp"

namespace pgkit::detail {

/// Returns the configuration file to read: `explicit_path` when it is not empty, whether or not
/// it exists (a named file that is missing is an error when it is read, never skipped); else
/// the first of `search` that exists, relative to the current directory; else std::nullopt.
std::optional<std::string> find_config_file(
    const std::string& explicit_path,
    const std::vector<std::string>& search = default_config_files());

}  // namespace pgkit::detail
