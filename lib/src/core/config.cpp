#include "pgkit/config.hpp"

#include <libpq-fe.h>

#include <toml++/toml.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>

#include "core/suggest.hpp"
#include "pgkit/error.hpp"
#include "pgkit/redact.hpp"

namespace pgkit {
namespace {

constexpr std::chrono::seconds k_default_connect_timeout{10};

std::string join(const std::vector<std::string>& words) {
  std::string text;
  for (const auto& word : words)
    text += (text.empty() ? "" : ", ") + word;
  return text;
}

// --- libpq conninfo --------------------------------------------------------------------------

struct conninfo_options_deleter {
  void operator()(PQconninfoOption* options) const { PQconninfoFree(options); }
};

// Removes what looks like the password of a URL or conninfo string from a libpq message that
// quotes part of that string.
std::string without_password(std::string message, const std::string& url) {
  std::vector<std::string> secrets;
  auto scheme = url.find("://");
  if (scheme != std::string::npos) {
    auto at = url.find('@', scheme + 3);
    auto colon = url.find(':', scheme + 3);
    if (at != std::string::npos && colon != std::string::npos && colon < at)
      secrets.push_back(url.substr(colon + 1, at - colon - 1));
  }
  for (auto at = url.find("password"); at != std::string::npos; at = url.find("password", at + 1)) {
    auto equals = url.find('=', at);
    if (equals == std::string::npos)
      break;
    auto end = url.find_first_of(" &", equals + 1);
    secrets.push_back(url.substr(equals + 1, end == std::string::npos ? end : end - equals - 1));
  }
  for (const auto& secret : secrets) {
    if (secret.empty())
      continue;
    for (auto at = message.find(secret); at != std::string::npos; at = message.find(secret, at))
      message.replace(at, secret.size(), "***");
  }
  return redact_secrets(message);
}

// The key=value pairs that libpq would use for `url`, in libpq's order.
std::vector<std::pair<std::string, std::string>> parse_conninfo(const std::string& url,
                                                                const std::string& source) {
  char* raw_error = nullptr;
  std::unique_ptr<PQconninfoOption, conninfo_options_deleter> options{
      PQconninfoParse(url.c_str(), &raw_error)};
  if (!options) {
    std::string reason = raw_error != nullptr ? raw_error : "out of memory";
    PQfreemem(raw_error);
    while (!reason.empty() && (reason.back() == '\n' || reason.back() == ' '))
      reason.pop_back();
    throw config_error(
        "the URL of " + source +
            " is not a valid PostgreSQL URL or conninfo string: " + without_password(reason, url),
        "write it as postgresql://user@host:port/database");
  }
  std::vector<std::pair<std::string, std::string>> pairs;
  for (auto* option = options.get(); option->keyword != nullptr; ++option) {
    if (option->val != nullptr && *option->val != '\0')
      pairs.emplace_back(option->keyword, option->val);
  }
  return pairs;
}

void set_pair(std::vector<std::pair<std::string, std::string>>& pairs, const std::string& key,
              const std::string& value) {
  for (auto& pair : pairs) {
    if (pair.first == key) {
      pair.second = value;
      return;
    }
  }
  pairs.emplace_back(key, value);
}

const std::string* find_pair(const std::vector<std::pair<std::string, std::string>>& pairs,
                             std::string_view key) {
  for (const auto& pair : pairs) {
    if (pair.first == key)
      return &pair.second;
  }
  return nullptr;
}

std::string quote_conninfo_value(const std::string& value) {
  std::string quoted = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\')
      quoted += '\\';
    quoted += c;
  }
  return quoted + "'";
}

std::vector<std::pair<std::string, std::string>> merged_pairs(const connection_config& config) {
  auto pairs = parse_conninfo(config.url, config.source.empty() ? "the connection" : config.source);
  if (config.host)
    set_pair(pairs, "host", *config.host);
  if (config.port)
    set_pair(pairs, "port", std::to_string(*config.port));
  if (config.database)
    set_pair(pairs, "dbname", *config.database);
  if (config.username)
    set_pair(pairs, "user", *config.username);
  if (config.password)
    set_pair(pairs, "password", *config.password);
  if (config.sslmode)
    set_pair(pairs, "sslmode", *config.sslmode);
  if (config.application_name)
    set_pair(pairs, "application_name", *config.application_name);
  if (config.connect_timeout)
    set_pair(pairs, "connect_timeout", std::to_string(config.connect_timeout->count()));
  else if (find_pair(pairs, "connect_timeout") == nullptr)
    set_pair(pairs, "connect_timeout", std::to_string(k_default_connect_timeout.count()));
  if (find_pair(pairs, "fallback_application_name") == nullptr)
    set_pair(pairs, "fallback_application_name", "pgkit");
  return pairs;
}

std::string percent_encode(std::string_view text) {
  static const char* const k_hex = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) != 0 || c == '-' || c == '.' || c == '_' || c == '~' || c == ',') {
      out += c;
    } else {
      out += '%';
      out += k_hex[byte >> 4];
      out += k_hex[byte & 0x0F];
    }
  }
  return out;
}

// --- ${VAR} expansion and database.toml -------------------------------------------------------

enum class value_type { string, integer };

struct key_spec {
  std::string_view name;
  value_type type;
};

const key_spec k_connection_keys[] = {
    {"url", value_type::string},
    {"driver", value_type::string},
    {"host", value_type::string},
    {"port", value_type::integer},
    {"database", value_type::string},
    {"username", value_type::string},
    {"password", value_type::string},
    {"sslmode", value_type::string},
    {"application_name", value_type::string},
    {"schema", value_type::string},
    {"pooler", value_type::string},
    {"replica", value_type::string},
    {"pool_size", value_type::integer},
    {"min_idle", value_type::integer},
    {"acquire_timeout_ms", value_type::integer},
    {"max_lifetime_s", value_type::integer},
    {"idle_timeout_s", value_type::integer},
    {"connect_timeout_s", value_type::integer},
};

std::vector<std::string> connection_key_names() {
  std::vector<std::string> names;
  for (const auto& key : k_connection_keys)
    names.emplace_back(key.name);
  return names;
}

std::string_view type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    default:
      return "nothing";
  }
}

// Reads one [connections.<name>] table.
class connection_reader {
 public:
  connection_reader(const std::string& path, const std::string& name, const env_lookup& env)
      : m_path(path), m_name(name), m_env(env) {}

  // "database.toml:3:7: " for a node that has a source position.
  std::string where(const toml::node& node) const {
    const auto& begin = node.source().begin;
    if (begin.line == 0)
      return m_path + ": ";
    return m_path + ":" + std::to_string(begin.line) + ":" + std::to_string(begin.column) + ": ";
  }

  std::string key_path(std::string_view key) const {
    return "connections." + m_name + "." + std::string{key};
  }

  std::string read_string(std::string_view key, const toml::node& node) const {
    if (!node.is_string()) {
      throw config_error(where(node) + key_path(key) + " must be a string, not " +
                         std::string{type_name(node)});
    }
    try {
      return expand_variables(node.as_string()->get(), m_env, key_path(key));
    } catch (const config_error& e) {
      throw config_error(where(node) + e.what(), e.hint());
    }
  }

  std::int64_t read_integer(std::string_view key, const toml::node& node, std::int64_t minimum,
                            std::int64_t maximum) const {
    std::int64_t value = 0;
    if (node.is_integer()) {
      value = node.as_integer()->get();
    } else if (node.is_string() && node.as_string()->get().find("${") != std::string::npos) {
      // An integer may come from the environment: pool_size = "${POOL_SIZE:-10}".
      auto text = read_string(key, node);
      char* end = nullptr;
      errno = 0;
      long long parsed = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || end != text.c_str() + text.size() || errno != 0) {
        throw config_error(where(node) + key_path(key) + " must be an integer, but '" +
                           redact_secrets(text) + "' (after expanding variables) is not one");
      }
      value = parsed;
    } else {
      throw config_error(where(node) + key_path(key) + " must be an integer, not " +
                         std::string{type_name(node)});
    }
    if (value < minimum || value > maximum) {
      throw config_error(where(node) + key_path(key) + " must be between " +
                         std::to_string(minimum) + " and " + std::to_string(maximum) + ", not " +
                         std::to_string(value));
    }
    return value;
  }

  connection_config read(const toml::table& table) const {
    connection_config config;
    config.name = m_name;
    config.source = m_path + " [connections." + m_name + "]";
    std::optional<std::string> driver;
    const toml::node* pool_size_node = nullptr;
    for (const auto& [raw_key, node] : table) {
      std::string key{raw_key.str()};
      const key_spec* spec = nullptr;
      for (const auto& candidate : k_connection_keys) {
        if (candidate.name == key)
          spec = &candidate;
      }
      if (spec == nullptr) {
        auto suggestion = nearest_word(key, connection_key_names());
        std::string hint = suggestion ? "did you mean '" + *suggestion + "'?"
                                      : "valid keys: " + join(connection_key_names());
        const auto& begin = raw_key.source().begin;
        std::string at = begin.line == 0 ? where(node)
                                         : m_path + ":" + std::to_string(begin.line) + ":" +
                                               std::to_string(begin.column) + ": ";
        throw config_error(at + "unknown key '" + key + "' in [connections." + m_name + "]", hint);
      }
      constexpr auto int_max = std::numeric_limits<int>::max();
      if (key == "url") {
        config.url = read_string(key, node);
      } else if (key == "driver") {
        driver = read_string(key, node);
        if (*driver != "postgres" && *driver != "postgres_url") {
          throw config_error(where(node) + key_path(key) + " must be \"postgres\" or " +
                             "\"postgres_url\", not \"" + *driver + "\"");
        }
      } else if (key == "host") {
        config.host = read_string(key, node);
      } else if (key == "port") {
        config.port = static_cast<int>(read_integer(key, node, 1, 65535));
      } else if (key == "database") {
        config.database = read_string(key, node);
      } else if (key == "username") {
        config.username = read_string(key, node);
      } else if (key == "password") {
        config.password = read_string(key, node);
      } else if (key == "sslmode") {
        config.sslmode = read_string(key, node);
      } else if (key == "application_name") {
        config.application_name = read_string(key, node);
      } else if (key == "schema") {
        config.schema = read_string(key, node);
        if (config.schema.empty())
          throw config_error(where(node) + key_path(key) + " must not be empty");
      } else if (key == "pooler") {
        auto pooler = read_string(key, node);
        if (pooler == "none") {
          config.pooler = pooler_mode::none;
        } else if (pooler == "pgbouncer-transaction") {
          config.pooler = pooler_mode::pgbouncer_transaction;
        } else {
          throw config_error(where(node) + key_path(key) + " must be \"none\" or " +
                             "\"pgbouncer-transaction\", not \"" + pooler + "\"");
        }
      } else if (key == "replica") {
        config.replica = read_string(key, node);
        if (config.replica == m_name)
          throw config_error(where(node) + key_path(key) + " must name another connection");
      } else if (key == "pool_size") {
        config.pool_size = static_cast<std::size_t>(read_integer(key, node, 1, 10000));
        pool_size_node = &node;
      } else if (key == "min_idle") {
        config.min_idle = static_cast<std::size_t>(read_integer(key, node, 0, 10000));
      } else if (key == "acquire_timeout_ms") {
        config.acquire_timeout = std::chrono::milliseconds{read_integer(key, node, 0, int_max)};
      } else if (key == "max_lifetime_s") {
        config.max_lifetime = std::chrono::seconds{read_integer(key, node, 0, int_max)};
      } else if (key == "idle_timeout_s") {
        config.idle_timeout = std::chrono::seconds{read_integer(key, node, 0, int_max)};
      } else if (key == "connect_timeout_s") {
        config.connect_timeout = std::chrono::seconds{read_integer(key, node, 0, int_max)};
      }
    }
    if (driver == "postgres_url" && config.url.empty()) {
      throw config_error(
          m_path + ": [connections." + m_name + "] has driver = \"postgres_url\" but no url",
          "add url = \"postgresql://user@host/database\"");
    }
    if (config.min_idle > config.pool_size) {
      throw config_error((pool_size_node != nullptr ? where(*pool_size_node) : m_path + ": ") +
                         key_path("min_idle") + " (" + std::to_string(config.min_idle) +
                         ") must not exceed pool_size (" + std::to_string(config.pool_size) + ")");
    }
    config.conninfo();  // a malformed url is a configuration error now, not at first connect
    return config;
  }

 private:
  const std::string& m_path;
  const std::string& m_name;
  const env_lookup& m_env;
};

}  // namespace

std::string_view to_string(pooler_mode mode) noexcept {
  switch (mode) {
    case pooler_mode::none:
      return "none";
    case pooler_mode::pgbouncer_transaction:
      return "pgbouncer-transaction";
  }
  return "none";
}

std::string connection_config::conninfo() const {
  std::string text;
  for (const auto& [key, value] : merged_pairs(*this))
    text += (text.empty() ? "" : " ") + key + "=" + quote_conninfo_value(value);
  return text;
}

std::string connection_config::describe() const {
  auto pairs = merged_pairs(*this);
  auto* shown_host = find_pair(pairs, "host");
  if (shown_host == nullptr)
    shown_host = find_pair(pairs, "hostaddr");
  auto* shown_port = find_pair(pairs, "port");
  auto* shown_database = find_pair(pairs, "dbname");
  auto* shown_user = find_pair(pairs, "user");
  if (shown_host == nullptr && shown_port == nullptr && shown_database == nullptr &&
      shown_user == nullptr) {
    return "libpq defaults";
  }
  std::string text = "postgresql://";
  // DESIGN.md's redacted form: a password that is set shows as ***, never as itself.
  auto* shown_password = find_pair(pairs, "password");
  if (shown_user != nullptr) {
    text += percent_encode(*shown_user);
    if (shown_password != nullptr && !shown_password->empty())
      text += ":***";
    text += "@";
  }
  if (shown_host != nullptr)
    text += percent_encode(*shown_host);
  if (shown_port != nullptr)
    text += ":" + *shown_port;
  if (shown_database != nullptr)
    text += "/" + percent_encode(*shown_database);
  return text;
}

connection_config config_from_url(const std::string& url, const std::string& source) {
  connection_config config;
  config.url = url;
  config.source = source;
  config.conninfo();
  return config;
}

env_lookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    if (const char* value = std::getenv(name.c_str()); value != nullptr)
      return std::string{value};
    return std::nullopt;
  };
}

std::string expand_variables(std::string_view text, const env_lookup& env, std::string_view what) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      out += text[i++];
      continue;
    }
    auto close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      throw config_error(std::string{what} + " has a '${' without a closing '}'",
                         "write ${NAME} or ${NAME:-fallback}, or $${ for a literal ${");
    }
    std::string_view inner = text.substr(i + 2, close - i - 2);
    std::optional<std::string_view> fallback;
    auto separator = inner.find(":-");
    std::string name{inner.substr(0, separator)};
    if (separator != std::string_view::npos)
      fallback = inner.substr(separator + 2);
    bool valid_name = !name.empty() && std::isdigit(static_cast<unsigned char>(name[0])) == 0;
    for (char c : name) {
      if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '_')
        valid_name = false;
    }
    if (!valid_name) {
      throw config_error(std::string{what} + " refers to '${" + std::string{inner} +
                             "}', which is not a variable name",
                         "write ${NAME} or ${NAME:-fallback}, or $${ for a literal ${");
    }
    std::optional<std::string> value = env ? env(name) : std::nullopt;
    if (value && !value->empty()) {
      out += *value;
    } else if (fallback) {
      out += *fallback;
    } else if (value) {
      out += *value;  // set but empty, and no fallback: the empty value
    } else {
      throw config_error(std::string{what} + " uses ${" + name + "}, but " + name + " is not set",
                         "set " + name + " in the environment, or write ${" + name + ":-fallback}");
    }
    i = close + 1;
  }
  return out;
}

std::vector<std::string> config_file::names() const {
  std::vector<std::string> names;
  for (const auto& [name, config] : m_connections)
    names.push_back(name);
  return names;
}

const connection_config& config_file::connection(const std::string& name) const {
  if (auto found = m_connections.find(name); found != m_connections.end())
    return found->second;
  if (m_connections.empty()) {
    throw config_error(m_path + " defines no connections, so it has no '" + name + "'",
                       "add a [connections." + name + "] table with a url");
  }
  // Bounded, whatever the file and the name: a few names and a cut name, not 280 KB.
  auto known = names();
  auto suggestion = nearest_word(name, known);
  constexpr std::size_t names_shown = 20;
  std::string defined;
  if (known.size() > names_shown) {
    auto more = known.size() - names_shown;
    known.resize(names_shown);
    defined = join(known) + " and " + std::to_string(more) + " more";
  } else {
    defined = join(known);
  }
  std::string shown = name.size() <= 80 ? name : name.substr(0, 80) + "...";
  std::string hint = suggestion ? "did you mean '" + *suggestion + "'?"
                                : "add a [connections." + shown + "] table or use one of these";
  throw config_error(m_path + " has no connection '" + shown + "'; it defines: " + defined, hint);
}

config_file parse_config(std::string_view toml_text, const std::string& path,
                         const env_lookup& env) {
  toml::table root;
  try {
    root = toml::parse(toml_text, path);
  } catch (const toml::parse_error& e) {
    const auto& begin = e.source().begin;
    throw config_error(path + ":" + std::to_string(begin.line) + ":" +
                           std::to_string(begin.column) + ": " + std::string{e.description()},
                       "fix the TOML syntax at that line and column");
  }
  config_file file;
  file.m_path = path;
  for (const auto& [raw_key, node] : root) {
    std::string key{raw_key.str()};
    const auto& begin = raw_key.source().begin;
    std::string at =
        path + ":" + std::to_string(begin.line) + ":" + std::to_string(begin.column) + ": ";
    if (key != "connections") {
      auto suggestion = nearest_word(key, {"connections"});
      throw config_error(at + "unknown top-level key '" + key + "'",
                         suggestion ? "did you mean 'connections'?"
                                    : "connections are defined as [connections.<name>] tables");
    }
    const auto* connections = node.as_table();
    if (connections == nullptr) {
      throw config_error(at + "connections must be a table, not " + std::string{type_name(node)},
                         "define each connection as a [connections.<name>] table");
    }
    for (const auto& [raw_name, connection_node] : *connections) {
      std::string name{raw_name.str()};
      const auto* table = connection_node.as_table();
      if (table == nullptr) {
        const auto& name_begin = raw_name.source().begin;
        throw config_error(path + ":" + std::to_string(name_begin.line) + ":" +
                               std::to_string(name_begin.column) + ": connections." + name +
                               " must be a table, not " + std::string{type_name(connection_node)},
                           "write it as a [connections." + name + "] table");
      }
      file.m_connections.emplace(name, connection_reader{path, name, env}.read(*table));
    }
  }
  for (const auto& [name, config] : file.m_connections) {
    if (!config.replica.empty() && file.m_connections.count(config.replica) == 0) {
      throw config_error(path + ": [connections." + name + "] replica = \"" + config.replica +
                             "\" names no connection in this file",
                         "add a [connections." + config.replica + "] table for the replica " +
                             "(known: " + join(file.names()) + ")");
    }
  }
  return file;
}

config_file load_config(const std::string& path, const env_lookup& env) {
  // Checked before opening: opening a FIFO blocks, and /dev/zero never ends.
  std::error_code status_error;
  auto status = std::filesystem::status(path, status_error);
  if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status)) {
    throw config_error("cannot read the configuration file " + path +
                           ": it is not a regular file (a directory, a device or a pipe)",
                       "pass --config FILE with an existing database.toml");
  }
  std::ifstream in{path, std::ios::binary};
  if (!in) {
    throw config_error(
        "cannot read the configuration file " + path + ": " +
            (std::filesystem::exists(path) ? "permission denied or not a file" : "no such file"),
        "pass --config FILE with an existing database.toml");
  }
  std::string text(max_config_file_bytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > max_config_file_bytes) {
    throw config_error("the configuration file " + path + " is larger than " +
                           std::to_string(max_config_file_bytes / 1024 / 1024) + " MiB",
                       "a database.toml holds connection settings only; pass the right --config");
  }
  return parse_config(text, path, env);
}

std::vector<std::string> default_config_files() {
  return {"database.toml", "config/database.toml"};
}

connection_config resolve_connection(const connection_request& request, const env_lookup& env) {
  if (!request.addr.empty())
    return config_from_url(request.addr, "--addr");
  if (!request.database_url.empty())
    return config_from_url(request.database_url, "DATABASE_URL");
  if (!request.config_file.empty())
    return load_config(request.config_file, env).connection(request.connection);
  for (const auto& candidate : request.search) {
    std::error_code ignored;
    if (std::filesystem::exists(candidate, ignored))
      return load_config(candidate, env).connection(request.connection);
  }
  if (request.connection != "main") {
    throw config_error("connection '" + request.connection +
                           "' was asked for, but there is no configuration file (looked for " +
                           join(request.search) + ")",
                       "create database.toml with a [connections." + request.connection +
                           "] table, or pass --config FILE");
  }
  auto config = config_from_url("", "libpq defaults");
  return config;
}

std::string resolve_schema(const std::string& requested, const connection_config& config) {
  if (!requested.empty())
    return requested;
  if (!config.schema.empty())
    return config.schema;
  return "pgkit";
}

}  // namespace pgkit
