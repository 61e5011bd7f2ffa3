#include "migrate/builtin.hpp"

#include "migrate/embedded_sql.hpp"

namespace pgkit {

std::vector<builtin_sql_file> builtin_sql_files() {
  std::vector<builtin_sql_file> files;
  for (const auto& file : detail::embedded_sql_files()) {
    files.push_back(
        {std::string{file.module}, std::string{file.file_name}, std::string{file.text}});
  }
  return files;
}

std::vector<std::string> builtin_module_names() {
  std::vector<std::string> names;
  for (const auto& file : detail::embedded_sql_files()) {
    if (names.empty() || names.back() != file.module)
      names.emplace_back(file.module);
  }
  return names;
}

}  // namespace pgkit
