#pragma once
/// The built-in schema modules (core, auth, cache, session), embedded at build time from
/// migrations/<module>/*.sql.

#include <string>
#include <vector>

namespace pgkit {

/// One embedded migration file.
struct builtin_sql_file {
  std::string module;     ///< the module's name, the directory under migrations/
  std::string file_name;  ///< e.g. "20240101000000_core_schema.sql"
  std::string text;       ///< the file's content, byte for byte
};

/// Returns every built-in migration file, sorted by module and then by file name.
std::vector<builtin_sql_file> builtin_sql_files();

/// Returns the names of the built-in modules, sorted.
std::vector<std::string> builtin_module_names();

}  // namespace pgkit
