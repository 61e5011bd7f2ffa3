// The URL and conninfo grammar: what libpq would read from a connection string, refused before
// libpq sees it when libpq would read it differently from a person (or quote it in a message),
// the check of libpq's keywords, and the merged conninfo and redacted address of a
// connection_config.

#include "config/conninfo.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include "core/suggest.hpp"
#include "pgkit/error.hpp"

namespace pgkit {
namespace {

constexpr std::chrono::seconds k_default_connect_timeout{10};

struct conninfo_options_deleter {
  void operator()(PQconninfoOption* options) const { PQconninfoFree(options); }
};

bool is_hex(char c) {
  return std::isxdigit(static_cast<unsigned char>(c)) != 0;
}

// Returns true when every '%' in `text` starts an escape libpq can decode (two hex digits, and
// not %00, which libpq refuses).
bool valid_percent_escapes(std::string_view text) {
  for (std::size_t at = text.find('%'); at != std::string_view::npos; at = text.find('%', at + 1)) {
    if (at + 2 >= text.size() || !is_hex(text[at + 1]) || !is_hex(text[at + 2]) ||
        (text[at + 1] == '0' && text[at + 2] == '0')) {
      return false;
    }
  }
  return true;
}

// The keywords libpq knows, plus `ssl`, which libpq accepts in URLs only (ssl=true). Never
// destroyed: a pool's maintenance thread still connecting when the process exits (a pool
// destroyed then detaches it) reads it after static destructors have run.
const std::vector<std::string>& libpq_keywords() {
  static const auto* const keywords = new std::vector<std::string>([] {
    std::vector<std::string> names{"ssl"};
    // Parsing an empty string lists every keyword without reading the environment, which
    // PQconndefaults() would do for the default values.
    char* error = nullptr;
    std::unique_ptr<PQconninfoOption, conninfo_options_deleter> all{PQconninfoParse("", &error)};
    PQfreemem(error);
    for (auto* option = all.get(); option != nullptr && option->keyword != nullptr; ++option)
      names.emplace_back(option->keyword);
    return names;
  }());
  return *keywords;
}

void check_keyword(const std::string& keyword, const std::string& what) {
  const auto& known = libpq_keywords();
  if (std::find(known.begin(), known.end(), keyword) != known.end())
    return;
  auto nearest = nearest_word(keyword, known);
  throw config_error(
      what + " has an unknown parameter '" + keyword + "'",
      nearest ? "did you mean '" + *nearest + "'?" : "see libpq's list of connection parameters");
}

// Refuses a URL that libpq would read differently from how a person reads it: an unencoded '/'
// or '@' in the user name or password moves the end of the authority, so part of the password
// would become a host, a port or a database name (and show up in messages). Also refuses what
// libpq would refuse with a message quoting the URL. Messages never quote the URL's text.
void check_url(std::string_view url, std::size_t scheme_length, const std::string& what) {
  const std::string percent_hint = "write '%' as %25; a '%' must start an escape like %2F";
  std::string_view rest = url.substr(scheme_length);
  // libpq looks for the user info's '@' before the first '/'; a '?' does not stop it.
  auto designator = rest.find_first_of("@/");
  std::size_t host_begin = 0;
  if (designator != std::string_view::npos && rest[designator] == '@') {
    auto user_info = rest.substr(0, designator);
    if (user_info.find('?') != std::string_view::npos) {
      throw config_error(what +
                             " has an '@' in its query that libpq would read as the end of a "
                             "user name",
                         "percent-encode '@' in query values as %40");
    }
    auto colon = user_info.find(':');
    if (!valid_percent_escapes(user_info.substr(0, colon)))
      throw config_error(what + " has an invalid percent escape in its user name", percent_hint);
    if (colon != std::string_view::npos && !valid_percent_escapes(user_info.substr(colon + 1)))
      throw config_error(what + " has an invalid percent escape in its password", percent_hint);
    host_begin = designator + 1;
  }
  auto host_end = rest.find_first_of("/?", host_begin);
  auto host_spec =
      rest.substr(host_begin, host_end == std::string_view::npos ? std::string_view::npos
                                                                 : host_end - host_begin);
  const std::string encode_hint =
      "percent-encode '@' as %40 and '/' as %2F in the user name and password "
      "(postgresql://user:p%40ss%2Fword@host/db)";
  if (host_spec.find('@') != std::string_view::npos)
    throw config_error(what + " has more than one '@' before its host", encode_hint);
  std::string_view path;
  std::string_view query;
  if (host_end != std::string_view::npos) {
    auto after = rest.substr(host_end);
    auto question = after.find('?');
    if (after[0] == '/')
      path = after.substr(1, question == std::string_view::npos ? question : question - 1);
    if (question != std::string_view::npos)
      query = after.substr(question + 1);
  }
  if (path.find('@') != std::string_view::npos || path.find('/') != std::string_view::npos)
    throw config_error(what + " has an '@' or '/' after the '/' that starts its database name",
                       encode_hint + "; in a database name too");
  // An '@' in the query is most often the rest of a password with an unencoded '/' or '?'.
  if (query.find('@') != std::string_view::npos)
    throw config_error(what + " has an '@' in its query",
                       encode_hint + "; in query values too (user=me%40corp)");
  // Each host is name[:port] or [IPv6][:port]; the port must be a number.
  std::size_t entry_begin = 0;
  while (entry_begin <= host_spec.size()) {
    auto entry_end = host_spec.find(',', entry_begin);
    auto entry = host_spec.substr(
        entry_begin, entry_end == std::string_view::npos ? entry_end : entry_end - entry_begin);
    std::string_view port;
    if (!entry.empty() && entry[0] == '[') {
      auto close = entry.find(']');
      if (close == std::string_view::npos || close == 1)
        throw config_error(what +
                               " has an IPv6 host without its closing ']' or with nothing "
                               "inside the brackets",
                           "write an IPv6 host as [::1] or [::1]:5432");
      auto after_close = entry.substr(close + 1);
      if (!after_close.empty() && after_close[0] != ':')
        throw config_error(what + " has text after an IPv6 host's ']' that is not a port",
                           "write an IPv6 host as [::1] or [::1]:5432");
      if (!after_close.empty())
        port = after_close.substr(1);
    } else if (auto colon = entry.find(':'); colon != std::string_view::npos) {
      port = entry.substr(colon + 1);
      if (!valid_percent_escapes(entry.substr(0, colon)))
        throw config_error(what + " has an invalid percent escape in a host name", percent_hint);
    } else if (!valid_percent_escapes(entry)) {
      throw config_error(what + " has an invalid percent escape in a host name", percent_hint);
    }
    for (char c : port) {
      if (std::isdigit(static_cast<unsigned char>(c)) == 0)
        throw config_error(what + " has a port that is not a number",
                           "if the text after ':' is part of a password, " + encode_hint);
    }
    if (entry_end == std::string_view::npos)
      break;
    entry_begin = entry_end + 1;
  }
  if (!valid_percent_escapes(path))
    throw config_error(what + " has an invalid percent escape in its database name", percent_hint);
  std::size_t parameter_begin = 0;
  std::string previous;  // the parameter before, for messages
  while (!query.empty() && parameter_begin <= query.size()) {
    auto parameter_end = query.find('&', parameter_begin);
    auto parameter = query.substr(parameter_begin, parameter_end == std::string_view::npos
                                                       ? parameter_end
                                                       : parameter_end - parameter_begin);
    if (parameter.empty() && parameter_end == std::string_view::npos)
      break;  // a trailing '&', which libpq accepts
    auto equals = parameter.find('=');
    if (equals == std::string_view::npos) {
      throw config_error(what + " has a query parameter without '=' " +
                             (previous.empty() ? std::string{"at its start"}
                                               : "after the parameter '" + previous + "'"),
                         "write parameters as ?key=value&key=value, and percent-encode '&' in "
                         "values as %26");
    }
    std::string_view key = parameter.substr(0, equals);
    std::string_view value = parameter.substr(equals + 1);
    if (!valid_percent_escapes(key))
      throw config_error(what + " has an invalid percent escape in a parameter name", percent_hint);
    std::string name{key};
    if (value.find('=') != std::string_view::npos)
      throw config_error(what + " has a second '=' in the value of its parameter '" + name + "'",
                         "percent-encode '=' in values as %3D");
    if (!valid_percent_escapes(value))
      throw config_error(
          what + " has an invalid percent escape in the value of its parameter '" + name + "'",
          percent_hint);
    if (name.find('%') == std::string::npos)
      check_keyword(name, what);
    previous = name;
    if (parameter_end == std::string_view::npos)
      break;
    parameter_begin = parameter_end + 1;
  }
}

// Refuses a conninfo string ("host=h password=...") that libpq would refuse with a message
// quoting it. Messages name keywords, never values.
void check_conninfo(std::string_view text, const std::string& what) {
  auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  std::size_t i = 0;
  std::string previous;  // the keyword before, for messages
  for (;;) {
    while (i < text.size() && is_space(text[i]))
      ++i;
    if (i == text.size())
      return;
    std::size_t key_begin = i;
    while (i < text.size() && text[i] != '=' && !is_space(text[i]))
      ++i;
    std::string keyword{text.substr(key_begin, i - key_begin)};
    while (i < text.size() && is_space(text[i]))
      ++i;
    if (i == text.size() || text[i] != '=') {
      // The word may be the rest of a value with a space in it: it is not quoted.
      throw config_error(what + " has a word without '=' " +
                             (previous.empty() ? std::string{"at its start"}
                                               : "after the value of '" + previous + "'"),
                         "write key=value pairs separated by spaces, and quote values with "
                         "spaces: password='a b'");
    }
    ++i;
    while (i < text.size() && is_space(text[i]))
      ++i;
    if (i < text.size() && text[i] == '\'') {
      ++i;
      while (i < text.size() && text[i] != '\'')
        i += (text[i] == '\\' && i + 1 < text.size()) ? std::size_t{2} : std::size_t{1};
      if (i >= text.size()) {
        throw config_error(what + " has a quoted value of '" + keyword + "' that is not closed",
                           "end it with ' (write \\' for a quote inside)");
      }
      ++i;
    } else {
      while (i < text.size() && !is_space(text[i]))
        i += (text[i] == '\\' && i + 1 < text.size()) ? std::size_t{2} : std::size_t{1};
    }
    if (keyword != "ssl")
      check_keyword(keyword, what);
    previous = keyword;
  }
}

// The part of a libpq message before it quotes its input: every libpq parse error quotes the
// offending text in double quotes, and that text may be a password.
std::string unquoted_part(std::string message) {
  message = message.substr(0, message.find('"'));
  while (!message.empty() &&
         (message.back() == '\n' || message.back() == ' ' || message.back() == ':')) {
    message.pop_back();
  }
  return message;
}

void set_pair(detail::conninfo_pairs& pairs, const std::string& key, const std::string& value) {
  for (auto& pair : pairs) {
    if (pair.first == key) {
      pair.second = value;
      return;
    }
  }
  pairs.emplace_back(key, value);
}

const std::string* find_pair(const detail::conninfo_pairs& pairs, std::string_view key) {
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

// Splits one `hosts` entry ("db", "db:5433", "[::1]:5433", "::1") into host and port ("" when
// it has none). Throws config_error when the port is not a number in 1-65535.
std::pair<std::string, std::string> split_host_entry(const std::string& entry,
                                                     const std::string& what) {
  std::string host = entry;
  std::string port;
  if (!entry.empty() && entry[0] == '[') {
    auto close = entry.find(']');
    if (close == std::string::npos || (close + 1 < entry.size() && entry[close + 1] != ':'))
      throw config_error(what +
                         " has an entry with an IPv6 address not written as [address] or "
                         "[address]:port");
    host = entry.substr(1, close - 1);
    port = close + 1 < entry.size() ? entry.substr(close + 2) : "";
  } else if (auto colon = entry.find(':');
             colon != std::string::npos && entry.find(':', colon + 1) == std::string::npos) {
    host = entry.substr(0, colon);
    port = entry.substr(colon + 1);
  }
  if (host.empty() || host.find(',') != std::string::npos)
    throw config_error(what + " has an empty entry or one with a ','",
                       "write each server as its own entry: [\"db1:5432\", \"db2:5432\"]");
  if (!port.empty()) {
    bool digits = port.size() <= 5;
    for (char c : port)
      digits = digits && std::isdigit(static_cast<unsigned char>(c)) != 0;
    if (!digits || std::stoi(port) < 1 || std::stoi(port) > 65535)
      throw config_error(what + " has an entry whose port is not a number in 1-65535");
  }
  return {host, port};
}

std::string percent_encode(std::string_view text) {
  static const char* const k_hex = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += k_hex[byte >> 4];
      out += k_hex[byte & 0x0F];
    }
  }
  return out;
}

// Splits libpq's comma-separated host or port list; "" is an empty list.
std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  if (text.empty())
    return items;
  std::size_t begin = 0;
  for (auto comma = text.find(','); comma != std::string::npos; comma = text.find(',', begin)) {
    items.push_back(text.substr(begin, comma - begin));
    begin = comma + 1;
  }
  items.push_back(text.substr(begin));
  return items;
}

}  // namespace

namespace detail {

// The key=value pairs that libpq would use for `url`, in libpq's order.
conninfo_pairs parse_conninfo(const std::string& url, const std::string& source) {
  std::string what = "the URL of " + source;
  if (url.find('\0') != std::string::npos) {
    throw config_error(what + " contains a NUL byte, which would end it early for libpq",
                       "remove the NUL (\\u0000) from it");
  }
  if (url.rfind("postgresql://", 0) == 0)
    check_url(url, std::string_view{"postgresql://"}.size(), what);
  else if (url.rfind("postgres://", 0) == 0)
    check_url(url, std::string_view{"postgres://"}.size(), what);
  else
    check_conninfo(url, what);
  char* raw_error = nullptr;
  std::unique_ptr<PQconninfoOption, conninfo_options_deleter> options{
      PQconninfoParse(url.c_str(), &raw_error)};
  if (!options) {
    std::string reason = raw_error != nullptr ? raw_error : "out of memory";
    PQfreemem(raw_error);
    throw config_error(
        what + " is not a valid PostgreSQL URL or conninfo string: " + unquoted_part(reason),
        "write it as postgresql://user@host:port/database");
  }
  conninfo_pairs pairs;
  for (auto* option = options.get(); option->keyword != nullptr; ++option) {
    if (option->val != nullptr && *option->val != '\0')
      pairs.emplace_back(option->keyword, option->val);
  }
  return pairs;
}

conninfo_pairs merged_pairs(const connection_config& config) {
  std::string source = config.source.empty() ? "the connection" : config.source;
  auto pairs = parse_conninfo(config.url, source);
  if (config.host)
    set_pair(pairs, "host", *config.host);
  if (config.port)
    set_pair(pairs, "port", std::to_string(*config.port));
  if (!config.hosts.empty()) {
    std::string hosts;
    std::string ports;
    std::string default_port = config.port ? std::to_string(*config.port) : "";
    for (const auto& entry : config.hosts) {
      auto [host, port] = split_host_entry(entry, "the hosts of " + source);
      hosts += (hosts.empty() ? "" : ",") + host;
      ports += (&entry == &config.hosts.front() ? "" : ",") + (port.empty() ? default_port : port);
    }
    set_pair(pairs, "host", hosts);
    set_pair(pairs, "port", ports);
  }
  if (config.target_session_attrs)
    set_pair(pairs, "target_session_attrs", *config.target_session_attrs);
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
  for (const auto& [key, value] : pairs) {
    if (value.find('\0') != std::string::npos) {
      throw config_error("the " + key + " of " + source +
                             " contains a NUL byte, which would end it early for libpq",
                         "remove the NUL (\\u0000) from it");
    }
  }
  return pairs;
}

}  // namespace detail

std::string connection_config::conninfo() const {
  std::string text;
  for (const auto& [key, value] : detail::merged_pairs(*this))
    text += (text.empty() ? "" : " ") + key + "=" + quote_conninfo_value(value);
  return text;
}

std::string connection_config::describe() const {
  auto pairs = detail::merged_pairs(*this);
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
  // The redacted form: a password that is set shows as ***, never as itself. The
  // password field is never read here, only whether there is one.
  auto* shown_password = find_pair(pairs, "password");
  bool has_password = shown_password != nullptr && !shown_password->empty();
  if (shown_user != nullptr || has_password) {
    text += shown_user != nullptr ? percent_encode(*shown_user) : std::string{};
    text += has_password ? ":***@" : "@";
  }
  // libpq's multi-host form: a comma-separated host list and either one port for all of them
  // or one port per host; shown as host:port pairs, IPv6 addresses in brackets.
  auto host_list = split_list(shown_host != nullptr ? *shown_host : std::string{});
  auto port_list = split_list(shown_port != nullptr ? *shown_port : std::string{});
  for (std::size_t i = 0; i < std::max(host_list.size(), port_list.size()); ++i) {
    if (i > 0)
      text += ",";
    if (i < host_list.size())
      text += host_list[i].find(':') != std::string::npos ? "[" + host_list[i] + "]"
                                                          : percent_encode(host_list[i]);
    const std::string* shown_port_of_host = nullptr;
    if (port_list.size() == 1)
      shown_port_of_host = &port_list[0];
    else if (i < port_list.size())
      shown_port_of_host = &port_list[i];
    if (shown_port_of_host != nullptr && !shown_port_of_host->empty())
      text += ":" + percent_encode(*shown_port_of_host);
  }
  if (shown_database != nullptr)
    text += "/" + percent_encode(*shown_database);
  if (auto* attrs = find_pair(pairs, "target_session_attrs"); attrs != nullptr)
    text += "?target_session_attrs=" + percent_encode(*attrs);
  return text;
}

connection_config config_from_url(const std::string& url, const std::string& source) {
  connection_config config;
  config.url = url;
  config.source = source;
  config.conninfo();
  return config;
}

}  // namespace pgkit
