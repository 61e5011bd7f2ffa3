#pragma once
// What every benchmark shares: running a helper script and finding the server to measure.

#include <cstdio>
#include <cstdlib>
#include <string>

namespace bench {

inline std::string run_script(const std::string& command) {
  std::string output;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    char buffer[512];
    while (std::fgets(buffer, sizeof buffer, pipe) != nullptr)
      output += buffer;
    ::pclose(pipe);
  }
  while (!output.empty() && output.back() == '\n')
    output.pop_back();
  return output;
}

inline std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

/// The server to measure: argv[1], else PGKIT_BENCH_URL (scripts/bench), else DATABASE_URL,
/// else a throwaway sandbox of its own, stopped on destruction.
class server {
 public:
  server(int argc, char** argv, const std::string& owner) {
    m_url = argc > 1 ? argv[1] : "";
    if (m_url.empty())
      m_url = env("PGKIT_BENCH_URL");
    if (m_url.empty())
      m_url = env("DATABASE_URL");
    if (m_url.empty()) {
      m_sandbox = run_script(std::string{PGKIT_SANDBOX_SCRIPT} + " start --owner " + owner);
      m_url = run_script(std::string{PGKIT_SANDBOX_SCRIPT} + " url " + m_sandbox);
    }
  }
  ~server() {
    if (!m_sandbox.empty())
      run_script(std::string{PGKIT_SANDBOX_SCRIPT} + " stop " + m_sandbox);
  }
  server(const server&) = delete;
  server& operator=(const server&) = delete;
  const std::string& url() const { return m_url; }

 private:
  std::string m_url;
  std::string m_sandbox;
};

}  // namespace bench
