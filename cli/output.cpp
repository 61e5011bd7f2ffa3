#include "output.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

#include <fmt/format.h>

#include "pgkit/redact.hpp"

namespace pgkit::cli {
namespace {

// Diagnostics are unbuffered and written whole, so that lines of a concurrent child (listen
// --exec) or of the library's progress callbacks never interleave inside one of ours.
void write_stderr(const std::string& text) {
  std::string_view rest = text;
  while (!rest.empty()) {
    auto written = ::write(STDERR_FILENO, rest.data(), rest.size());
    if (written < 0 && errno == EINTR)
      continue;
    if (written <= 0)
      return;  // nowhere left to complain to
    rest.remove_prefix(static_cast<std::size_t>(written));
  }
}

void diagnostic(std::string_view label, std::string_view message, std::string_view hint) {
  std::string text = "pgkit: " + std::string{label} + ": " + redact_secrets(message) + '\n';
  if (!hint.empty())
    text += "pgkit: hint: " + redact_secrets(hint) + '\n';
  write_stderr(text);
}

[[noreturn]] void throw_stdout_failure(int error_number) {
  if (error_number == EPIPE)
    throw stdout_closed();
  throw error(error_kind::internal,
              std::string{"cannot write to standard output: "} + std::strerror(error_number),
              "check that the disk or pipe stdout goes to can take the output");
}

}  // namespace

stdout_closed::stdout_closed()
    : error(error_kind::internal, "cannot write to standard output: the reader went away") {}

void print_error(std::string_view message, std::string_view hint) {
  diagnostic("error", message, hint);
}

std::string duration_text(std::chrono::nanoseconds elapsed) {
  return fmt::format("{:.2f} s", duration_seconds(elapsed));
}

double duration_seconds(std::chrono::nanoseconds elapsed) {
  return std::chrono::duration<double>(elapsed).count();
}

void write_stdout(std::string_view text) {
  // Whatever went through std::cout first must come out first.
  check_stdout();
  while (!text.empty()) {
    auto written = ::write(STDOUT_FILENO, text.data(), text.size());
    if (written < 0 && errno == EINTR)
      continue;
    if (written < 0)
      throw_stdout_failure(errno);
    if (written == 0)
      throw_stdout_failure(ENOSPC);
    text.remove_prefix(static_cast<std::size_t>(written));
  }
}

void check_stdout() {
  errno = 0;
  std::cout.flush();
  bool failed = !std::cout || std::fflush(stdout) != 0 || std::ferror(stdout) != 0;
  if (failed)
    throw_stdout_failure(errno != 0 ? errno : EIO);
}

output::output(const global_options& globals)
    : m_json{globals.json}, m_quiet{globals.quiet}, m_verbose{globals.verbose} {}

void output::data(std::string_view text) const {
  write_stdout(text);
}

void output::document(const nlohmann::ordered_json& document) const {
  // A database in SQL_ASCII can hand over bytes that are not UTF-8: replace, never fail.
  write_stdout(document.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + '\n');
}

void output::json_line(const nlohmann::ordered_json& line) const {
  write_stdout(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + '\n');
}

void output::report(std::string_view line) const {
  if (!m_quiet)
    write_stderr(redact_secrets(line) + '\n');
}

void output::detail(std::string_view line) const {
  if (m_verbose)
    write_stderr("pgkit: " + redact_secrets(line) + '\n');
}

void output::note(std::string_view message) const {
  if (!m_quiet)
    diagnostic("note", message, {});
}

void output::warning(std::string_view message, std::string_view hint) const {
  diagnostic("warning", message, hint);
}

}  // namespace pgkit::cli
