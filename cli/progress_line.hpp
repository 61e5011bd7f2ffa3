#pragma once
// The one updating line of a long run (cache-gc, session-purge, apply) on a terminal: shown only
// when stderr is a TTY and the run is not --quiet, redrawn in place with the time elapsed, and
// erased before anything else is printed and when the run ends. Into a pipe or a file it
// writes nothing, so logs of cron runs hold only the summary.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "output.hpp"

namespace pgkit::cli {

class progress_line {
 public:
  /// Starts the line for `out`; inactive (every call does nothing) unless stderr is a terminal
  /// and `out` is not quiet.
  explicit progress_line(const output& out);
  /// Erases the line.
  ~progress_line();
  progress_line(const progress_line&) = delete;
  progress_line& operator=(const progress_line&) = delete;

  /// Returns true when the line is shown.
  bool active() const noexcept { return m_active; }
  /// Shows `text` followed by the time elapsed since `since`, redrawn about four times a second.
  void show(std::string text,
            std::chrono::steady_clock::time_point since = std::chrono::steady_clock::now());
  /// Erases the line until the next show().
  void hide();
  /// Returns a sweep_options::progress callback that shows batches, rows and the rate.
  std::function<void(std::size_t, std::size_t)> sweep_progress(std::string command);

 private:
  void redraw_locked();
  void tick();

  bool m_active;
  std::mutex m_mutex;
  std::condition_variable m_wake;
  bool m_done = false;
  bool m_shown = false;
  std::string m_text;
  std::chrono::steady_clock::time_point m_since;
  std::thread m_ticker;
};

}  // namespace pgkit::cli
