#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "harness.hpp"
#include "migrate/builtin.hpp"

namespace fs = std::filesystem;

TEST_CASE("pgkit::builtin_sql_files") {
  SUBCASE("every file under migrations/ is embedded byte for byte, in order") {
    fs::path root = fs::path{pgkit_test::source_dir()} / "migrations";
    std::vector<std::string> on_disk;
    for (const auto& module : fs::directory_iterator{root}) {
      if (!module.is_directory())
        continue;
      for (const auto& file : fs::directory_iterator{module.path()}) {
        if (file.path().extension() == ".sql") {
          on_disk.push_back(module.path().filename().string() + "/" +
                            file.path().filename().string());
        }
      }
    }
    std::sort(on_disk.begin(), on_disk.end());

    auto embedded = pgkit::builtin_sql_files();
    REQUIRE(embedded.size() == on_disk.size());
    for (std::size_t i = 0; i < embedded.size(); ++i) {
      CHECK(embedded[i].module + "/" + embedded[i].file_name == on_disk[i]);
      std::ifstream in{root / on_disk[i], std::ios::binary};
      std::stringstream text;
      text << in.rdbuf();
      CHECK(embedded[i].text == text.str());
    }
  }
  SUBCASE("the core module is built in") {
    auto names = pgkit::builtin_module_names();
    CHECK(std::find(names.begin(), names.end(), "core") != names.end());
    CHECK(std::is_sorted(names.begin(), names.end()));
  }
}
