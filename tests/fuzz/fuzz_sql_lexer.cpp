// SQL lexer (lib/src/migrate/sql_lexer.hpp): any bytes split into statements whose offsets lie
// inside the text, in order, never overlapping; with_final_semicolon() leaves the statements
// where they were, as many as before.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "migrate/sql_lexer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view sql{reinterpret_cast<const char*>(data), size};
  auto statements = pgkit::detail::split_statements(sql);
  std::size_t previous_end = 0;
  for (std::size_t i = 0; i < statements.size(); ++i) {
    const auto& statement = statements[i];
    if (statement.begin < previous_end || statement.end < statement.begin ||
        statement.end > sql.size() || statement.leading_words.size() > 3 ||
        (!statement.terminated && i + 1 != statements.size())) {
      __builtin_trap();
    }
    pgkit::detail::transaction_control(statement);
    previous_end = statement.end;
  }
  auto terminated = pgkit::detail::with_final_semicolon(sql);
  auto again = pgkit::detail::split_statements(terminated);
  // (An unterminated string or comment swallows the added ';', so only the statements' number
  // and starts are compared, not whether the last one is now terminated.)
  if (again.size() != statements.size())
    __builtin_trap();
  for (std::size_t i = 0; i < again.size(); ++i) {
    if (again[i].begin != statements[i].begin)
      __builtin_trap();
  }
  return 0;
}
