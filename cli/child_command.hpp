#pragma once
// Running a user's command for one item (a notification for `listen --exec`, a job for
// `queue work --exec`): the item's bytes on its stdin, a few PGKIT_* variables in its
// environment, the signal dispositions a shell would give it, waited for.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgkit::cli {

/// How a command run by run_child_command ended.
struct child_outcome {
  std::string failure;  ///< why it could not be started or waited for; empty when it ran
  int exit_status = 0;  ///< its exit status when it exited
  int signal = 0;       ///< the signal that killed it, or 0

  /// Returns true when it ran and exited with status 0.
  bool succeeded() const noexcept { return failure.empty() && signal == 0 && exit_status == 0; }
  /// Says how it ended ("exited with status 3", "was killed by signal 9", the failure).
  std::string describe() const;
};

/// Runs `command` (argv[0] looked up in PATH) with `input` on its stdin and `variables` set in
/// its environment (replacing any inherited ones of the same names), and waits for it. Never
/// throws for the command's failures: they are in the outcome.
child_outcome run_child_command(const std::vector<std::string>& command, std::string_view input,
                                const std::vector<std::pair<std::string, std::string>>& variables);

/// Returns the command's words joined by spaces, for messages.
std::string command_text(const std::vector<std::string>& command);

}  // namespace pgkit::cli
