#pragma once
// The setup functions of all subcommands, one per file in cli/, registered in main.cpp.

#include "command.hpp"

namespace pgkit::cli {

void setup_complete(CLI::App& command, const global_options& globals, int& exit_status);
void setup_resolve(CLI::App& command, const global_options& globals, int& exit_status);
void setup_migrate(CLI::App& command, const global_options& globals, int& exit_status);
void setup_apply(CLI::App& command, const global_options& globals, int& exit_status);
void setup_print_sql(CLI::App& command, const global_options& globals, int& exit_status);
void setup_status(CLI::App& command, const global_options& globals, int& exit_status);
void setup_lint(CLI::App& command, const global_options& globals, int& exit_status);
void setup_new(CLI::App& command, const global_options& globals, int& exit_status);
void setup_rollback(CLI::App& command, const global_options& globals, int& exit_status);
void setup_listen(CLI::App& command, const global_options& globals, int& exit_status);
void setup_notify(CLI::App& command, const global_options& globals, int& exit_status);
void setup_session_purge(CLI::App& command, const global_options& globals, int& exit_status);
void setup_create(CLI::App& command, const global_options& globals, int& exit_status);
void setup_drop(CLI::App& command, const global_options& globals, int& exit_status);
void setup_wait(CLI::App& command, const global_options& globals, int& exit_status);
void setup_up(CLI::App& command, const global_options& globals, int& exit_status);
void setup_baseline(CLI::App& command, const global_options& globals, int& exit_status);
void setup_dump(CLI::App& command, const global_options& globals, int& exit_status);
void setup_diff(CLI::App& command, const global_options& globals, int& exit_status);
void setup_load(CLI::App& command, const global_options& globals, int& exit_status);
void setup_inspect(CLI::App& command, const global_options& globals, int& exit_status);
void setup_cache_gc(CLI::App& command, const global_options& globals, int& exit_status);
void setup_queue(CLI::App& command, const global_options& globals, int& exit_status);
void setup_queue_prune(CLI::App& command, const global_options& globals, int& exit_status);

}  // namespace pgkit::cli
