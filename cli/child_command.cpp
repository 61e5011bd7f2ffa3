#include "child_command.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace pgkit::cli {

std::string child_outcome::describe() const {
  if (!failure.empty())
    return failure;
  if (signal != 0)
    return "was killed by signal " + std::to_string(signal);
  return "exited with status " + std::to_string(exit_status);
}

std::string command_text(const std::vector<std::string>& command) {
  std::string text;
  for (const auto& word : command)
    text += (text.empty() ? "" : " ") + word;
  return text;
}

child_outcome run_child_command(const std::vector<std::string>& command, std::string_view input,
                                const std::vector<std::pair<std::string, std::string>>& variables) {
  child_outcome outcome;
  std::vector<std::string> env_strings;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string_view pair = *entry;
    bool replaced = false;
    for (const auto& [name, value] : variables)
      replaced = replaced || pair.rfind(name + "=", 0) == 0;
    if (!replaced)
      env_strings.emplace_back(pair);
  }
  for (const auto& [name, value] : variables)
    env_strings.push_back(name + "=" + value);
  std::vector<char*> env;
  for (auto& entry : env_strings)
    env.push_back(entry.data());
  env.push_back(nullptr);
  std::vector<char*> args;
  for (const auto& word : command)
    args.push_back(const_cast<char*>(word.c_str()));
  args.push_back(nullptr);

  int pipe_ends[2];
  if (::pipe2(pipe_ends, O_CLOEXEC) != 0) {
    outcome.failure = std::string{"cannot create a pipe for the command: "} + std::strerror(errno);
    return outcome;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_ends[0], STDIN_FILENO);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  // The command gets the signal dispositions a shell would give it, not pgkit's.
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  // ... and no blocked signals (`queue work` blocks SIGINT and SIGTERM in its own threads).
  sigset_t unblocked;
  sigemptyset(&unblocked);
  posix_spawnattr_setsigmask(&attributes, &unblocked);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t child = 0;
  int spawn_error = ::posix_spawnp(&child, args[0], &actions, &attributes, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  ::close(pipe_ends[0]);
  if (spawn_error != 0) {
    ::close(pipe_ends[1]);
    outcome.failure = "cannot run '" + command_text(command) + "': " + std::strerror(spawn_error);
    return outcome;
  }
  // A command that does not read its stdin only causes an EPIPE here (SIGPIPE is ignored by the
  // commands that run children).
  while (!input.empty()) {
    auto written = ::write(pipe_ends[1], input.data(), input.size());
    if (written < 0 && errno == EINTR)
      continue;
    if (written <= 0)
      break;
    input.remove_prefix(static_cast<std::size_t>(written));
  }
  ::close(pipe_ends[1]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) {
      outcome.failure = std::string{"cannot wait for the command: "} + std::strerror(errno);
      return outcome;
    }
  }
  if (WIFEXITED(status))
    outcome.exit_status = WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    outcome.signal = WTERMSIG(status);
  return outcome;
}

}  // namespace pgkit::cli
