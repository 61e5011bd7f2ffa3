// Migration files and modules: parsing, the catalog, run order, and the offline renderings
// (plain script, dbmate files). Everything here works without a database.

#include "pgkit/migration.hpp"

#include <sodium.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <system_error>
#include <tuple>
#include <utility>

#include "core/suggest.hpp"
#include "migrate/embedded_sql.hpp"
#include "migrate/migration_sql.hpp"
#include "migrate/sql_lexer.hpp"
#include "pgkit/error.hpp"

namespace pgkit {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view k_core = "core";

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

std::string sha256_hex(std::string_view text) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  static const char* const hex = "0123456789abcdef";
  std::string out;
  for (unsigned char byte : digest) {
    out += hex[byte >> 4];
    out += hex[byte & 0x0f];
  }
  return out;
}

std::string join(const std::vector<std::string>& words, std::string_view separator) {
  std::string out;
  for (const auto& word : words) {
    if (!out.empty())
      out += separator;
    out += word;
  }
  return out;
}

// A `-- migrate:up` or `-- migrate:down` line, as dbmate recognises it.
struct marker {
  enum class kind { up, down } which;
  transaction_mode transaction = transaction_mode::inside;
};

std::optional<marker> parse_marker(std::string_view line, const std::string& where) {
  while (!line.empty() && is_blank(line.back()))
    line.remove_suffix(1);
  if (line.substr(0, 2) != "--")
    return std::nullopt;
  line.remove_prefix(2);
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t'))
    line.remove_prefix(1);
  marker found{};
  if (line.substr(0, 10) == "migrate:up") {
    found.which = marker::kind::up;
    line.remove_prefix(10);
  } else if (line.substr(0, 12) == "migrate:down") {
    found.which = marker::kind::down;
    line.remove_prefix(12);
  } else {
    return std::nullopt;
  }
  if (!line.empty() && !is_blank(line.front()))
    return std::nullopt;  // e.g. "-- migrate:upgrade notes": a plain comment
  std::istringstream options{std::string{line}};
  std::string option;
  while (options >> option) {
    if (option == "transaction:false") {
      found.transaction = transaction_mode::outside;
    } else if (option == "transaction:true") {
      found.transaction = transaction_mode::inside;
    } else {
      throw usage_error(where + ": unknown migration option '" + option + "'",
                        "the only option dbmate and pgkit know is transaction:false");
    }
  }
  return found;
}

// Returns the text between [begin, end) without surrounding blank space, and the line on which
// it starts (`first_line` is the line of `begin`).
std::pair<std::string, std::size_t> trimmed_section(std::string_view text, std::size_t begin,
                                                    std::size_t end, std::size_t first_line) {
  std::size_t line = first_line;
  while (begin < end && is_blank(text[begin])) {
    if (text[begin] == '\n')
      ++line;
    ++begin;
  }
  while (end > begin && is_blank(text[end - 1]))
    --end;
  return {std::string{text.substr(begin, end - begin)}, line};
}

bool only_comments(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    if (is_blank(text[i])) {
      ++i;
    } else if (text.substr(i, 2) == "--") {
      auto newline = text.find('\n', i);
      i = newline == std::string_view::npos ? text.size() : newline + 1;
    } else {
      return false;
    }
  }
  return true;
}

// Returns the offset of the first byte of `text` that does not belong to a well-formed UTF-8
// sequence (overlong forms, surrogates and code points above U+10FFFF included), or npos.
std::size_t invalid_utf8_offset(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    auto byte = static_cast<unsigned char>(text[i]);
    std::size_t length = byte < 0x80                    ? 1
                         : byte >= 0xc2 && byte <= 0xdf ? 2
                         : byte >= 0xe0 && byte <= 0xef ? 3
                         : byte >= 0xf0 && byte <= 0xf4 ? 4
                                                        : 0;
    if (length == 0 || i + length > text.size())
      return i;
    for (std::size_t k = 1; k < length; ++k) {
      auto next = static_cast<unsigned char>(text[i + k]);
      unsigned char low = 0x80, high = 0xbf;
      if (k == 1 && byte == 0xe0)
        low = 0xa0;
      else if (k == 1 && byte == 0xed)
        high = 0x9f;
      else if (k == 1 && byte == 0xf0)
        low = 0x90;
      else if (k == 1 && byte == 0xf4)
        high = 0x8f;
      if (next < low || next > high)
        return i;
    }
    i += length;
  }
  return std::string_view::npos;
}

std::string byte_position(std::string_view text, std::size_t offset) {
  auto line =
      1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n');
  return "byte offset " + std::to_string(offset) + " (line " + std::to_string(line) + ")";
}

// Refuses a section with a top-level statement that ends or starts a transaction: it would end
// the run's transaction, and the rest of the run would autocommit without pgkit's settings.
void refuse_transaction_control(const std::string& path, const std::string& sql,
                                std::size_t first_line, std::string_view section) {
  for (const auto& statement : detail::split_statements(sql)) {
    if (auto command = detail::transaction_control(statement)) {
      throw usage_error(
          path + ":" + std::to_string(first_line + statement.line - 1) + ": the " +
              std::string{section} + " section runs " + *command +
              ", which would end pgkit's transaction",
          "pgkit runs each migration inside its transaction (all pending migrations of a run in "
          "one); remove the " +
              *command +
              ", or put the section's statements in a transaction:false migration of its own");
    }
  }
}

bool valid_module_name(std::string_view name) {
  if (name.empty() || name.size() > 63 || name.front() == '.' || name.front() == '-')
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.';
  });
}

std::string read_file(const fs::path& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    throw usage_error("cannot read migration file " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void sort_and_check_versions(schema_module& module) {
  std::sort(module.migrations.begin(), module.migrations.end(),
            [](const migration& a, const migration& b) { return a.version < b.version; });
  for (std::size_t i = 1; i < module.migrations.size(); ++i) {
    const auto& previous = module.migrations[i - 1];
    const auto& current = module.migrations[i];
    if (previous.version == current.version) {
      throw usage_error("module " + module.name + ": " + previous.path + " and " + current.path +
                            " have the same version " + current.version,
                        "give each migration of a module its own version");
    }
  }
}

schema_module load_directory_module(const fs::path& dir, const std::string& name,
                                    const std::string& origin) {
  schema_module module{name, origin, {std::string{k_core}}, {}};
  std::error_code error;
  for (const auto& entry : fs::directory_iterator{dir, error}) {
    auto file_name = entry.path().filename().string();
    if (entry.path().extension() != ".sql" || file_name.front() == '.')
      continue;  // hidden files (editor scratch files, lock links) are ignored, as by dbmate
    if (!entry.is_regular_file()) {
      throw usage_error(entry.path().string() + ": not a regular file");
    }
    module.migrations.push_back(
        parse_migration(name, file_name, read_file(entry.path()), entry.path().string()));
  }
  if (error)
    throw usage_error("cannot read module directory " + dir.string() + ": " + error.message());
  sort_and_check_versions(module);
  return module;
}

}  // namespace

migration parse_migration(const std::string& module, const std::string& file_name,
                          std::string_view text, const std::string& path) {
  migration parsed;
  parsed.module = module;
  parsed.file_name = file_name;
  parsed.path = path;
  const std::string hint = "migration files are named <14-digit UTC version>_<name>.sql";
  bool digits = file_name.size() >= 20 && std::all_of(file_name.begin(), file_name.begin() + 14,
                                                      [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || file_name[14] != '_' || file_name.compare(file_name.size() - 4, 4, ".sql") != 0) {
    throw usage_error(path + ": malformed file name", hint);
  }
  parsed.version = file_name.substr(0, 14);
  parsed.name = file_name.substr(15, file_name.size() - 19);
  bool printable = std::all_of(parsed.name.begin(), parsed.name.end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f && c != '\'' && c != '"' && c != '\\';
  });
  if (parsed.name.empty() || !printable) {
    throw usage_error(path +
                          ": malformed file name (the name part must be non-empty and hold "
                          "no quotes, backslashes or control characters)",
                      hint);
  }
  if (invalid_utf8_offset(file_name) != std::string_view::npos)
    throw usage_error(path + ": the file name is not valid UTF-8", hint);
  if (auto nul = text.find('\0'); nul != std::string_view::npos) {
    throw usage_error(path + ": a NUL byte at " + byte_position(text, nul),
                      "SQL text cannot hold NUL bytes; the file is probably binary or UTF-16");
  }
  if (auto bad = invalid_utf8_offset(text); bad != std::string_view::npos) {
    throw usage_error(path + ": invalid UTF-8 at " + byte_position(text, bad),
                      "save the file as UTF-8");
  }
  if (text.substr(0, 3) == "\xef\xbb\xbf") {
    throw usage_error(path + ": the file starts with a UTF-8 byte order mark (BOM)",
                      "save the file as UTF-8 without a BOM; dbmate would not see the "
                      "'-- migrate:up' line after it either");
  }

  // Find the marker lines.
  struct found_marker {
    marker what;
    std::size_t line_begin, line_end, line_number;
  };
  std::vector<found_marker> markers;
  std::size_t line_number = 1;
  for (std::size_t begin = 0; begin < text.size();) {
    auto newline = text.find('\n', begin);
    std::size_t end = newline == std::string_view::npos ? text.size() : newline + 1;
    std::string where = path + ":" + std::to_string(line_number);
    if (auto found = parse_marker(text.substr(begin, end - begin), where))
      markers.push_back({*found, begin, end, line_number});
    begin = end;
    ++line_number;
  }
  const found_marker* up = nullptr;
  const found_marker* down = nullptr;
  for (const auto& found : markers) {
    std::string where = path + ":" + std::to_string(found.line_number);
    if (found.what.which == marker::kind::up) {
      if (up != nullptr)
        throw usage_error(where + ": a second '-- migrate:up' section");
      if (down != nullptr)
        throw usage_error(where + ": '-- migrate:up' must come before '-- migrate:down'");
      up = &found;
    } else {
      if (down != nullptr)
        throw usage_error(where + ": a second '-- migrate:down' section");
      if (up == nullptr)
        throw usage_error(where + ": '-- migrate:down' must come after '-- migrate:up'");
      down = &found;
    }
  }
  if (up == nullptr) {
    throw usage_error(path + ": no '-- migrate:up' section",
                      "a migration file has a '-- migrate:up' line, its SQL, then a "
                      "'-- migrate:down' line and the SQL that undoes it");
  }
  if (down == nullptr) {
    throw usage_error(path + ": no '-- migrate:down' section",
                      "add a '-- migrate:down' line after the up SQL (its section may be empty)");
  }
  if (!only_comments(text.substr(0, up->line_begin))) {
    throw usage_error(path + ": SQL before '-- migrate:up' would never run",
                      "move it into the up section or turn it into a comment");
  }
  std::tie(parsed.up_sql, parsed.up_line) =
      trimmed_section(text, up->line_end, down->line_begin, up->line_number + 1);
  std::tie(parsed.down_sql, parsed.down_line) =
      trimmed_section(text, down->line_end, text.size(), down->line_number + 1);
  if (only_comments(parsed.up_sql))
    throw usage_error(path + ": the up section has no SQL");
  refuse_transaction_control(path, parsed.up_sql, parsed.up_line, "up");
  refuse_transaction_control(path, parsed.down_sql, parsed.down_line, "down");
  parsed.up_transaction = up->what.transaction;
  parsed.down_transaction = down->what.transaction;
  parsed.checksum = sha256_hex(parsed.up_sql);
  return parsed;
}

module_catalog module_catalog::load(const std::vector<std::string>& migrations_dirs) {
  if (sodium_init() < 0)
    throw error(error_kind::internal, "libsodium could not be initialised");
  module_catalog catalog;
  std::map<std::string, schema_module> modules;
  for (const auto& file : detail::embedded_sql_files()) {
    std::string name{file.module};
    auto [it, inserted] = modules.try_emplace(name);
    if (inserted) {
      it->second.name = name;
      it->second.origin = "built in";
      if (name != k_core)
        it->second.depends_on.emplace_back(k_core);
    }
    std::string file_name{file.file_name};
    it->second.migrations.push_back(
        parse_migration(name, file_name, file.text, name + "/" + file_name));
  }
  for (auto& [name, module] : modules)
    sort_and_check_versions(module);

  for (const auto& dir_name : migrations_dirs) {
    fs::path dir{dir_name};
    std::error_code error;
    if (!fs::is_directory(dir, error)) {
      throw usage_error("--migrations-dir " + dir_name + " is not a directory",
                        "pass a directory with one subdirectory per module");
    }
    std::vector<fs::path> module_dirs;
    for (const auto& entry : fs::directory_iterator{dir, error}) {
      auto file_name = entry.path().filename().string();
      if (!file_name.empty() && file_name.front() == '.')
        continue;
      if (entry.is_directory()) {
        module_dirs.push_back(entry.path());
      } else if (entry.path().extension() == ".sql") {
        throw usage_error(entry.path().string() + ": migration file outside a module directory",
                          "--migrations-dir holds one subdirectory per module, e.g. " + dir_name +
                              "/app/20260301120000_create_orders.sql");
      }
    }
    if (error)
      throw usage_error("cannot read --migrations-dir " + dir_name + ": " + error.message());
    std::sort(module_dirs.begin(), module_dirs.end());
    for (const auto& module_dir : module_dirs) {
      auto name = module_dir.filename().string();
      if (!valid_module_name(name)) {
        throw usage_error(module_dir.string() + ": '" + name + "' is not a valid module name",
                          "module names use letters, digits, '_', '-' and '.'");
      }
      auto existing = modules.find(name);
      if (existing != modules.end()) {
        throw usage_error("module " + name + " in " + module_dir.string() +
                              " clashes with the module of the same name from " +
                              existing->second.origin,
                          "rename the directory");
      }
      modules.emplace(name, load_directory_module(module_dir, name, dir_name));
    }
  }
  for (auto& [name, module] : modules)
    catalog.m_modules.push_back(std::move(module));
  return catalog;
}

std::string create_migration_file(const std::string& migrations_dir, const std::string& module,
                                  const std::string& name) {
  bool name_ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
  if (!name_ok) {
    throw usage_error("invalid migration name '" + name + "'",
                      "a name uses lower-case letters, digits and '_', e.g. create_orders");
  }
  if (!valid_module_name(module)) {
    throw usage_error("'" + module + "' is not a valid module name",
                      "module names use letters, digits, '_', '-' and '.'");
  }
  for (const auto& file : detail::embedded_sql_files()) {
    if (file.module == module) {
      throw usage_error("module " + module + " is built into pgkit",
                        "give your module a name of its own, e.g. app");
    }
  }
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char version[16];
  std::strftime(version, sizeof version, "%Y%m%d%H%M%S", &utc);

  fs::path dir = fs::path{migrations_dir} / module;
  std::error_code failure;
  std::string newest;
  if (fs::is_directory(dir, failure)) {
    for (const auto& entry : fs::directory_iterator{dir, failure}) {
      auto file_name = entry.path().filename().string();
      bool versioned = file_name.size() > 15 && file_name[14] == '_' &&
                       std::all_of(file_name.begin(), file_name.begin() + 14,
                                   [](char c) { return c >= '0' && c <= '9'; });
      if (versioned && entry.path().extension() == ".sql")
        newest = std::max(newest, file_name.substr(0, 14));
    }
  }
  if (!newest.empty() && newest >= version) {
    throw usage_error("the new version " + std::string{version} +
                          " would not sort after the newest migration of module " + module +
                          " in " + dir.string() + " (" + newest + ")",
                      newest == version ? "wait a second and try again"
                                        : "check the system clock, or rename the newer file");
  }
  fs::create_directories(dir, failure);
  if (failure)
    throw error(error_kind::internal, "cannot create " + dir.string() + ": " + failure.message());
  auto path = (dir / (std::string{version} + "_" + name + ".sql")).string();
  std::FILE* file = std::fopen(path.c_str(), "wx");
  if (file == nullptr)
    throw error(error_kind::internal, "cannot create " + path + ": " + std::strerror(errno));
  const std::string text = "-- migrate:up\n\n\n-- migrate:down\n\n";
  bool written = std::fwrite(text.data(), 1, text.size(), file) == text.size();
  if (std::fclose(file) != 0 || !written)
    throw error(error_kind::internal, "cannot write " + path);
  return path;
}

std::vector<std::string> module_catalog::names() const {
  std::vector<std::string> names;
  for (const auto& module : m_modules)
    names.push_back(module.name);
  return names;
}

const schema_module* module_catalog::find(std::string_view name) const noexcept {
  for (const auto& module : m_modules) {
    if (module.name == name)
      return &module;
  }
  return nullptr;
}

std::vector<const schema_module*> module_catalog::select(
    const std::vector<std::string>& names) const {
  std::string known = "known modules: " + join(this->names(), ", ");
  if (names.empty())
    throw usage_error("name at least one module; " + known);
  std::set<std::string> chosen;
  std::vector<std::string> unknown;
  std::vector<std::string> queue{names.begin(), names.end()};
  while (!queue.empty()) {
    auto name = queue.back();
    queue.pop_back();
    const auto* module = find(name);
    if (module == nullptr) {
      if (std::find(unknown.begin(), unknown.end(), name) == unknown.end())
        unknown.push_back(name);
      continue;
    }
    if (!chosen.insert(name).second)
      continue;
    queue.insert(queue.end(), module->depends_on.begin(), module->depends_on.end());
  }
  if (!unknown.empty()) {
    std::sort(unknown.begin(), unknown.end());
    std::string hint =
        "modules of your own come from --migrations-dir DIR (one subdirectory per module)";
    if (auto nearest = nearest_word(unknown.front(), this->names()); nearest && unknown.size() == 1)
      hint = "did you mean '" + *nearest + "'? " + hint;
    throw usage_error(std::string{unknown.size() == 1 ? "unknown module " : "unknown modules "} +
                          join(unknown, ", ") + "; " + known,
                      hint);
  }
  // Dependencies first: repeatedly take the modules whose dependencies are all taken.
  std::vector<const schema_module*> ordered;
  std::set<std::string> taken;
  while (ordered.size() < chosen.size()) {
    bool progressed = false;
    for (const auto& name : chosen) {
      if (taken.count(name) != 0)
        continue;
      const auto* module = find(name);
      bool ready = std::all_of(module->depends_on.begin(), module->depends_on.end(),
                               [&](const std::string& d) { return taken.count(d) != 0; });
      if (ready) {
        ordered.push_back(module);
        taken.insert(name);
        progressed = true;
      }
    }
    if (!progressed)
      throw usage_error("the selected modules depend on each other in a cycle");
  }
  return ordered;
}

std::vector<const migration*> run_order(const std::vector<const schema_module*>& modules) {
  std::map<std::string, std::size_t> rank;
  for (std::size_t i = 0; i < modules.size(); ++i)
    rank[modules[i]->name] = i;
  std::vector<const migration*> order;
  for (const auto* module : modules) {
    for (const auto& dependency : module->depends_on) {
      auto it = std::find_if(modules.begin(), modules.end(),
                             [&](const schema_module* m) { return m->name == dependency; });
      if (it == modules.end() || (*it)->migrations.empty() || module->migrations.empty())
        continue;
      const auto& first = module->migrations.front();
      const auto& needed = (*it)->migrations.front();
      if (first.version <= needed.version) {
        throw usage_error("module " + module->name + " starts with " + first.path +
                              ", which is not newer than " + needed.path + " of module " +
                              dependency + " that it depends on",
                          "give the module's first migration a later version");
      }
    }
    for (const auto& m : module->migrations)
      order.push_back(&m);
  }
  std::stable_sort(order.begin(), order.end(), [&](const migration* a, const migration* b) {
    if (a->version != b->version)
      return a->version < b->version;
    return rank[a->module] < rank[b->module];
  });
  for (std::size_t i = 1; i < order.size(); ++i) {
    if (order[i - 1]->version == order[i]->version) {
      throw usage_error("version " + order[i]->version + " is used by " + order[i - 1]->path +
                            " and " + order[i]->path,
                        "versions must be unique across modules; rename one of the files");
    }
  }
  return order;
}

void validate_schema_name(std::string_view schema) {
  const std::string hint =
      "a schema name is 1 to 63 letters, digits, '_' or '$', not starting with a digit or pg_";
  if (schema.empty())
    throw usage_error("the schema name is empty", hint);
  if (schema.size() > 63)
    throw usage_error("schema name '" + std::string{schema} + "' is longer than 63 bytes", hint);
  auto first = static_cast<unsigned char>(schema.front());
  bool valid = (std::isalpha(first) != 0 || first == '_') &&
               std::all_of(schema.begin(), schema.end(), [](char c) {
                 return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '$';
               });
  if (!valid)
    throw usage_error("invalid schema name '" + std::string{schema} + "'", hint);
  if (schema.size() >= 3 && std::tolower(static_cast<unsigned char>(schema[0])) == 'p' &&
      std::tolower(static_cast<unsigned char>(schema[1])) == 'g' && schema[2] == '_') {
    throw usage_error(
        "schema name '" + std::string{schema} + "' starts with pg_, which PostgreSQL reserves",
        hint);
  }
}

std::int64_t migration_lock_key(std::string_view schema) {
  // A fixed prefix keeps the key apart from other uses of the same hash.
  const auto hash = detail::stable_hash("pgkit.migrate:" + std::string{schema});
  return static_cast<std::int64_t>(hash);
}

std::size_t migration_status::pending_count() const {
  std::size_t count = 0;
  for (const auto& module : modules)
    count += module.pending.size();
  return count;
}

std::size_t migration_status::drifted_count() const {
  std::size_t count = 0;
  for (const auto& module : modules)
    count += module.drifted.size();
  return count;
}

std::string render_plain_script(const std::vector<const migration*>& migrations,
                                const std::string& schema) {
  validate_schema_name(schema);
  std::vector<std::string> module_names;
  for (const auto* m : migrations) {
    if (std::find(module_names.begin(), module_names.end(), m->module) == module_names.end())
      module_names.push_back(m->module);
  }
  std::string out = "-- pgkit: " + std::to_string(migrations.size()) + " migration" +
                    (migrations.size() == 1 ? "" : "s") + " of module" +
                    (module_names.size() == 1 ? " " : "s ") + join(module_names, ", ") +
                    " for schema " + detail::quote_identifier(schema) +
                    ".\n-- Run it with: psql -v ON_ERROR_STOP=1 -f FILE\n";
  bool in_transaction = false;
  // The schema is created once, by the first block (psql would print a notice for each
  // CREATE SCHEMA IF NOT EXISTS after it).
  std::string create_schema = detail::create_schema_statement(schema) + ";\n";
  auto take_create_schema = [&create_schema] { return std::exchange(create_schema, {}); };
  const std::string duration = "clock_timestamp() - statement_timestamp()";
  for (const auto* m : migrations) {
    if (m->up_transaction == transaction_mode::outside) {
      if (in_transaction) {
        out += "\nCOMMIT;\n";
        in_transaction = false;
      }
      out += "\n-- " + m->module + " " + m->file_name + " (transaction:false: runs on its own)\n";
      out += take_create_schema();
      for (const auto& statement : detail::migration_settings_statements(schema, {}, "SET"))
        out += statement + ";\n";
      out += detail::with_final_semicolon(m->up_sql) + "\n";
      for (const auto& statement : detail::session_reset_statements({}))
        out += statement + ";\n";
      out += "BEGIN;\n" + detail::record_up_sql(*m, schema, duration) + "\nCOMMIT;\n";
      continue;
    }
    if (!in_transaction) {
      out += "\nBEGIN;\n" + take_create_schema();
      in_transaction = true;
    }
    out += "\n-- " + m->module + " " + m->file_name + "\n";
    for (const auto& statement : detail::migration_settings_statements(schema, {}, "SET LOCAL"))
      out += statement + ";\n";
    out += detail::with_final_semicolon(m->up_sql) + "\n\n";
    out += detail::record_up_sql(*m, schema, duration) + "\n";
  }
  if (in_transaction)
    out += "\nCOMMIT;\n";
  return out;
}

namespace {

// A transaction:false section for dbmate: dbmate sends a section as one string, which the
// server runs as one implicit transaction when it holds several statements, so only a single
// statement can run outside a transaction, and nothing of pgkit's can go with it.
std::string dbmate_outside_section(const migration& m, const std::string& sql,
                                   std::string_view section) {
  auto statements = detail::split_statements(sql);
  if (statements.size() > 1) {
    throw usage_error(m.path + ": its transaction:false " + std::string{section} + " section has " +
                          std::to_string(statements.size()) +
                          " statements, which --format dbmate cannot carry",
                      "dbmate sends a section as one string, which PostgreSQL runs as one "
                      "transaction; split the migration into one file per statement, or use "
                      "pgkit apply or --format plain");
  }
  return "-- migrate:" + std::string{section} + " transaction:false\n" +
         (sql.empty() ? std::string{} : detail::with_final_semicolon(sql) + "\n");
}

std::string dbmate_header(const migration& m, const std::string& schema) {
  return "-- Generated by pgkit print-sql from module " + m.module + ", " + m.file_name +
         ", for schema " + detail::quote_identifier(schema) + ".\n";
}

}  // namespace

std::vector<dbmate_file> render_dbmate_files(const std::vector<const migration*>& migrations,
                                             const std::string& schema) {
  validate_schema_name(schema);
  std::vector<dbmate_file> files;
  const std::string duration = "clock_timestamp() - statement_timestamp()";
  const std::string search_path = detail::search_path_statement(schema, "SET LOCAL") + ";\n";
  std::string setup;
  for (const auto& statement : detail::transaction_setup_statements(schema, {}))
    setup += statement + ";\n";
  const std::string reset =
      "-- search_path is reset at the end so that dbmate records the version in its own "
      "table.\n";
  for (const auto* m : migrations) {
    auto base = m->module + "_" + m->name + ".sql";
    bool outside = m->up_transaction == transaction_mode::outside ||
                   m->down_transaction == transaction_mode::outside;
    if (!outside) {
      dbmate_file file;
      file.file_name = m->version + "_" + base;
      std::string& text = file.text;
      text = dbmate_header(*m, schema) + reset + "\n-- migrate:up\n" + setup;
      text += "\n" + detail::with_final_semicolon(m->up_sql) + "\n\n";
      text += detail::record_up_sql(*m, schema, duration) + "\n";
      text += "RESET search_path;\n\n";
      text += "-- migrate:down\n" + search_path;
      text += detail::record_down_sql(*m, schema) + "\n";
      if (!m->down_sql.empty())
        text += "\n" + detail::with_final_semicolon(m->down_sql) + "\n";
      text += "\nRESET search_path;\n";
      files.push_back(std::move(file));
      continue;
    }
    // Two files: the migration (version + "0"), then its bookkeeping (version + "1"); both
    // sort between the neighbouring 14-digit versions, which are unique across modules.
    dbmate_file work;
    work.file_name = m->version + "0_" + base;
    work.text = dbmate_header(*m, schema) +
                "-- A transaction:false section runs alone, without pgkit's search_path: run "
                "dbmate with\n-- search_path=public," +
                schema + " in its URL so that unqualified names find pgkit's schema.\n\n";
    if (m->up_transaction == transaction_mode::outside) {
      work.text += dbmate_outside_section(*m, m->up_sql, "up");
    } else {
      work.text += "-- migrate:up\n" + setup + "\n" + detail::with_final_semicolon(m->up_sql) +
                   "\nRESET search_path;\n";
    }
    work.text += "\n";
    if (m->down_transaction == transaction_mode::outside) {
      work.text += dbmate_outside_section(*m, m->down_sql, "down");
    } else {
      work.text += "-- migrate:down\n" + search_path +
                   (m->down_sql.empty() ? "" : detail::with_final_semicolon(m->down_sql) + "\n") +
                   "RESET search_path;\n";
    }
    files.push_back(std::move(work));

    dbmate_file record;
    record.file_name = m->version + "1_" + m->module + "_" + m->name + "_pgkit_record.sql";
    record.text = dbmate_header(*m, schema) + "-- pgkit's bookkeeping of " + work.file_name +
                  ".\n\n-- migrate:up\n" + detail::record_up_sql(*m, schema, duration) +
                  "\n\n-- migrate:down\n" + detail::record_down_sql(*m, schema) + "\n";
    files.push_back(std::move(record));
  }
  return files;
}

}  // namespace pgkit
