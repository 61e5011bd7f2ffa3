#pragma once
// The one way the CLI prints. The rule (README, pgkit(1)): stdout carries data only (SQL, the
// status and __resolve reports, notifications, --json documents); everything that tells what a
// command did (summaries, progress), warnings, notes and errors go to stderr. --quiet silences
// summaries, progress, notes and status's table; data that was asked for (SQL, --json,
// notifications) and warnings and errors still print. A failed or short write to stdout throws
// (exit 1).

#include <chrono>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "pgkit/error.hpp"

namespace pgkit::cli {

/// Prints `pgkit: error: MESSAGE` and, when there is one, `pgkit: hint: HINT` on stderr, with
/// secrets redacted. For main's error mapping; commands throw instead.
void print_error(std::string_view message, std::string_view hint = {});

/// Returns `elapsed` as every command shows a duration to a person: "1.23 s".
std::string duration_text(std::chrono::nanoseconds elapsed);

/// Returns `elapsed` as every JSON document carries a duration: seconds, a number.
double duration_seconds(std::chrono::nanoseconds elapsed);

/// Thrown when the reader of stdout went away (EPIPE; SIGPIPE is ignored only by listen, which
/// then ends normally). Any other failed write is a plain pgkit::error.
class stdout_closed : public error {
 public:
  stdout_closed();
};

/// Writes `text` to stdout, all of it. Throws stdout_closed when the reader went away and
/// pgkit::error (exit 1) when stdout cannot take it (a full disk).
void write_stdout(std::string_view text);

/// Flushes what CLI11 or a library wrote through std::cout and throws like write_stdout when
/// that failed. main calls it once at the end of every run.
void check_stdout();

/// How one run prints, decided once from the global options.
class output {
 public:
  explicit output(const global_options& globals);

  /// Returns true with --json: the command prints one document (JSON lines for listen).
  bool json() const noexcept { return m_json; }
  /// Returns true with --quiet.
  bool quiet() const noexcept { return m_quiet; }
  /// Returns true with --verbose.
  bool verbose() const noexcept { return m_verbose; }

  /// Writes data (SQL, a report line, a notification) to stdout; throws when it cannot.
  void data(std::string_view text) const;
  /// Writes the run's one JSON document to stdout, indented by two spaces; throws when it cannot.
  void document(const nlohmann::ordered_json& document) const;
  /// Writes one compact JSON line to stdout (listen --json); throws when it cannot.
  void json_line(const nlohmann::ordered_json& line) const;

  /// Writes a summary or progress line on stderr, unless --quiet.
  void report(std::string_view line) const;
  /// Writes a detail line on stderr, only with --verbose.
  void detail(std::string_view line) const;
  /// Writes `pgkit: note: MESSAGE` on stderr, unless --quiet.
  void note(std::string_view message) const;
  /// Writes `pgkit: warning: MESSAGE` (and `pgkit: hint: HINT`) on stderr, always.
  void warning(std::string_view message, std::string_view hint = {}) const;

 private:
  bool m_json;
  bool m_quiet;
  bool m_verbose;
};

}  // namespace pgkit::cli
