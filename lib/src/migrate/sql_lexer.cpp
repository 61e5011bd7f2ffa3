// Statement splitting as psql does it (src/fe_utils/psqlscan.l): a `;` ends a statement only
// outside strings, comments, parentheses and the BEGIN ... END body of a CREATE FUNCTION or
// CREATE PROCEDURE.

#include "migrate/sql_lexer.hpp"

#include <array>

namespace pgkit::detail {
namespace {

bool is_ident_start(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

bool is_ident_continue(unsigned char c) {
  return is_ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string upper(std::string_view word) {
  std::string out{word};
  for (auto& c : out) {
    if (c >= 'a' && c <= 'z')
      c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

// Returns the length of a dollar-quote delimiter ($$ or $tag$) at `at`, or 0.
std::size_t dollar_delimiter(std::string_view sql, std::size_t at) {
  std::size_t i = at + 1;
  if (i < sql.size() && sql[i] == '$')
    return 2;
  if (i >= sql.size() || !is_ident_start(static_cast<unsigned char>(sql[i])))
    return 0;
  while (i < sql.size() && sql[i] != '$') {
    if (!is_ident_continue(static_cast<unsigned char>(sql[i])))
      return 0;
    ++i;
  }
  return i < sql.size() ? i - at + 1 : 0;
}

// What a statement has seen so far, for psql's CREATE FUNCTION / PROCEDURE body heuristic.
struct statement_state {
  std::size_t word_count = 0;
  std::array<char, 4> shape{};  // first letters of CREATE, OR, REPLACE, FUNCTION, PROCEDURE
  int paren_depth = 0;
  int begin_depth = 0;
  bool only_words = true;

  bool defines_routine() const {
    return shape[0] == 'C' &&
           (shape[1] == 'F' || shape[1] == 'P' ||
            (shape[1] == 'O' && shape[2] == 'R' && (shape[3] == 'F' || shape[3] == 'P')));
  }

  void word(const std::string& w) {
    if (word_count < shape.size() &&
        (w == "CREATE" || w == "OR" || w == "REPLACE" || w == "FUNCTION" || w == "PROCEDURE"))
      shape[word_count] = w[0];
    ++word_count;
    if (!defines_routine() || paren_depth != 0)
      return;
    if (w == "BEGIN") {
      ++begin_depth;
    } else if (w == "CASE") {
      if (begin_depth >= 1)
        ++begin_depth;
    } else if (w == "END" && begin_depth > 0) {
      --begin_depth;
    }
  }
};

}  // namespace

std::vector<sql_statement> split_statements(std::string_view sql) {
  std::vector<sql_statement> statements;
  std::optional<sql_statement> current;
  statement_state state;
  std::size_t line = 1;
  std::size_t i = 0;
  const std::size_t n = sql.size();

  // Marks [token_begin, token_end) as part of the current statement.
  auto token = [&](std::size_t token_begin, std::size_t token_end, std::size_t token_line) {
    if (!current) {
      current = sql_statement{};
      current->begin = token_begin;
      current->line = token_line;
      state = statement_state{};
    }
    current->end = token_end;
  };
  auto not_a_word = [&] { state.only_words = false; };
  // Skips to just after `close`, counting lines; to the end when it never comes.
  auto skip_past = [&](std::string_view close) {
    auto found = sql.find(close, i);
    std::size_t stop = found == std::string_view::npos ? n : found + close.size();
    for (; i < stop; ++i) {
      if (sql[i] == '\n')
        ++line;
    }
  };

  while (i < n) {
    char c = sql[i];
    std::size_t start = i, start_line = line;
    if (is_space(c)) {
      if (c == '\n')
        ++line;
      ++i;
    } else if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
      while (i < n && sql[i] != '\n')
        ++i;
    } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      int depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql[i] == '/' && i + 1 < n && sql[i + 1] == '*') {
          ++depth;
          i += 2;
        } else if (sql[i] == '*' && i + 1 < n && sql[i + 1] == '/') {
          --depth;
          i += 2;
        } else {
          if (sql[i] == '\n')
            ++line;
          ++i;
        }
      }
    } else if (c == '\'' || c == '"' ||
               ((c == 'E' || c == 'e') && i + 1 < n && sql[i + 1] == '\'')) {
      // A string or a quoted identifier: a doubled quote stands for itself; in E'' strings a
      // backslash escapes the next byte.
      bool escapes = c == 'E' || c == 'e';
      char quote = escapes ? '\'' : c;
      i += escapes ? 2 : 1;
      while (i < n) {
        if (sql[i] == quote && i + 1 < n && sql[i + 1] == quote) {
          i += 2;
          continue;
        }
        if (sql[i] == quote) {
          ++i;
          break;
        }
        std::size_t step = escapes && sql[i] == '\\' && i + 1 < n ? 2 : 1;
        for (std::size_t k = 0; k < step; ++k) {
          if (sql[i + k] == '\n')
            ++line;
        }
        i += step;
      }
      token(start, i, start_line);
      not_a_word();
    } else if (c == '$' && dollar_delimiter(sql, i) > 0) {
      auto length = dollar_delimiter(sql, i);
      auto delimiter = sql.substr(i, length);
      i += length;
      skip_past(delimiter);
      token(start, i, start_line);
      not_a_word();
    } else if (is_ident_start(static_cast<unsigned char>(c))) {
      while (i < n && is_ident_continue(static_cast<unsigned char>(sql[i])))
        ++i;
      token(start, i, start_line);
      auto word = upper(sql.substr(start, i - start));
      if (state.only_words && current->leading_words.size() < 3)
        current->leading_words.push_back(word);
      state.word(word);
    } else if (c == ';' && state.paren_depth == 0 && state.begin_depth == 0) {
      ++i;
      if (current) {
        current->terminated = true;
        statements.push_back(std::move(*current));
        current.reset();
      }
    } else {
      ++i;
      token(start, i, start_line);
      not_a_word();
      if (c == '(')
        ++state.paren_depth;
      else if (c == ')' && state.paren_depth > 0)
        --state.paren_depth;
    }
    if (current && current->leading_words.size() >= 3)
      state.only_words = false;
  }
  if (current)
    statements.push_back(std::move(*current));
  return statements;
}

std::optional<std::string> transaction_control(const sql_statement& statement) {
  const auto& words = statement.leading_words;
  if (words.empty())
    return std::nullopt;
  auto second = words.size() > 1 ? words[1] : std::string{};
  auto third = words.size() > 2 ? words[2] : std::string{};
  const auto& first = words[0];
  if (first == "BEGIN" || first == "END" || first == "ABORT")
    return first;
  if (first == "START" && second == "TRANSACTION")
    return first + " " + second;
  if (first == "COMMIT")
    return second == "PREPARED" ? first + " " + second : first;
  if (first == "ROLLBACK") {
    bool noise = second == "WORK" || second == "TRANSACTION";
    if (second == "TO" || (noise && third == "TO"))
      return std::nullopt;  // ROLLBACK TO SAVEPOINT stays inside the transaction
    return second == "PREPARED" ? first + " " + second : first;
  }
  if (first == "PREPARE" && second == "TRANSACTION")
    return first + " " + second;
  return std::nullopt;
}

std::string with_final_semicolon(std::string_view sql) {
  auto statements = split_statements(sql);
  if (statements.empty() || statements.back().terminated)
    return std::string{sql};
  auto end = statements.back().end;
  return std::string{sql.substr(0, end)} + ";" + std::string{sql.substr(end)};
}

}  // namespace pgkit::detail
