#pragma once
// The built-in migrations, embedded at build time by cmake/embed_sql.cmake.

#include <string_view>
#include <vector>

namespace pgkit::detail {

/// One embedded file: migrations/<module>/<file_name>.
struct embedded_sql_file {
  std::string_view module;
  std::string_view file_name;
  std::string_view text;
};

/// Returns every embedded file, sorted by module and then by file name.
const std::vector<embedded_sql_file>& embedded_sql_files();

}  // namespace pgkit::detail
