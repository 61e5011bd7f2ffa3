#include "pgbouncer.hpp"

#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace pgkit_test {
namespace {

int free_loopback_port() {
  int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(probe, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(probe);
  return ntohs(address.sin_port);
}

}  // namespace

std::string port_of(const std::string& url) {
  auto colon = url.rfind(':');
  auto slash = url.find('/', colon);
  return url.substr(colon + 1, slash - colon - 1);
}

pgbouncer::pgbouncer(const std::string& server_port) {
  m_dir = temp_dir("pgkit-pgbouncer");
  m_port = free_loopback_port();
  std::ofstream{m_dir + "/users.txt"} << "\"postgres\" \"\"\n";
  write_config(server_port);
  std::vector<std::string> argv{"pgbouncer", "-d"};
  if (::geteuid() == 0) {
    // PgBouncer refuses to run as root: it switches to the server's user, which must be able to
    // write its log and pid file.
    auto* user = ::getpwnam("postgres");
    if (user == nullptr)
      throw std::runtime_error("there is no user postgres for PgBouncer to run as");
    for (const char* file : {"", "/users.txt", "/pgbouncer.ini"}) {
      if (::chown((m_dir + file).c_str(), user->pw_uid, user->pw_gid) != 0)
        throw std::runtime_error("cannot hand " + m_dir + file + " to user postgres");
    }
    argv.insert(argv.end(), {"-u", "postgres"});
  }
  argv.push_back(m_dir + "/pgbouncer.ini");
  auto started = run_process(argv);
  if (started.exit_code != 0)
    throw std::runtime_error("pgbouncer did not start: " + started.err);
  for (int i = 0; i < 200 && m_pid <= 0; ++i) {
    std::ifstream pidfile{m_dir + "/pgbouncer.pid"};
    pidfile >> m_pid;
    if (m_pid <= 0)
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  if (m_pid <= 0)
    throw std::runtime_error("pgbouncer wrote no pid file");
}

pgbouncer::~pgbouncer() {
  if (m_pid <= 0)
    return;
  ::kill(m_pid, SIGTERM);
  for (int i = 0; i < 200 && ::kill(m_pid, 0) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
}

std::string pgbouncer::url(const std::string& database) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(m_port) + "/" + database;
}

void pgbouncer::write_config(const std::string& server_port) const {
  std::ofstream{m_dir + "/pgbouncer.ini"} << "[databases]\n"
                                          << "* = host=127.0.0.1 port=" << server_port << "\n"
                                          << "[pgbouncer]\n"
                                          << "listen_addr = 127.0.0.1\n"
                                          << "listen_port = " << m_port << "\n"
                                          << "unix_socket_dir =\n"
                                          << "auth_type = trust\n"
                                          << "auth_file = " << m_dir << "/users.txt\n"
                                          << "pool_mode = transaction\n"
                                          << "default_pool_size = 2\n"
                                          << "max_client_conn = 50\n"
                                          << "logfile = " << m_dir << "/pgbouncer.log\n"
                                          << "pidfile = " << m_dir << "/pgbouncer.pid\n";
}

void pgbouncer::repoint(const std::string& server_port) {
  write_config(server_port);
  auto log_before = read_file(m_dir + "/pgbouncer.log").size();
  ::kill(m_pid, SIGHUP);
  // PgBouncer logs the reload once it has read the file.
  bool reloaded = eventually([&] {
    return read_file(m_dir + "/pgbouncer.log").find("got SIGHUP", log_before) != std::string::npos;
  });
  if (!reloaded)
    throw std::runtime_error("pgbouncer did not reload " + m_dir + "/pgbouncer.ini");
}

}  // namespace pgkit_test
