// `pgkit diff [MODULE...]`: drift. The migration files are applied to a throwaway database
// (--dev-url, or one created and dropped on the same server) and its schema compared with the
// live database's, object by object; exit 3 when they differ.

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <memory>
#include <optional>

#include "commands.hpp"
#include "migration_common.hpp"
#include "pgkit/connection.hpp"
#include "pgkit/database.hpp"
#include "pgkit/error.hpp"
#include "pgkit/migration.hpp"

namespace pgkit::cli {
namespace {

struct diff_options : migration_cli_options {
  std::string dev_url;
};

const char* change_name(schema_change change) {
  switch (change) {
    case schema_change::only_in_database:
      return "only_in_database";
    case schema_change::only_in_migrations:
      return "only_in_migrations";
    case schema_change::differs:
      break;
  }
  return "differs";
}

// Where two long lines differ: from two words before the first differing word to the end of
// the last, "..." marking what was left out.
std::pair<std::string, std::string> differing_words(const std::string& a, const std::string& b) {
  if (std::max(a.size(), b.size()) <= 80)
    return {a, b};
  std::size_t prefix = 0;
  while (prefix < a.size() && prefix < b.size() && a[prefix] == b[prefix])
    ++prefix;
  std::size_t suffix = 0;
  while (suffix < a.size() - prefix && suffix < b.size() - prefix &&
         a[a.size() - 1 - suffix] == b[b.size() - 1 - suffix])
    ++suffix;
  // Two words before the difference stay, for context.
  for (int word = 0; word < 3 && prefix > 0; ++word) {
    if (word > 0)
      --prefix;
    while (prefix > 0 && a[prefix - 1] != ' ')
      --prefix;
  }
  auto cut = [prefix, suffix](const std::string& text) {
    auto end = text.size() - suffix;
    while (end < text.size() && text[end] != ' ')
      ++end;
    auto piece = text.substr(prefix, end - prefix);
    if (piece.size() > 100)
      piece = piece.substr(0, 97) + "...";
    return (prefix > 0 ? "..." : "") + piece + (end < text.size() ? "..." : "");
  };
  return {cut(a), cut(b)};
}

// The first line where `a` and `b` differ, indentation removed, narrowed to what differs.
std::pair<std::string, std::string> first_difference(const std::string& a, const std::string& b) {
  std::size_t start = 0;
  while (start < a.size() && start < b.size()) {
    auto end_a = a.find('\n', start);
    auto end_b = b.find('\n', start);
    if (end_a != end_b || a.compare(start, end_a - start, b, start, end_b - start) != 0)
      break;
    start = end_a == std::string::npos ? std::max(a.size(), b.size()) : end_a + 1;
  }
  auto line = [start](const std::string& text) {
    auto piece = start < text.size() ? text.substr(start, text.find('\n', start) - start) : "";
    auto first = piece.find_first_not_of(' ');
    return first == std::string::npos ? std::string{} : piece.substr(first);
  };
  return differing_words(line(a), line(b));
}

std::string describe(const schema_difference& d) {
  switch (d.change) {
    case schema_change::only_in_database:
      return "+ " + d.kind + " " + d.name + " (only in the database)";
    case schema_change::only_in_migrations:
      return "- " + d.kind + " " + d.name + " (only in the migrations)";
    case schema_change::differs:
      break;
  }
  auto [database, migrations] = first_difference(d.database, d.migrations);
  return "~ " + d.kind + " " + d.name + " (differs: the database has \"" + database +
         "\", the migrations \"" + migrations + "\")";
}

// Holds SIGINT and SIGTERM back while it exists: from before the throwaway database is created
// until it is dropped, an interrupt either reaches the interrupt_guard (which cancels the run)
// or waits, so the database is always dropped; a signal still pending then ends pgkit as usual.
class signals_held {
 public:
  signals_held() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, &m_old_mask);
  }
  ~signals_held() { pthread_sigmask(SIG_SETMASK, &m_old_mask, nullptr); }
  signals_held(const signals_held&) = delete;
  signals_held& operator=(const signals_held&) = delete;

 private:
  sigset_t m_old_mask{};
};

int run_diff(const diff_options& options, context& ctx) {
  const auto& out = ctx.out();
  auto settings = library_options(ctx, options);
  settings.progress = nullptr;  // the throwaway database's apply is not the user's news
  auto live = ctx.connect(options.wait);
  if (settings.modules.empty()) {
    for (const auto& module : read_migration_status(*live, settings).modules)
      settings.modules.push_back(module.module);
    if (settings.modules.empty()) {
      throw usage_error("no module is applied in schema " + settings.schema +
                            " of this database, so there is nothing to compare",
                        "name the modules to compare: pgkit diff MODULE...");
    }
  }
  signals_held held;
  std::optional<throwaway_database> scratch;
  connection_config target;
  if (!options.dev_url.empty()) {
    target = config_from_url(options.dev_url, "--dev-url");
  } else {
    scratch.emplace(ctx.connection());
    target = scratch->config();
    out.detail("building the migrations in the throwaway database " + scratch->name());
  }
  schema_diff result;
  {
    auto built = pgkit::connect(target);
    interrupt_guard guard{*built};
    settings.interrupted = guard.interrupted();
    apply_modules(*built, settings);
    result = diff_schema(*live, *built, settings.schema);
  }
  if (!result.differences.empty()) {
    auto pending = read_migration_status(*live, settings).pending_count();
    if (pending > 0) {
      out.warning(std::to_string(pending) + " migration" + (pending == 1 ? " is" : "s are") +
                      " not applied to the database yet; what they create shows as only in the "
                      "migrations",
                  "apply them first (pgkit apply), or see pgkit status");
    }
  }
  if (out.json()) {
    auto list = nlohmann::ordered_json::array();
    for (const auto& d : result.differences) {
      list.push_back({{"change", change_name(d.change)},
                      {"kind", d.kind},
                      {"name", d.name},
                      {"database", d.database.empty() ? nlohmann::ordered_json(nullptr)
                                                      : nlohmann::ordered_json(d.database)},
                      {"migrations", d.migrations.empty() ? nlohmann::ordered_json(nullptr)
                                                          : nlohmann::ordered_json(d.migrations)}});
    }
    out.document({{"schema", settings.schema},
                  {"modules", settings.modules},
                  {"schemas", result.schemas},
                  {"drift", !result.differences.empty()},
                  {"differences", list}});
  } else {
    for (const auto& d : result.differences)
      out.data(describe(d) + "\n");
  }
  std::string compared;
  for (const auto& name : result.schemas)
    compared += (compared.empty() ? "" : ", ") + name;
  if (result.differences.empty()) {
    out.report("no drift: the database matches the migrations (schemas " + compared + ")");
    return exit_ok;
  }
  out.report(std::to_string(result.differences.size()) + " difference" +
             (result.differences.size() == 1 ? "" : "s") +
             " between the database and its migrations (schemas " + compared + ")");
  return exit_check_failed;
}

}  // namespace

void setup_diff(CLI::App& command, const global_options& globals, int& exit_status) {
  auto options = std::make_shared<diff_options>();
  command.add_option("module", options->modules,
                     "modules to compare (dependencies are added), default every applied one");
  add_migrations_dir_option(command, *options);
  command
      .add_option("--dev-url", options->dev_url,
                  "database to build the migrations in, instead of a throwaway one pgkit "
                  "creates and drops")
      ->option_text("URL");
  add_wait_option(command, *options);
  command.callback([options, &globals, &exit_status] {
    context ctx{globals};
    exit_status = run_diff(*options, ctx);
  });
}

}  // namespace pgkit::cli
