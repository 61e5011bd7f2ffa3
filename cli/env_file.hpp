#pragma once
// `--env-file FILE` and `./.env`: dotenv files, read as dbmate reads them.

#include <string>

namespace pgkit::cli {

/// Sets the variables of the dotenv file `path` that are not set already (a set variable, even
/// an empty one, always wins). With an empty `path`, reads `./.env` when it exists. Lines are
/// `KEY=VALUE` or `export KEY=VALUE`; values may be 'single-quoted' (taken as written),
/// "double-quoted" (with \n, \" and \\) or bare (a ` #` starts a comment); blank lines and
/// `#` lines are skipped. Throws config_error naming the file and line for anything else, and
/// when a named file cannot be read.
void load_env_file(const std::string& path);

}  // namespace pgkit::cli
