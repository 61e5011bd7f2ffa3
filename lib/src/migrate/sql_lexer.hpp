#pragma once
// A small lexer for PostgreSQL's SQL, just enough to split a migration section into its
// top-level statements the way psql does: it knows single-quoted and E'' strings, $tag$
// bodies, "identifiers", nested /* */ and -- comments, parentheses, and BEGIN ATOMIC ... END
// (and CASE ... END) bodies. It never throws and accepts arbitrary bytes; an unterminated
// string or comment simply runs to the end of the text.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgkit::detail {

/// One top-level statement of a section.
struct sql_statement {
  std::size_t begin = 0;    ///< byte offset of its first token (leading comments skipped)
  std::size_t end = 0;      ///< byte offset just after its last token, before any `;`
  std::size_t line = 1;     ///< 1-based line of `begin` within the section
  bool terminated = false;  ///< whether a `;` ends it (false only for the last statement)
  /// Its first words (keywords or identifiers, upper-cased), at most three, up to the first
  /// token that is not a word.
  std::vector<std::string> leading_words;
};

/// Splits `sql` into its top-level statements, in order; empty statements (`;;`) and
/// comment-only text yield nothing.
std::vector<sql_statement> split_statements(std::string_view sql);

/// Returns the transaction-control command that `statement` starts with ("BEGIN", "COMMIT",
/// "PREPARE TRANSACTION", ...), or std::nullopt when it starts with something else
/// (`ROLLBACK TO SAVEPOINT` and `PREPARE name` are not transaction control).
std::optional<std::string> transaction_control(const sql_statement& statement);

/// Returns `sql` with a `;` after its last statement when that statement has none (placed
/// before any trailing comment), so that more SQL can follow it.
std::string with_final_semicolon(std::string_view sql);

}  // namespace pgkit::detail
