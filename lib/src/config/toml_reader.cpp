// The database.toml reader: the key table (each key's name, value type and setter), the reading
// of one [connections.<name>] table through it with the checks across keys, and parse_config.

#include "config/toml_reader.hpp"

#include <toml++/toml.h>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "core/suggest.hpp"
#include "pgkit/config.hpp"
#include "pgkit/error.hpp"
#include "pgkit/redact.hpp"

namespace pgkit {
namespace {

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

// The file and connection a value belongs to, for messages and ${VAR} expansion.
struct table_context {
  const std::string& path;
  const std::string& name;
  const env_lookup& env;

  // "database.toml:3:7: " for a node that has a source position.
  std::string where(const toml::node& node) const {
    const auto& begin = node.source().begin;
    if (begin.line == 0)
      return path + ": ";
    return path + ":" + std::to_string(begin.line) + ":" + std::to_string(begin.column) + ": ";
  }

  std::string key_path(std::string_view key) const {
    return "connections." + name + "." + std::string{key};
  }
};

}  // namespace

namespace detail {

struct connection_draft {
  connection_config config;
  std::optional<std::string> driver;  // glimr's driver: checked against url, not kept
  const toml::node* pool_size_node = nullptr;
  const toml::node* host_node = nullptr;
  const toml::node* hosts_node = nullptr;
};

class key_value {
 public:
  key_value(const table_context& context, std::string_view key, const toml::node& node)
      : m_context{context}, m_key{key}, m_node{node} {}

  const toml::node& node() const noexcept { return m_node; }

  // Throws config_error "<where>connections.<name>.<key> <rule>".
  [[noreturn]] void refuse(const std::string& rule) const {
    throw config_error(m_context.where(m_node) + m_context.key_path(m_key) + " " + rule);
  }

  std::string string() const { return read_string(m_node); }

  std::int64_t integer(std::int64_t minimum, std::int64_t maximum) const {
    std::int64_t value = 0;
    if (m_node.is_integer()) {
      value = m_node.as_integer()->get();
    } else if (m_node.is_string() && m_node.as_string()->get().find("${") != std::string::npos) {
      // An integer may come from the environment: pool_size = "${POOL_SIZE:-10}".
      auto text = string();
      char* end = nullptr;
      errno = 0;
      long long parsed = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || end != text.c_str() + text.size() || errno != 0)
        refuse("must be an integer, but '" + redact_secrets(text) +
               "' (after expanding variables) is not one");
      value = parsed;
    } else {
      refuse("must be an integer, not " + std::string{type_name(m_node)});
    }
    if (value < minimum || value > maximum) {
      refuse("must be between " + std::to_string(minimum) + " and " + std::to_string(maximum) +
             ", not " + std::to_string(value));
    }
    return value;
  }

  std::vector<std::string> strings() const {
    const auto* entries = m_node.as_array();
    if (entries == nullptr || entries->empty()) {
      throw config_error(m_context.where(m_node) + m_context.key_path(m_key) +
                             " must be a non-empty array of strings, not " +
                             std::string{type_name(m_node)},
                         "write hosts = [\"db1:5432\", \"db2:5432\"]");
    }
    std::vector<std::string> values;
    for (const auto& entry : *entries)
      values.push_back(read_string(entry));
    return values;
  }

 private:
  std::string read_string(const toml::node& node) const {
    if (!node.is_string()) {
      throw config_error(m_context.where(node) + m_context.key_path(m_key) +
                         " must be a string, not " + std::string{type_name(node)});
    }
    try {
      return expand_variables(node.as_string()->get(), m_context.env, m_context.key_path(m_key));
    } catch (const config_error& e) {
      throw config_error(m_context.where(node) + e.what(), e.hint());
    }
  }

  const table_context& m_context;
  std::string_view m_key;
  const toml::node& m_node;
};

namespace {

constexpr std::int64_t k_int_max = std::numeric_limits<int>::max();

// The setter of a string key: `field` is a std::string or std::optional<std::string>.
template <auto field>
void set_string(const key_value& value, connection_draft& draft) {
  draft.config.*field = value.string();
}

// One entry per key: its name, its value's type and the setter that reads it into the draft.
constexpr connection_key k_connection_keys[] = {
    {"url", value_type::string, set_string<&connection_config::url>},
    {"driver", value_type::string,
     [](const key_value& value, connection_draft& draft) {
       auto driver = value.string();
       if (driver != "postgres" && driver != "postgres_url")
         value.refuse("must be \"postgres\" or \"postgres_url\", not \"" + driver + "\"");
       draft.driver = driver;
     }},
    {"host", value_type::string,
     [](const key_value& value, connection_draft& draft) {
       draft.config.host = value.string();
       draft.host_node = &value.node();
     }},
    {"hosts", value_type::string_array,
     [](const key_value& value, connection_draft& draft) {
       draft.config.hosts = value.strings();
       draft.hosts_node = &value.node();
     }},
    {"target_session_attrs", value_type::string,
     set_string<&connection_config::target_session_attrs>},
    {"port", value_type::integer,
     [](const key_value& value, connection_draft& draft) {
       draft.config.port = static_cast<int>(value.integer(1, 65535));
     }},
    {"database", value_type::string, set_string<&connection_config::database>},
    {"username", value_type::string, set_string<&connection_config::username>},
    {"password", value_type::string, set_string<&connection_config::password>},
    {"sslmode", value_type::string, set_string<&connection_config::sslmode>},
    {"application_name", value_type::string, set_string<&connection_config::application_name>},
    {"schema", value_type::string,
     [](const key_value& value, connection_draft& draft) {
       draft.config.schema = value.string();
       if (draft.config.schema.empty())
         value.refuse("must not be empty");
     }},
    {"schema_file", value_type::string,
     [](const key_value& value, connection_draft& draft) {
       draft.config.schema_file = value.string();
       if (draft.config.schema_file.empty())
         value.refuse("must not be empty");
     }},
    {"pooler", value_type::string,
     [](const key_value& value, connection_draft& draft) {
       auto pooler = value.string();
       if (pooler == to_string(pooler_mode::none))
         draft.config.pooler = pooler_mode::none;
       else if (pooler == to_string(pooler_mode::pgbouncer_transaction))
         draft.config.pooler = pooler_mode::pgbouncer_transaction;
       else
         value.refuse("must be \"none\" or \"pgbouncer-transaction\", not \"" + pooler + "\"");
     }},
    {"replica", value_type::string,
     [](const key_value& value, connection_draft& draft) {
       draft.config.replica = value.string();
       if (draft.config.replica == draft.config.name)
         value.refuse("must name another connection");
     }},
    {"pool_size", value_type::integer,
     [](const key_value& value, connection_draft& draft) {
       draft.config.pool_size = static_cast<std::size_t>(value.integer(1, 10000));
       draft.pool_size_node = &value.node();
     }},
    {"min_idle", value_type::integer,
     [](const key_value& value, connection_draft& draft) {
       draft.config.min_idle = static_cast<std::size_t>(value.integer(0, 10000));
     }},
    {"acquire_timeout_ms", value_type::integer,
     [](const key_value& value, connection_draft& draft) {
       draft.config.acquire_timeout = std::chrono::milliseconds{value.integer(0, k_int_max)};
     }},
    {"max_lifetime_s", value_type::integer,
     [](const key_value& value, connection_draft& draft) {
       draft.config.max_lifetime = std::chrono::seconds{value.integer(0, k_int_max)};
     }},
    {"idle_timeout_s", value_type::integer,
     [](const key_value& value, connection_draft& draft) {
       draft.config.idle_timeout = std::chrono::seconds{value.integer(0, k_int_max)};
     }},
    {"connect_timeout_s", value_type::integer,
     [](const key_value& value, connection_draft& draft) {
       draft.config.connect_timeout = std::chrono::seconds{value.integer(0, k_int_max)};
     }},
};

}  // namespace

connection_key_list connection_keys() noexcept {
  return {k_connection_keys, std::size(k_connection_keys)};
}

}  // namespace detail

namespace {

std::vector<std::string> connection_key_names() {
  std::vector<std::string> names;
  for (const auto& key : detail::connection_keys())
    names.emplace_back(key.name());
  return names;
}

// Reads one [connections.<name>] table: each key through its setter, then the checks that
// involve several keys.
connection_config read_connection(const toml::table& table, const table_context& context) {
  detail::connection_draft draft;
  auto& config = draft.config;
  config.name = context.name;
  config.source = context.path + " [connections." + context.name + "]";
  for (const auto& [raw_key, node] : table) {
    std::string key{raw_key.str()};
    const detail::connection_key* found = nullptr;
    for (const auto& candidate : detail::connection_keys()) {
      if (candidate.name() == key)
        found = &candidate;
    }
    if (found == nullptr) {
      auto suggestion = nearest_word(key, connection_key_names());
      std::string hint = suggestion ? "did you mean '" + *suggestion + "'?"
                                    : "valid keys: " + join_words(connection_key_names());
      const auto& begin = raw_key.source().begin;
      std::string at = begin.line == 0 ? context.where(node)
                                       : context.path + ":" + std::to_string(begin.line) + ":" +
                                             std::to_string(begin.column) + ": ";
      throw config_error(at + "unknown key '" + key + "' in [connections." + context.name + "]",
                         hint);
    }
    found->set(detail::key_value{context, found->name(), node}, draft);
  }
  if (draft.driver == "postgres_url" && config.url.empty()) {
    throw config_error(context.path + ": [connections." + context.name +
                           "] has driver = \"postgres_url\" but no url",
                       "add url = \"postgresql://user@host/database\"");
  }
  if (config.min_idle > config.pool_size) {
    throw config_error((draft.pool_size_node != nullptr ? context.where(*draft.pool_size_node)
                                                        : context.path + ": ") +
                       context.key_path("min_idle") + " (" + std::to_string(config.min_idle) +
                       ") must not exceed pool_size (" + std::to_string(config.pool_size) + ")");
  }
  if (draft.host_node != nullptr && draft.hosts_node != nullptr) {
    throw config_error(context.where(*draft.hosts_node) + context.key_path("hosts") + " and " +
                           context.key_path("host") + " are both given",
                       "keep one: hosts = [\"db1:5432\", \"db2:5432\"] lists every server");
  }
  try {
    config.conninfo();  // a malformed url is a configuration error now, not at first connect
  } catch (const config_error& e) {
    throw config_error(context.path + ": " + e.what(), e.hint());
  }
  return config;
}

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
    defined = join_words(known) + " and " + std::to_string(more) + " more";
  } else {
    defined = join_words(known);
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
      file.m_connections.emplace(name, read_connection(*table, table_context{path, name, env}));
    }
  }
  for (const auto& [name, config] : file.m_connections) {
    if (!config.replica.empty() && file.m_connections.count(config.replica) == 0) {
      throw config_error(path + ": [connections." + name + "] replica = \"" + config.replica +
                             "\" names no connection in this file",
                         "add a [connections." + config.replica + "] table for the replica " +
                             "(known: " + join_words(file.names()) + ")");
    }
  }
  return file;
}

}  // namespace pgkit
