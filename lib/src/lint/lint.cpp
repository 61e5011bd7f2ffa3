// The linter: statements split as psql splits them (migrate/sql_lexer), each parsed by
// libpg_query into its JSON parse tree, then walked by the rules below. docs/lint.md says what
// each rule means and why; docs/development.md why the lexer still splits.

#include "lint/lint.hpp"

#include <pg_query.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/suggest.hpp"
#include "migrate/sql_lexer.hpp"
#include "pgkit/error.hpp"

namespace pgkit::lint {
namespace {

using json = nlohmann::json;

// How a rule treats the table it names: `lock` hazards are exempt on tables the run created,
// carry the live table's size and become errors on large tables; `table` rules are exempt on
// new tables and carry the size; `plain` rules name no table.
enum class scope { plain, table, lock };

struct rule_def {
  rule_info info;
  scope kind;
};

const std::vector<rule_def>& rule_table() {
  static const std::vector<rule_def> table = {
      {{"require-concurrent-index-creation", level::error, true}, scope::lock},
      {{"require-concurrent-index-deletion", level::error, true}, scope::plain},
      {{"constraint-missing-not-valid", level::error, true}, scope::lock},
      {{"adding-foreign-key-constraint", level::error, true}, scope::lock},
      {{"adding-field-with-default", level::error, true}, scope::lock},
      {{"adding-not-nullable-field", level::error, true}, scope::lock},
      {{"adding-required-field", level::error, true}, scope::lock},
      {{"changing-column-type", level::error, true}, scope::lock},
      {{"disallowed-unique-constraint", level::error, true}, scope::lock},
      {{"adding-serial-primary-key-field", level::error, true}, scope::lock},
      {{"renaming-column", level::warning, true}, scope::table},
      {{"renaming-table", level::warning, true}, scope::table},
      {{"ban-drop-column", level::warning, true}, scope::table},
      {{"ban-drop-table", level::warning, true}, scope::table},
      {{"ban-drop-not-null", level::warning, true}, scope::table},
      {{"ban-drop-database", level::error, true}, scope::plain},
      {{"ban-truncate-cascade", level::error, true}, scope::plain},
      {{"ban-concurrent-index-creation-in-transaction", level::error, true}, scope::plain},
      {{"require-lock-timeout", level::warning, true}, scope::plain},
      {{"require-statement-timeout", level::warning, true}, scope::plain},
      {{"ban-char-field", level::warning, true}, scope::plain},
      {{"prefer-timestamp-tz", level::warning, true}, scope::plain},
      {{"prefer-text-field", level::warning, true}, scope::plain},
      {{"prefer-bigint-over-int", level::warning, true}, scope::plain},
      {{"prefer-bigint-over-smallint", level::warning, true}, scope::plain},
      {{"prefer-identity", level::warning, true}, scope::plain},
      {{"ban-create-domain-with-constraint", level::warning, true}, scope::plain},
      {{"ban-alter-domain-with-add-constraint", level::warning, true}, scope::plain},
      {{"unparsed", level::info, true}, scope::plain},
  };
  return table;
}

const rule_def& rule_named(std::string_view name) {
  for (const auto& def : rule_table()) {
    if (def.info.name == name)
      return def;
  }
  throw error(error_kind::internal, "lint: no rule " + std::string{name});
}

std::string lower(std::string_view text) {
  std::string out{text};
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string canonical_rule(const std::string& name) {
  return name == "prefer-timestamptz" ? "prefer-timestamp-tz" : name;
}

void check_rule_name(const std::string& name) {
  std::vector<std::string> names{"all"};
  for (const auto& def : rule_table()) {
    if (def.info.name == name)
      return;
    names.emplace_back(def.info.name);
  }
  std::string hint = "docs/lint.md lists the rules";
  if (auto nearest = nearest_word(name, names))
    hint = "did you mean '" + *nearest + "'? " + hint;
  throw usage_error("unknown lint rule '" + name + "'", hint);
}

// A node's one child: {"IndexStmt": {...}} -> ("IndexStmt", {...}).
std::pair<std::string, const json*> node_of(const json& node) {
  if (!node.is_object() || node.empty())
    return {"", nullptr};
  return {node.begin().key(), &node.begin().value()};
}

const json* child(const json& object, const char* key) {
  if (!object.is_object())
    return nullptr;
  auto found = object.find(key);
  return found == object.end() ? nullptr : &*found;
}

std::string text_of(const json& object, const char* key) {
  const json* value = child(object, key);
  return value != nullptr && value->is_string() ? value->get<std::string>() : std::string{};
}

bool flag_of(const json& object, const char* key) {
  const json* value = child(object, key);
  return value != nullptr && value->is_boolean() && value->get<bool>();
}

int location_of(const json& object) {
  const json* value = child(object, "location");
  return value != nullptr && value->is_number_integer() ? value->get<int>() : -1;
}

// The string of a {"String": {"sval": ...}} node.
std::string string_node(const json& node) {
  auto [type, body] = node_of(node);
  return type == "String" && body != nullptr ? text_of(*body, "sval") : std::string{};
}

// Iterates a list field of node objects, giving each node's type and body.
template <typename F>
void each(const json& object, const char* key, F&& visit) {
  const json* list = child(object, key);
  if (list == nullptr || !list->is_array())
    return;
  for (const auto& item : *list) {
    auto [type, body] = node_of(item);
    if (body != nullptr)
      visit(type, *body);
  }
}

// Where a statement's parts are, and which rules its suppression comments silence.
struct statement_view {
  std::string_view text;          // the statement as parsed
  std::size_t offset = 0;         // its byte offset in the section
  std::set<std::string> ignored;  // from `-- pgkit:lint-ignore` comments before it
};

// The rules the `-- pgkit:lint-ignore RULE[,RULE] reason` comments in `gap` name.
std::set<std::string> ignored_rules(std::string_view gap) {
  static constexpr std::string_view marker = "pgkit:lint-ignore";
  std::set<std::string> names;
  for (auto at = gap.find(marker); at != std::string_view::npos; at = gap.find(marker, at + 1)) {
    auto line_start = gap.rfind('\n', at);
    line_start = line_start == std::string_view::npos ? 0 : line_start + 1;
    if (gap.substr(line_start, at - line_start).find("--") == std::string_view::npos)
      continue;
    std::size_t begin = at + marker.size();
    while (begin < gap.size() && (gap[begin] == ' ' || gap[begin] == '\t'))
      ++begin;
    std::size_t end = begin;
    while (end < gap.size() && !std::isspace(static_cast<unsigned char>(gap[end])))
      ++end;
    std::string_view list = gap.substr(begin, end - begin);
    while (!list.empty()) {
      auto comma = list.find(',');
      std::string name{list.substr(0, comma)};
      if (!name.empty())
        names.insert(canonical_rule(lower(name)));
      list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    }
  }
  return names;
}

// Volatile-free defaults: constants, casts of constants, and argument-less non-volatile
// functions (the common ones; squawk keeps the whole pg_proc list).
bool cheap_default(const json& expression) {
  auto [type, body] = node_of(expression);
  if (body == nullptr)
    return false;
  if (type == "A_Const" || type == "SQLValueFunction")
    return true;
  if (type == "TypeCast") {
    const json* arg = child(*body, "arg");
    return arg != nullptr && node_of(*arg).first == "A_Const";
  }
  if (type == "FuncCall" && child(*body, "args") == nullptr) {
    static const std::set<std::string> stable = {"now",
                                                 "current_timestamp",
                                                 "current_date",
                                                 "localtimestamp",
                                                 "current_time",
                                                 "localtime",
                                                 "transaction_timestamp",
                                                 "statement_timestamp",
                                                 "current_user",
                                                 "current_schema",
                                                 "session_user",
                                                 "pi",
                                                 "current_database",
                                                 "version",
                                                 "timeofday"};
    std::string name;
    if (const json* names = child(*body, "funcname");
        names != nullptr && names->is_array() && !names->empty())
      name = lower(string_node(names->back()));
    return stable.count(name) != 0 && name != "timeofday";
  }
  return false;
}

std::string format_bytes(std::int64_t bytes) {
  const char* units[] = {"bytes", "kB", "MB", "GB", "TB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", value, units[unit]);
  return text;
}

std::string format_rows(std::int64_t rows) {
  char text[32];
  if (rows >= 1000000)
    std::snprintf(text, sizeof text, "%.1f M rows", static_cast<double>(rows) / 1e6);
  else if (rows >= 1000)
    std::snprintf(text, sizeof text, "%.1f k rows", static_cast<double>(rows) / 1e3);
  else
    std::snprintf(text, sizeof text, "%lld rows", static_cast<long long>(rows));
  return text;
}

// A table a statement names: {"schemaname", "relname", "location"} of a RangeVar.
struct table_ref {
  std::string schema;
  std::string name;
  int location = -1;
  std::string shown() const { return schema.empty() ? name : schema + "." + name; }
};

table_ref table_of(const json* range_var) {
  if (range_var == nullptr)
    return {};
  return {text_of(*range_var, "schemaname"), text_of(*range_var, "relname"),
          location_of(*range_var)};
}

// Lints one section; lives as long as linter::add.
class section_walker {
 public:
  section_walker(const options& settings, std::set<std::string>& created, std::vector<finding>& out,
                 const section& part)
      : m_options(settings),
        m_created(created),
        m_out(out),
        m_part(part),
        m_in_transaction(part.engine_run && part.transactional) {}

  void statement(const statement_view& view, const json& stmt) {
    m_view = &view;
    auto [type, body] = node_of(stmt);
    if (body == nullptr)
      return;
    const json& s = *body;
    if (type == "CreateStmt") {
      each(s, "tableElts", [&](const std::string& t, const json& element) {
        if (t == "ColumnDef")
          check_type(element);
      });
      m_created.insert(text_of(*child(s, "relation"), "relname"));
    } else if (type == "CreateTableAsStmt") {
      if (const json* into = child(s, "into"))
        m_created.insert(table_of(child(*into, "rel")).name);
    } else if (type == "IndexStmt") {
      index(s);
    } else if (type == "AlterTableStmt") {
      alter_table(s);
    } else if (type == "RenameStmt") {
      rename(s);
    } else if (type == "DropStmt") {
      drop(s);
    } else if (type == "DropdbStmt") {
      report("ban-drop-database", 0,
             "DROP DATABASE removes the database and everything in it, for every client",
             "drop databases by hand, never from a migration");
    } else if (type == "TruncateStmt") {
      each(s, "relations",
           [&](const std::string&, const json& range) { lock_taken(table_of(&range)); });
      if (text_of(s, "behavior") == "DROP_CASCADE") {
        report("ban-truncate-cascade", find_word(0, "cascade"),
               "TRUNCATE ... CASCADE also empties every table with a foreign key to these, "
               "including ones this migration does not name",
               "name every table to truncate and leave out CASCADE");
      }
    } else if (type == "CreateDomainStmt") {
      const json* constraints = child(s, "constraints");
      if (constraints != nullptr && constraints->is_array() && !constraints->empty()) {
        auto [ct, first] = node_of(constraints->front());
        report("ban-create-domain-with-constraint", first ? location_of(*first) : 0,
               "a domain's constraints are checked on every use and cannot be added or dropped "
               "later without scanning every column of the type",
               "put the CHECK on the table's columns instead of the domain");
      }
    } else if (type == "AlterDomainStmt") {
      if (text_of(s, "subtype") == "C") {
        const json* def = child(s, "def");
        auto [dt, constraint] = def ? node_of(*def) : std::pair<std::string, const json*>{};
        report("ban-alter-domain-with-add-constraint", constraint ? location_of(*constraint) : 0,
               "ALTER DOMAIN ... ADD CONSTRAINT scans every column of the domain's type while "
               "holding locks on their tables",
               "put the CHECK on the table's columns (NOT VALID, then VALIDATE) instead");
      }
    } else if (type == "VariableSetStmt") {
      variable(s);
    } else if (type == "TransactionStmt") {
      std::string kind = text_of(s, "kind");
      if (kind == "TRANS_STMT_BEGIN" || kind == "TRANS_STMT_START") {
        m_in_transaction = true;
      } else if (kind == "TRANS_STMT_COMMIT" || kind == "TRANS_STMT_ROLLBACK") {
        m_in_transaction = false;
        m_not_valid.clear();
      }
    }
  }

  void unparsed(const statement_view& view, const std::string& reason, int cursor) {
    m_view = &view;
    report("unparsed", cursor > 0 ? cursor - 1 : 0,
           "PostgreSQL " PG_MAJORVERSION "'s grammar (libpg_query) cannot parse this statement (" +
               reason + "); it was not linted",
           "check the statement by hand, or upgrade libpg-query");
  }

 private:
  // A statement that takes a lock on an existing table, run without lock_timeout (or
  // statement_timeout): squawk's require-lock-timeout and require-statement-timeout, once per
  // section. pgkit's engine sets both, so for its migrations only a file that turns one off is
  // reported.
  void lock_taken(const table_ref& table) {
    if (m_created.count(table.name) != 0)
      return;
    if (m_options.lookup && !table.name.empty() && !m_options.lookup(table.schema, table.name))
      return;
    timeout_rule(m_lock_timeout, "require-lock-timeout", "lock_timeout", "'1s'");
    timeout_rule(m_statement_timeout, "require-statement-timeout", "statement_timeout", "'5s'");
  }

  struct timeout_state {
    bool set = false;       // a SET earlier in the section gave it a value
    bool off = false;       // a SET or RESET earlier in the section turned it off
    bool reported = false;  // reported once already
  };

  void timeout_rule(timeout_state& state, const char* rule, const std::string& name,
                    const std::string& example) {
    bool in_effect = m_part.engine_run ? !state.off : state.set;
    if (state.reported || in_effect)
      return;
    state.reported = true;
    report(rule, 0,
           m_part.engine_run
               ? "this migration turned off the " + name +
                     " pgkit's engine sets: waiting behind a long query, this statement makes "
                     "every later query on the table wait behind it"
               : "this statement takes a lock without " + name +
                     " set: waiting behind a long query, it makes every later query on the "
                     "table wait behind it",
           m_part.engine_run
               ? "remove the SET that turns " + name +
                     " off (pgkit apply --lock-timeout and "
                     "--statement-timeout set the engine's values)"
               : "SET " + name + " = " + example +
                     "; before it, or run the file as a pgkit migration, whose engine sets it");
  }

  void variable(const json& s) {
    std::string name = lower(text_of(s, "name"));
    if (name != "lock_timeout" && name != "statement_timeout")
      return;
    std::string kind = text_of(s, "kind");
    bool off = kind != "VAR_SET_VALUE";
    if (!off) {
      each(s, "args", [&](const std::string& t, const json& value) {
        if (t != "A_Const")
          return;
        if (const json* ival = child(value, "ival"))
          off = child(*ival, "ival") == nullptr || (*ival)["ival"].get<long long>() == 0;
        else if (const json* sval = child(value, "sval"))
          off = text_of(*sval, "sval").find_first_not_of("0 ") == std::string::npos ||
                text_of(*sval, "sval").rfind("0", 0) == 0;
      });
    }
    timeout_state& state = name == "lock_timeout" ? m_lock_timeout : m_statement_timeout;
    state.set = !off;
    state.off = off;
  }

  void check_type(const json& column) {
    const json* type = child(column, "typeName");
    if (type == nullptr)
      return;
    std::string name;
    if (const json* names = child(*type, "names"); names && names->is_array() && !names->empty())
      name = lower(string_node(names->back()));
    bool sized = child(*type, "typmods") != nullptr;
    int at = location_of(*type);
    if (name == "bpchar" || name == "char" || name == "character") {
      report("ban-char-field", at,
             "char(n) pads with spaces and its length limit is no cheaper than text's",
             "use text (with a CHECK on length() if a limit matters)");
    } else if (name == "varchar" && sized) {
      report("prefer-text-field", at,
             "changing varchar(n)'s limit later takes an ACCESS EXCLUSIVE lock (and can rewrite "
             "the table); it is stored like text",
             "use text with a CHECK (length(col) <= n), which can be replaced NOT VALID");
    } else if (name == "timestamp") {
      report("prefer-timestamp-tz", at,
             "timestamp without time zone drops the offset: values depend on the writer's "
             "TimeZone setting",
             "use timestamptz");
    }
    if (name == "int4" || name == "int" || name == "integer" || name == "serial" ||
        name == "serial4") {
      report("prefer-bigint-over-int", at,
             "a 32-bit integer key runs out at 2^31; widening it later rewrites the table under "
             "ACCESS EXCLUSIVE",
             "use bigint (bigserial / GENERATED ... AS IDENTITY on bigint)");
    } else if (name == "int2" || name == "smallint" || name == "smallserial" || name == "serial2") {
      report("prefer-bigint-over-smallint", at,
             "a 16-bit integer runs out at 32767; widening it later rewrites the table under "
             "ACCESS EXCLUSIVE",
             "use bigint");
    }
    if (name == "serial" || name == "serial2" || name == "serial4" || name == "serial8" ||
        name == "smallserial" || name == "bigserial") {
      report("prefer-identity", at,
             "serial creates a sequence owned separately from the column (grants, copies and "
             "dumps treat them apart)",
             "use bigint GENERATED BY DEFAULT AS IDENTITY");
    }
  }

  void index(const json& s) {
    table_ref table = table_of(child(s, "relation"));
    if (flag_of(s, "concurrent")) {
      if (m_in_transaction) {
        report("ban-concurrent-index-creation-in-transaction", find_word(0, "concurrently"),
               m_part.engine_run
                   ? "pgkit runs this migration in a transaction, where the server refuses "
                     "CREATE INDEX CONCURRENTLY: the run would fail half-way"
                   : "CREATE INDEX CONCURRENTLY cannot run inside a transaction block",
               m_part.engine_run
                   ? "move it to a migration of its own marked '-- migrate:up transaction:false'"
                   : "run it outside BEGIN ... COMMIT");
      }
      return;
    }
    lock_taken(table);
    report("require-concurrent-index-creation", 0,
           "CREATE INDEX without CONCURRENTLY blocks every write to " + table.shown() +
               " (SHARE lock) for the whole index build",
           "CREATE INDEX CONCURRENTLY, in a migration marked '-- migrate:up transaction:false'",
           &table);
  }

  void drop(const json& s) {
    std::string kind = text_of(s, "removeType");
    if (kind == "OBJECT_INDEX" && !flag_of(s, "concurrent")) {
      lock_taken({});
      report("require-concurrent-index-deletion", 0,
             "DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on the index's "
             "table, blocking reads and writes until it ends",
             "DROP INDEX CONCURRENTLY, in a migration marked '-- migrate:up transaction:false'");
    } else if (kind == "OBJECT_TABLE") {
      const json* objects = child(s, "objects");
      if (objects == nullptr || !objects->is_array())
        return;
      for (const auto& object : *objects) {
        auto [lt, list] = node_of(object);
        if (list == nullptr)
          continue;
        table_ref table;
        each(*list, "items", [&](const std::string&, const json& part) {
          table.schema = table.name;
          table.name = text_of(part, "sval");
        });
        lock_taken(table);
        report("ban-drop-table", find_word(0, table.name),
               "dropping " + table.shown() + " breaks every client that still reads or writes it",
               "stop using the table in the application first, deploy, then drop it", &table);
      }
    }
  }

  void rename(const json& s) {
    std::string kind = text_of(s, "renameType");
    table_ref table = table_of(child(s, "relation"));
    if (kind == "OBJECT_COLUMN") {
      lock_taken(table);
      report("renaming-column", find_word(table.location, text_of(s, "subname")),
             "renaming a column breaks every client that still uses the old name",
             "add the new column, write both, backfill, move readers, then drop the old one",
             &table);
    } else if (kind == "OBJECT_TABLE") {
      lock_taken(table);
      report("renaming-table", table.location,
             "renaming a table breaks every client that still uses the old name",
             "create a view under the old name while clients move, or copy the data", &table);
    }
  }

  void alter_table(const json& s) {
    std::string object = text_of(s, "objtype");
    if (!object.empty() && object != "OBJECT_TABLE")
      return;
    table_ref table = table_of(child(s, "relation"));
    lock_taken(table);
    each(s, "cmds", [&](const std::string&, const json& cmd) {
      std::string subtype = text_of(cmd, "subtype");
      const json* def = child(cmd, "def");
      auto [def_type, def_body] = def ? node_of(*def) : std::pair<std::string, const json*>{};
      std::string column = text_of(cmd, "name");
      if (subtype == "AT_AddColumn" && def_body != nullptr) {
        add_column(*def_body, table);
      } else if (subtype == "AT_AddConstraint" && def_body != nullptr) {
        add_constraint(*def_body, table);
      } else if (subtype == "AT_ValidateConstraint") {
        if (m_in_transaction && m_not_valid.count(column) != 0) {
          report("constraint-missing-not-valid", find_word(table.location, column),
                 "validating " + column +
                     " in the same transaction that added it NOT VALID keeps the ACCESS "
                     "EXCLUSIVE lock of the ADD during the whole scan",
                 "VALIDATE CONSTRAINT in a later migration (or a transaction:false one)", &table);
        }
      } else if (subtype == "AT_AlterColumnType") {
        const json* type = def_body ? child(*def_body, "typeName") : nullptr;
        report("changing-column-type", type ? location_of(*type) : find_word(0, column),
               "changing " + column + "'s type rewrites " + table.shown() +
                   " under ACCESS EXCLUSIVE (no reads or writes) and rebuilds its indexes",
               "add a column of the new type, backfill it in batches, switch readers, drop the "
               "old one",
               &table);
        if (def_body != nullptr)
          check_type(*def_body);
      } else if (subtype == "AT_SetNotNull") {
        report("adding-not-nullable-field", find_word(table.location, column),
               "SET NOT NULL scans " + table.shown() +
                   " while holding ACCESS EXCLUSIVE, blocking reads and writes",
               "ADD CONSTRAINT ... CHECK (" + column +
                   " IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL (PostgreSQL 12+ "
                   "then skips the scan)",
               &table);
      } else if (subtype == "AT_DropNotNull") {
        report("ban-drop-not-null", find_word(table.location, column),
               "dropping NOT NULL on " + column +
                   " lets NULLs in that clients reading the column do not expect",
               "make sure every reader handles NULL before relaxing the constraint", &table);
      } else if (subtype == "AT_DropColumn") {
        report("ban-drop-column", find_word(table.location, column),
               "dropping " + column + " breaks every client that still reads or writes it",
               "stop using the column in the application first, deploy, then drop it", &table);
      }
    });
  }

  void add_column(const json& column, const table_ref& table) {
    check_type(column);
    bool has_default = false;
    bool not_null = false;
    int not_null_at = -1;
    each(column, "constraints", [&](const std::string&, const json& constraint) {
      std::string kind = text_of(constraint, "contype");
      int at = location_of(constraint);
      if (kind == "CONSTR_DEFAULT") {
        has_default = true;
        const json* expression = child(constraint, "raw_expr");
        if (m_options.pg_version < 11 || (expression && !cheap_default(*expression))) {
          int expression_at =
              expression ? location_of(node_of(*expression).second ? *node_of(*expression).second
                                                                   : *expression)
                         : -1;
          report("adding-field-with-default", expression_at >= 0 ? expression_at : at,
                 m_options.pg_version < 11
                     ? "before PostgreSQL 11, ADD COLUMN ... DEFAULT rewrites " + table.shown() +
                           " under ACCESS EXCLUSIVE"
                     : "a volatile DEFAULT is computed for every existing row: " + table.shown() +
                           " is rewritten under ACCESS EXCLUSIVE",
                 "add the column without a default (or with a constant), backfill in batches, "
                 "then SET DEFAULT",
                 &table);
        }
      } else if (kind == "CONSTR_GENERATED") {
        has_default = true;
        report("adding-field-with-default", at,
               "a stored generated column is computed for every existing row: " + table.shown() +
                   " is rewritten under ACCESS EXCLUSIVE",
               "add a plain nullable column, backfill it in batches, and keep it up to date "
               "with a trigger",
               &table);
      } else if (kind == "CONSTR_IDENTITY") {
        has_default = true;
      } else if (kind == "CONSTR_NOTNULL") {
        not_null = true;
        not_null_at = at;
      } else if (kind == "CONSTR_FOREIGN") {
        foreign_key(at, table);
      } else if (kind == "CONSTR_UNIQUE") {
        unique(at, table);
      } else if (kind == "CONSTR_PRIMARY") {
        primary_key(at, table);
      }
    });
    if (not_null && !has_default) {
      report("adding-required-field", not_null_at,
             "ADD COLUMN ... NOT NULL without a DEFAULT fails on a table that has rows",
             "add the column nullable (or with a DEFAULT), backfill it, then make it NOT NULL",
             &table);
    }
  }

  void add_constraint(const json& constraint, const table_ref& table) {
    std::string kind = text_of(constraint, "contype");
    int at = location_of(constraint);
    bool not_valid = flag_of(constraint, "skip_validation");
    if (not_valid)
      m_not_valid.insert(text_of(constraint, "conname"));
    bool using_index = !text_of(constraint, "indexname").empty();
    if (!not_valid && !using_index) {
      report("constraint-missing-not-valid", at,
             "adding a constraint without NOT VALID scans " + table.shown() +
                 " to check every row while holding its lock",
             "ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT in a later migration (it "
             "takes a lock that lets reads and writes go on)",
             &table);
    }
    if (kind == "CONSTR_FOREIGN" && !not_valid)
      foreign_key(at, table);
    else if (kind == "CONSTR_UNIQUE" && !using_index)
      unique(at, table);
    else if (kind == "CONSTR_PRIMARY" && !using_index)
      primary_key(at, table);
  }

  void foreign_key(int at, const table_ref& table) {
    report("adding-foreign-key-constraint", at,
           "a foreign key takes SHARE ROW EXCLUSIVE locks on " + table.shown() +
               " and the referenced table (blocking writes to both) while it checks every row",
           "ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID, then VALIDATE CONSTRAINT in a later "
           "migration",
           &table);
  }

  void unique(int at, const table_ref& table) {
    report("disallowed-unique-constraint", at,
           "adding a UNIQUE constraint builds its index under ACCESS EXCLUSIVE, blocking reads "
           "and writes to " +
               table.shown(),
           "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... UNIQUE USING INDEX", &table);
  }

  void primary_key(int at, const table_ref& table) {
    report("adding-serial-primary-key-field", at,
           "adding a primary key builds its index under ACCESS EXCLUSIVE, blocking reads and "
           "writes to " +
               table.shown(),
           "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... PRIMARY KEY USING INDEX",
           &table);
  }

  // The offset of `word` (case-insensitive, as a whole word) in the statement at or after
  // `from`; the statement's start when it is not there.
  int find_word(int from, const std::string& word) const {
    if (word.empty())
      return 0;
    std::string text = lower(m_view->text);
    std::string wanted = lower(word);
    auto is_word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
    for (auto at = text.find(wanted, static_cast<std::size_t>(std::max(from, 0)));
         at != std::string::npos; at = text.find(wanted, at + 1)) {
      bool starts = at == 0 || !is_word(text[at - 1]);
      auto end = at + wanted.size();
      if (starts && (end >= text.size() || !is_word(text[end])))
        return static_cast<int>(at);
    }
    return 0;
  }

  void report(const char* name, int at, std::string message, std::string help,
              const table_ref* table = nullptr) {
    const rule_def& def = rule_named(name);
    if (m_options.rules.count(def.info.name.data()) == 0 || m_view->ignored.count(name) != 0)
      return;
    finding found;
    found.severity = def.info.severity;
    if (table != nullptr && def.kind != scope::plain && !table->name.empty()) {
      if (m_created.count(table->name) != 0)
        return;
      if (m_options.lookup) {
        auto stats = m_options.lookup(table->schema, table->name);
        if (!stats)
          return;
        stats->name = table->shown();
        message += " (" + stats->name + ": about " + format_rows(stats->rows_estimate) + ", " +
                   format_bytes(stats->bytes) + ")";
        if (def.kind == scope::lock) {
          found.severity =
              stats->rows_estimate >= m_options.large_table_rows ? level::error : level::warning;
        }
        found.table = std::move(stats);
      }
    }
    std::size_t offset = m_view->offset + static_cast<std::size_t>(std::max(at, 0));
    found.file = m_part.file;
    found.line = m_part.first_line;
    std::size_t line_start = 0;
    std::string_view sql = m_part.sql;
    for (std::size_t i = 0; i < offset && i < sql.size(); ++i) {
      if (sql[i] == '\n') {
        ++found.line;
        line_start = i + 1;
      }
    }
    found.column = 1;
    for (std::size_t i = line_start; i < offset && i < sql.size(); ++i) {
      if ((static_cast<unsigned char>(sql[i]) & 0xC0) != 0x80)
        ++found.column;
    }
    found.rule = name;
    found.message = std::move(message);
    found.help = std::move(help);
    found.statement = std::string{m_view->text.substr(0, m_view->text.find('\n'))};
    m_out.push_back(std::move(found));
  }

  const options& m_options;
  std::set<std::string>& m_created;
  std::vector<finding>& m_out;
  const section& m_part;
  const statement_view* m_view = nullptr;
  bool m_in_transaction;
  timeout_state m_lock_timeout;
  timeout_state m_statement_timeout;
  std::set<std::string> m_not_valid;  // constraints added NOT VALID in this transaction
};

}  // namespace

std::string_view level_name(level severity) noexcept {
  switch (severity) {
    case level::info:
      return "info";
    case level::warning:
      return "warning";
    default:
      return "error";
  }
}

const std::vector<rule_info>& rules() {
  static const std::vector<rule_info> infos = [] {
    std::vector<rule_info> out;
    for (const auto& def : rule_table())
      out.push_back(def.info);
    return out;
  }();
  return infos;
}

std::set<std::string> select_rules(const std::vector<std::string>& include,
                                   const std::vector<std::string>& exclude) {
  std::set<std::string> selected;
  for (const auto& def : rule_table()) {
    if (def.info.enabled_by_default)
      selected.emplace(def.info.name);
  }
  // `all` first, then the names: --exclude all --include X means only X, and --include all
  // --exclude X everything but X.
  auto names_of = [](const std::vector<std::string>& given, bool& all) {
    std::vector<std::string> names;
    for (const auto& word : given) {
      std::string name = canonical_rule(lower(word));
      if (name == "all") {
        all = true;
        continue;
      }
      check_rule_name(name);
      names.push_back(name);
    }
    return names;
  };
  bool include_all = false;
  bool exclude_all = false;
  auto included = names_of(include, include_all);
  auto excluded = names_of(exclude, exclude_all);
  for (const auto& def : rule_table()) {
    if (include_all)
      selected.emplace(def.info.name);
    if (exclude_all)
      selected.erase(std::string{def.info.name});
  }
  selected.insert(included.begin(), included.end());
  for (const auto& name : excluded)
    selected.erase(name);
  return selected;
}

linter::linter(options settings) : m_options(std::move(settings)) {}

// libpg_query keeps one memory context per thread for all its parses; pg_query_exit() would
// free it, but a later parse on the same thread then writes to freed memory (libpg_query
// 15-4.0.0), so it is left to the thread's end.
linter::~linter() = default;

void linter::add(const section& part) {
  section_walker walker{m_options, m_created, m_findings, part};
  auto first = m_findings.size();
  std::size_t gap_begin = 0;
  for (const auto& piece : detail::split_statements(part.sql)) {
    ++m_statements;
    statement_view view;
    view.text = std::string_view{part.sql}.substr(piece.begin, piece.end - piece.begin);
    view.offset = piece.begin;
    view.ignored =
        ignored_rules(std::string_view{part.sql}.substr(gap_begin, piece.begin - gap_begin));
    gap_begin = piece.end;
    std::string text{view.text};
    PgQueryParseResult parsed = pg_query_parse(text.c_str());
    if (parsed.error != nullptr) {
      std::string reason = parsed.error->message != nullptr ? parsed.error->message : "";
      int cursor = parsed.error->cursorpos;
      pg_query_free_parse_result(parsed);
      walker.unparsed(view, reason, cursor);
      continue;
    }
    json tree = json::parse(parsed.parse_tree, nullptr, false);
    pg_query_free_parse_result(parsed);
    const json* statements = child(tree, "stmts");
    if (statements == nullptr || !statements->is_array())
      continue;
    for (const auto& raw : *statements) {
      const json* stmt = child(raw, "stmt");
      if (stmt == nullptr)
        continue;
      walker.statement(view, *stmt);
    }
  }
  std::stable_sort(m_findings.begin() + static_cast<std::ptrdiff_t>(first), m_findings.end(),
                   [](const finding& a, const finding& b) {
                     return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                   });
}

}  // namespace pgkit::lint
