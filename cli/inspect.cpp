// `pgkit inspect [--exact]`: one screen of what pgkit's tables hold in the schema — the applied
// version per module; per table its rows split the way an operator asks about them (live and
// expired cache entries and sessions, live and deleted users, unused and spent tokens), its
// size, dead tuples and last autovacuum; the backends listening on pgkit's channel; who holds
// the migration lock. Row counts are the planner's estimates (cheap on any table) unless
// --exact counts them.

#include <algorithm>
#include <iomanip>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "context.hpp"
#include "core/text.hpp"
#include "migrate/migration_sql.hpp"
#include "migration_common.hpp"
#include "pgkit/migration.hpp"
#include "pgkit/query.hpp"

namespace pgkit::cli {
namespace {

struct inspect_options : migration_cli_options {
  bool exact = false;
};

// A pgkit table and the question an operator asks of its rows: how many are `first`, how
// many `second` (matching `second_when`).
struct table_question {
  const char* table;
  const char* first;
  const char* second;
  const char* second_when;
};

const table_question k_tables[] = {
    {"cache", "live", "expired", "expires_at <= now()"},
    {"session", "live", "expired", "expires_at <= now()"},
    {"auth_user", "live", "deleted", "deleted_at IS NOT NULL"},
    {"auth_session", "live", "expired", "expires_at <= now()"},
    {"auth_one_time_token", "unused", "spent",
     "used_at IS NOT NULL OR deleted_at IS NOT NULL OR expires_at <= now()"},
};

using row = std::vector<std::optional<std::string>>;

std::vector<row> rows_of(pqxx::connection& connection, const std::string& sql,
                         const params& parameters = {}) {
  std::vector<row> rows;
  stream_query(connection, sql, parameters, {}, [&rows](const row_view& values) {
    row copy;
    for (std::size_t i = 0; i < values.size(); ++i) {
      auto value = values.get(i);
      copy.push_back(value ? std::optional<std::string>{std::string{*value}} : std::nullopt);
    }
    rows.push_back(std::move(copy));
    return row_action::next;
  });
  return rows;
}

std::uint64_t number(const std::optional<std::string>& text) {
  return text ? static_cast<std::uint64_t>(std::stoll(*text)) : 0;
}

// The planner's row estimate for `sql` (EXPLAIN reads the catalog's statistics; nothing runs).
std::uint64_t planned_rows(pqxx::connection& connection, const std::string& sql) {
  auto plan = nlohmann::json::parse(*rows_of(connection, "EXPLAIN (FORMAT JSON) " + sql)[0][0]);
  return plan[0]["Plan"]["Plan Rows"].get<std::uint64_t>();
}

struct table_report {
  const table_question* question = nullptr;
  std::uint64_t rows = 0;
  std::uint64_t second = 0;
  std::uint64_t table_bytes = 0;
  std::uint64_t index_bytes = 0;
  std::uint64_t dead_tuples = 0;
  std::optional<std::string> last_autovacuum;
};

table_report inspect_table(pqxx::connection& connection, const std::string& schema,
                           const table_question& question, const row& catalog, bool exact) {
  table_report report;
  report.question = &question;
  report.table_bytes = number(catalog[1]);
  report.index_bytes = number(catalog[2]);
  report.dead_tuples = number(catalog[3]);
  report.last_autovacuum = catalog[4];
  auto table = detail::quote_identifier(schema) + "." + detail::quote_identifier(question.table);
  if (exact) {
    auto counted = rows_of(connection, "SELECT count(*), count(*) FILTER (WHERE " +
                                           std::string{question.second_when} + ") FROM " + table);
    report.rows = number(counted[0][0]);
    report.second = number(counted[0][1]);
  } else if (number(catalog[5]) > 0) {  // an empty file holds no rows, whatever the planner says
    report.rows = planned_rows(connection, "SELECT FROM " + table);
    report.second = std::min(
        report.rows,
        planned_rows(connection, "SELECT FROM " + table + " WHERE " + question.second_when));
  }
  return report;
}

std::string bytes_text(std::uint64_t bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(units)) {
    value /= 1024;
    ++unit;
  }
  std::ostringstream out;
  out << std::fixed << std::setprecision(unit == 0 ? 0 : 1) << value << ' ' << units[unit];
  return out.str();
}

int run_inspect(const inspect_options& options, context& ctx) {
  const auto& out = ctx.out();
  auto settings = library_options(ctx, options);
  settings.progress = nullptr;
  auto connection = ctx.connect(options.wait);
  const auto& schema = settings.schema;
  auto status = read_migration_status(*connection, settings);

  std::string names;
  for (const auto& question : k_tables)
    names += std::string{names.empty() ? "" : ","} + question.table;
  auto catalog = rows_of(*connection,
                         "SELECT c.relname, pg_table_size(c.oid), pg_indexes_size(c.oid), "
                         "s.n_dead_tup, s.last_autovacuum, pg_relation_size(c.oid) "
                         "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                         "LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid "
                         "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') "
                         "AND c.relname = ANY (string_to_array($2, ','))",
                         {schema, names});
  std::vector<table_report> tables;
  for (const auto& question : k_tables) {
    for (const auto& found : catalog) {
      if (found[0] == std::optional<std::string>{question.table})
        tables.push_back(inspect_table(*connection, schema, question, found, options.exact));
    }
  }
  auto listeners = rows_of(*connection,
                           "SELECT pid, application_name, state_change FROM pg_stat_activity "
                           "WHERE pid <> pg_backend_pid() AND datname = current_database() AND "
                           "(query ~* '^\\s*LISTEN\\s+\"?pgkit_' "
                           "OR application_name = 'pgkit near cache') ORDER BY pid");
  auto holders =
      rows_of(*connection,
              "SELECT l.pid, a.application_name, a.backend_start FROM pg_locks l "
              "LEFT JOIN pg_stat_activity a ON a.pid = l.pid WHERE " +
                  detail::migration_lock_held(migration_lock_key(schema), "l") + " ORDER BY l.pid");

  if (out.json()) {
    auto modules = nlohmann::ordered_json::array();
    for (const auto& module : status.modules)
      modules.push_back({{"module", module.module}, {"applied_version", module.applied_version}});
    auto table_list = nlohmann::ordered_json::object();
    for (const auto& t : tables) {
      table_list[t.question->table] = {
          {"rows", t.rows},
          {t.question->first, t.rows - t.second},
          {t.question->second, t.second},
          {"table_bytes", t.table_bytes},
          {"index_bytes", t.index_bytes},
          {"dead_tuples", t.dead_tuples},
          {"last_autovacuum", t.last_autovacuum ? nlohmann::ordered_json(*t.last_autovacuum)
                                                : nlohmann::ordered_json(nullptr)}};
    }
    auto backends = [](const std::vector<row>& rows, const char* since) {
      auto list = nlohmann::ordered_json::array();
      for (const auto& r : rows) {
        list.push_back({{"pid", number(r[0])},
                        {"application_name", r[1].value_or("")},
                        {since, r[2] ? nlohmann::ordered_json(*r[2]) : nullptr}});
      }
      return list;
    };
    out.document({{"schema", schema},
                  {"exact", options.exact},
                  {"modules", modules},
                  {"tables", table_list},
                  {"listeners", backends(listeners, "since")},
                  {"migration_lock_holders", backends(holders, "backend_start")}});
    return exit_ok;
  }
  std::ostringstream text;
  const char* approx = options.exact ? "" : "~";
  text << "schema " << schema
       << (options.exact ? " (exact counts)\n" : " (estimates from the catalog; --exact counts)\n");
  if (status.modules.empty())
    text << "no module is applied in this schema\n";
  for (const auto& module : status.modules)
    text << "module " << std::left << std::setw(20) << module.module << module.applied_version
         << '\n';
  for (const auto& t : tables) {
    text << "table  " << std::left << std::setw(20) << t.question->table << approx << t.rows
         << " rows (" << t.question->first << ' ' << approx << t.rows - t.second << ", "
         << t.question->second << ' ' << approx << t.second << "), " << bytes_text(t.table_bytes)
         << " + " << bytes_text(t.index_bytes) << " indexes, " << t.dead_tuples
         << " dead, last autovacuum " << t.last_autovacuum.value_or("never") << '\n';
  }
  text << "listeners on pgkit's channel: " << listeners.size() << '\n';
  for (const auto& r : listeners)
    text << "  pid " << r[0].value_or("") << " " << r[1].value_or("") << '\n';
  if (holders.empty())
    text << "migration lock: free\n";
  for (const auto& r : holders)
    text << "migration lock: held by pid " << r[0].value_or("") << " " << r[1].value_or("") << '\n';
  out.data(text.str());
  return exit_ok;
}

}  // namespace

void setup_inspect(CLI::App& command, const global_options& globals, int& exit_status) {
  auto options = std::make_shared<inspect_options>();
  command.add_flag("--exact", options->exact,
                   "count rows exactly instead of reading the planner's estimates");
  add_wait_option(command, *options);
  command.callback([options, &globals, &exit_status] {
    context ctx{globals};
    exit_status = run_inspect(*options, ctx);
  });
}

}  // namespace pgkit::cli
