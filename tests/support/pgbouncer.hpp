#pragma once
// A real PgBouncer (Debian's `pgbouncer`) in transaction pooling mode on a free loopback port,
// in front of one server, for tests. Stopped on destruction.

#include <sys/types.h>

#include <string>

namespace pgkit_test {

class pgbouncer {
 public:
  /// Starts PgBouncer in front of the server on 127.0.0.1:`server_port`, with at most 2 server
  /// connections per database, so that consecutive transactions of one client run on different
  /// server sessions. Throws std::runtime_error when it does not start.
  explicit pgbouncer(const std::string& server_port);
  ~pgbouncer();
  pgbouncer(const pgbouncer&) = delete;
  pgbouncer& operator=(const pgbouncer&) = delete;

  /// Returns the URL of `database` through PgBouncer, as superuser `postgres`.
  std::string url(const std::string& database) const;
  /// Points every database at the server on 127.0.0.1:`server_port` and reloads (SIGHUP), as
  /// an operator does after a failover. Returns once PgBouncer has read the new configuration.
  void repoint(const std::string& server_port);

 private:
  void write_config(const std::string& server_port) const;

  std::string m_dir;
  int m_port = 0;
  pid_t m_pid = 0;
};

/// Returns the port of a `postgresql://user@host:PORT/db` URL.
std::string port_of(const std::string& url);

}  // namespace pgkit_test
