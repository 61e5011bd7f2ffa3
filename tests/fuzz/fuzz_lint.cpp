// The lint front end: any text, read as a migration file (when it is one) and as plain SQL,
// gives findings with sane positions and known rule names, never a crash, a hang or an
// exception other than pgkit::error.

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "lint/lint.hpp"
#include "pgkit/error.hpp"
#include "pgkit/migration.hpp"

namespace {

void check(const pgkit::lint::linter& linter) {
  static const std::set<std::string_view> names = [] {
    std::set<std::string_view> all;
    for (const auto& rule : pgkit::lint::rules())
      all.insert(rule.name);
    return all;
  }();
  for (const auto& f : linter.findings()) {
    if (f.line < 1 || f.column < 1 || names.count(f.rule) == 0)
      __builtin_trap();  // the contract: 1-based positions, rules from the table
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text{reinterpret_cast<const char*>(data), size};
  pgkit::lint::options settings;
  settings.rules = pgkit::lint::select_rules({"all"}, {});
  // A live database where every table but "absent" exists, half of them large.
  settings.lookup = [](const std::string&,
                       const std::string& name) -> std::optional<pgkit::lint::table_stats> {
    if (name == "absent")
      return std::nullopt;
    return pgkit::lint::table_stats{"", name.size() % 2 == 0 ? 5000000 : 10, 8192};
  };
  pgkit::lint::linter linter{settings};
  linter.add({"fuzz.sql", text, 1, false, false});
  try {
    auto m = pgkit::parse_migration("fuzz", "20260101000000_fuzz.sql", text, "fuzz.sql");
    linter.add(
        {m.path, m.up_sql, m.up_line, m.up_transaction == pgkit::transaction_mode::inside, true});
    linter.add({m.path, m.down_sql, m.down_line,
                m.down_transaction == pgkit::transaction_mode::inside, true});
  } catch (const pgkit::error&) {
    // Not a migration file: linted as plain SQL above.
  }
  check(linter);
  return 0;
}
