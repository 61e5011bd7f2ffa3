#include "progress_line.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace pgkit::cli {
namespace {

// Written whole and unbuffered, like every diagnostic (output.cpp).
void write_terminal(const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    auto written = ::write(STDERR_FILENO, text.data() + done, text.size() - done);
    if (written < 0 && errno == EINTR)
      continue;
    if (written <= 0)
      return;
    done += static_cast<std::size_t>(written);
  }
}

constexpr const char* k_erase = "\r\033[K";

}  // namespace

progress_line::progress_line(const output& out)
    : m_active{!out.quiet() && ::isatty(STDERR_FILENO) == 1} {
  if (m_active)
    m_ticker = std::thread{[this] { tick(); }};
}

progress_line::~progress_line() {
  if (!m_active)
    return;
  {
    std::lock_guard lock{m_mutex};
    m_done = true;
  }
  m_wake.notify_all();
  m_ticker.join();
  hide();
}

void progress_line::show(std::string text, std::chrono::steady_clock::time_point since) {
  if (!m_active)
    return;
  std::lock_guard lock{m_mutex};
  m_text = std::move(text);
  m_since = since;
  m_shown = true;
  redraw_locked();
}

void progress_line::hide() {
  if (!m_active)
    return;
  std::lock_guard lock{m_mutex};
  if (m_shown)
    write_terminal(k_erase);
  m_shown = false;
}

std::function<void(std::size_t, std::size_t)> progress_line::sweep_progress(std::string command) {
  if (!m_active)
    return {};
  auto started = std::chrono::steady_clock::now();
  return [this, command = std::move(command), started, batches = std::size_t{0}](
             std::size_t, std::size_t total) mutable {
    ++batches;
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    char rate[32];
    std::snprintf(rate, sizeof rate, "%.0f",
                  seconds > 0 ? static_cast<double>(total) / seconds : 0.0);
    show(command + ": " + std::to_string(batches) + (batches == 1 ? " batch, " : " batches, ") +
             std::to_string(total) + " rows, " + rate + " rows/s",
         started);
  };
}

void progress_line::redraw_locked() {
  double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - m_since).count();
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.1f s", elapsed);
  write_terminal(std::string{k_erase} + m_text + " (" + seconds + ")");
}

void progress_line::tick() {
  std::unique_lock lock{m_mutex};
  while (!m_done) {
    m_wake.wait_for(lock, std::chrono::milliseconds{250});
    if (!m_done && m_shown)
      redraw_locked();
  }
}

}  // namespace pgkit::cli
