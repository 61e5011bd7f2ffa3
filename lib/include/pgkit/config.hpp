#pragma once
/// Connection settings: the `[connections.<name>]` tables of database.toml, a URL, or values an
/// application builds itself, and the resolution order every pgkit command follows.
/// docs/configuration.md describes every key; the library never reads the environment itself.

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgkit {

/// What sits between pgkit and the server, which decides what session state pgkit may use.
enum class pooler_mode {
  none,                   ///< a direct connection (or a session-pooling proxy)
  pgbouncer_transaction,  ///< PgBouncer in transaction mode: unnamed statements, no session state
};

/// Returns the configuration spelling of `mode` ("none", "pgbouncer-transaction").
std::string_view to_string(pooler_mode mode) noexcept;

/// Everything needed to open connections and run a pool for one database.
struct connection_config {
  /// The connection's name in database.toml; empty when built from a URL.
  std::string name;
  /// Where the settings came from, for messages ("database.toml [connections.main]",
  /// "--addr", "DATABASE_URL", "libpq defaults").
  std::string source;

  /// A libpq URL or conninfo string; empty means libpq's defaults (PGHOST, ..., the socket).
  std::string url;
  /// Separate parts; each one given overrides what `url` (or libpq's defaults) would use.
  std::optional<std::string> host;
  std::optional<int> port;
  /// Several servers, tried in order (libpq's multi-host form): each "host", "host:port",
  /// "[IPv6]" or "[IPv6]:port". When not empty it replaces `host` and the url's hosts, and
  /// `port` is the port of the entries that name none.
  std::vector<std::string> hosts;
  /// libpq's target_session_attrs ("read-write", "primary", "standby", ...): which of several
  /// servers a connection accepts.
  std::optional<std::string> target_session_attrs;
  std::optional<std::string> database;
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::optional<std::string> sslmode;
  std::optional<std::string> application_name;

  /// Upper bound on open connections.
  std::size_t pool_size = 10;
  /// Idle connections the pool keeps open even when nobody asks (at most pool_size).
  std::size_t min_idle = 0;
  /// How long acquire() waits for a connection before failing.
  std::chrono::milliseconds acquire_timeout{5000};
  /// While callers queue, a connection changes hands at most once per this slice: a thread
  /// that got its connection less than this ago takes it back without queueing. 0 means strict
  /// first come, first served. Capped at acquire_timeout / 10; docs/pool.md has the bound it
  /// gives (not a database.toml key).
  std::chrono::microseconds handoff_quantum{500};
  /// A connection is closed after living this long (with up to 10 % jitter); 0 means never.
  std::chrono::seconds max_lifetime{3600};
  /// An idle connection above min_idle is closed after this long; 0 means never.
  std::chrono::seconds idle_timeout{600};
  /// How long opening one connection may take, including a server that never answers; 0 means
  /// no limit. Unset: the URL's connect_timeout, else 10 s.
  std::optional<std::chrono::seconds> connect_timeout;
  /// A connection that sat idle at least this long is checked with an empty query before it is
  /// handed out (not a database.toml key).
  std::chrono::milliseconds validate_after_idle{1000};
  /// How often the pool's maintenance thread closes expired connections and refills min_idle
  /// (not a database.toml key).
  std::chrono::milliseconds maintenance_interval{1000};

  /// The schema holding pgkit's tables; empty means "not configured" (see resolve_schema).
  std::string schema;
  /// The file `pgkit dump`, `pgkit load` and `apply --dump-schema` use when --schema-file is not
  /// given (database.toml key `schema_file`, relative to the current directory); empty means
  /// db/schema.sql.
  std::string schema_file;
  /// The pooler in front of the server.
  pooler_mode pooler = pooler_mode::none;
  /// The name of another connection in the same database.toml that serves this one's
  /// stale-tolerant reads (a streaming standby); empty: none. docs/scaling.md has the rules.
  std::string replica;

  /// Returns the conninfo string libpq is given: every part and the connect timeout merged into
  /// `key=value` pairs. Contains the password; show only describe(). Throws config_error when
  /// `url` cannot be parsed.
  std::string conninfo() const;

  /// Returns the address for messages, without any password: "postgresql://app:***@db:5432/app"
  /// (*** when a password is set), several servers as "h1:5432,h2:5433", IPv6 addresses in
  /// brackets, and a target_session_attrs; or "libpq defaults". Throws config_error as
  /// conninfo() does.
  std::string describe() const;
};

/// Builds a configuration for a libpq URL or conninfo string with every other setting at its
/// default. `source` says where it came from ("--addr"). Throws config_error when the URL
/// cannot be parsed.
connection_config config_from_url(const std::string& url, const std::string& source = "url");

/// Looks up an environment variable for `${VAR}` expansion; std::nullopt means "not set". The
/// CLI passes one that calls getenv; the library never reads the environment on its own.
using env_lookup = std::function<std::optional<std::string>(const std::string& name)>;

/// Returns an env_lookup that reads the process environment (getenv).
env_lookup process_environment();

/// Expands `${VAR}` and `${VAR:-fallback}` in `text` (`$${` is a literal `${`). A fallback is
/// used when VAR is unset or empty. Throws config_error naming VAR when it is unset and has no
/// fallback, or when a `${` is not closed. `what` names the value in messages.
std::string expand_variables(std::string_view text, const env_lookup& env,
                             std::string_view what = "value");

/// A parsed database.toml.
class config_file {
 public:
  /// Returns the path (or label) the configuration was read from.
  const std::string& path() const noexcept { return m_path; }
  /// Returns the connection names, sorted.
  std::vector<std::string> names() const;
  /// Returns the connection called `name`. Throws config_error listing the known names (and
  /// the nearest one) when there is none.
  const connection_config& connection(const std::string& name) const;

 private:
  friend config_file parse_config(std::string_view, const std::string&, const env_lookup&);
  std::string m_path;
  std::map<std::string, connection_config> m_connections;
};

/// Parses database.toml text; `path` names it in messages. Throws config_error: a syntax error
/// names path, line and column; an unknown key names the nearest valid one; a wrong type names
/// the key and the expected type; an unset variable is named.
config_file parse_config(std::string_view toml_text, const std::string& path,
                         const env_lookup& env);

/// The largest configuration file load_config reads.
inline constexpr std::size_t max_config_file_bytes = 1024 * 1024;

/// Reads and parses the regular file at `path`. Throws config_error when it cannot be read, is
/// not a regular file (a directory, a FIFO, a device) or is larger than max_config_file_bytes.
config_file load_config(const std::string& path, const env_lookup& env);

/// Returns the files searched when no configuration file is named, in order:
/// `database.toml`, then `config/database.toml` (relative to the current directory).
std::vector<std::string> default_config_files();

/// What a command was given to find its connection, in the order of precedence.
struct connection_request {
  std::string addr;                 ///< an explicit URL or conninfo (--addr), or empty
  std::string database_url;         ///< the value of DATABASE_URL, or empty
  std::string config_file;          ///< a configuration file that must exist (--config)
  std::vector<std::string> search;  ///< files tried in order when config_file is empty
  std::string connection = "main";  ///< the connection to use from the file
};

/// Resolves the connection, first match wins: addr, database_url, the configuration file with
/// the named connection, libpq's defaults. Throws config_error when the named file is missing
/// or unusable, when the connection is not in it, or when a connection other than "main" is
/// asked for and no file exists.
connection_config resolve_connection(const connection_request& request, const env_lookup& env);

/// Returns the schema to use: `requested` when not empty, else the connection's `schema` key,
/// else "pgkit".
std::string resolve_schema(const std::string& requested, const connection_config& config);

}  // namespace pgkit
