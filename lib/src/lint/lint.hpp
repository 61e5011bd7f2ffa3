#pragma once
// The migration linter behind `pgkit lint` (docs/lint.md): each statement of a migration
// section is parsed by PostgreSQL's own grammar (libpg_query) and checked by rules named and
// meant as squawk's, plus what only pgkit knows: whether a section runs in a transaction,
// that the engine sets lock_timeout, which tables the same run creates, and (through a
// lookup the caller supplies) how large a table is in the live database. Talks to no server.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace pgkit::lint {

/// How serious a finding is; `--fail-on` compares against it.
enum class level { info, warning, error };

/// Returns "info", "warning" or "error".
std::string_view level_name(level severity) noexcept;

/// A table of the live database, as pg_class estimates it.
struct table_stats {
  std::string name;                ///< as the migration spells it (schema-qualified if it is)
  std::int64_t rows_estimate = 0;  ///< pg_class.reltuples, 0 when never analyzed
  std::int64_t bytes = 0;          ///< pg_total_relation_size
};

/// One finding: where, which rule, and what to do about it.
struct finding {
  std::string file;        ///< the path given or read
  std::size_t line = 1;    ///< 1-based line of the offending element in the file
  std::size_t column = 1;  ///< 1-based column (in characters) of that element
  std::string rule;        ///< squawk's rule name, or `unparsed`
  level severity = level::warning;
  std::string message;               ///< what is wrong and what it blocks
  std::string help;                  ///< the safe rewrite
  std::string statement;             ///< the statement's first line
  std::optional<table_stats> table;  ///< the table, where known from a connection
};

/// One section of SQL to lint (an up or down section of a migration, or a plain SQL file).
struct section {
  std::string file;            ///< path shown in findings
  std::string sql;             ///< the section's text
  std::size_t first_line = 1;  ///< the file's line on which `sql` starts
  bool transactional = true;   ///< runs inside one transaction (dbmate's transaction:false: no)
  /// Run by pgkit's migration engine, which sets lock_timeout around every migration; a plain
  /// SQL file is not.
  bool engine_run = true;
};

/// One rule: its name, whether squawk enables it by default, and its level.
struct rule_info {
  std::string_view name;
  level severity;
  bool enabled_by_default;
};

/// Returns every rule pgkit knows, `unparsed` included, in the order docs/lint.md lists them.
const std::vector<rule_info>& rules();

/// Returns the rules enabled by default with `include` added and `exclude` removed; `all`
/// (every rule) is applied before the names, so `--exclude all --include X` is X alone.
/// `prefer-timestamptz` is accepted for `prefer-timestamp-tz`. Throws
/// pgkit::usage_error naming an unknown rule and suggesting the nearest one.
std::set<std::string> select_rules(const std::vector<std::string>& include,
                                   const std::vector<std::string>& exclude);

/// Looks a table up in the live database; std::nullopt when the database has no such table.
using table_lookup =
    std::function<std::optional<table_stats>(const std::string& schema, const std::string& name)>;

/// What a lint run is told.
struct options {
  int pg_version = 13;                                 ///< the server major the migrations target
  std::set<std::string> rules = select_rules({}, {});  ///< the enabled rules
  std::int64_t large_table_rows = 1000000;             ///< lock hazards at or above it are errors
  table_lookup lookup;                                 ///< set when a connection is available
};

/// Lints sections in run order, remembering the tables earlier sections created.
class linter {
 public:
  explicit linter(options settings);
  ~linter();
  linter(const linter&) = delete;
  linter& operator=(const linter&) = delete;

  /// Lints one section, appending its findings (sorted by position) to findings().
  void add(const section& part);
  /// Counts one more file (a migration's sections count once).
  void count_file() noexcept { ++m_files; }

  /// Returns the findings so far.
  const std::vector<finding>& findings() const noexcept { return m_findings; }
  /// Returns how many files were counted.
  std::size_t files() const noexcept { return m_files; }
  /// Returns how many statements were read.
  std::size_t statements() const noexcept { return m_statements; }

 private:
  options m_options;
  std::set<std::string> m_created;  ///< tables created earlier in this run
  std::vector<finding> m_findings;
  std::size_t m_files = 0;
  std::size_t m_statements = 0;
};

}  // namespace pgkit::lint
