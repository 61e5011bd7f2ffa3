// bench_listen URL [--rss-notifications N]: LISTEN/NOTIFY throughput, latency and memory.
//
// Baseline: a bare libpq loop (poll on the socket, PQconsumeInput, PQnotifies) in the same
// process, on the same server, with the same sender. It is the floor any libpq-based listener
// can reach, so the ratios show what pgkit's listener (heartbeat timers, queue, wake-up pipe)
// and `pgkit listen --json` (a process, JSON, a pipe) add. psql is no baseline: it only prints
// notifications after it runs a command, so its "latency" would be its polling period.
//
// Latency is one notification at a time: the time from the sender starting
// `SELECT pg_notify(...)` to the notification in the caller's hands (or the line read from
// `pgkit listen`'s stdout). Throughput sends batches of 1000 per transaction from another
// connection and counts until the last arrives.

#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "pgkit/listener.hpp"

extern char** environ;

namespace {

using steady = std::chrono::steady_clock;

double micros(steady::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

// --- the sender: a plain libpq connection ---

class sender {
 public:
  explicit sender(const std::string& url) : m_connection(PQconnectdb(url.c_str())) {
    if (PQstatus(m_connection) != CONNECTION_OK)
      throw std::runtime_error(std::string{"sender: "} + PQerrorMessage(m_connection));
  }
  ~sender() { PQfinish(m_connection); }
  sender(const sender&) = delete;
  sender& operator=(const sender&) = delete;

  void exec(const std::string& sql) {
    PGresult* result = PQexec(m_connection, sql.c_str());
    auto status = PQresultStatus(result);
    PQclear(result);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK)
      throw std::runtime_error(std::string{"sender: "} + PQerrorMessage(m_connection));
  }
  void notify(const std::string& channel, const std::string& payload) {
    exec("SELECT pg_notify('" + channel + "', '" + payload + "')");
  }
  // Sends `count` notifications numbered from `first`, 1000 per transaction.
  void burst(const std::string& channel, long first, long count) {
    for (long done = 0; done < count; done += 1000) {
      long n = std::min<long>(1000, count - done);
      exec("SELECT pg_notify('" + channel + "', i::text) FROM generate_series(" +
           std::to_string(first + done) + ", " + std::to_string(first + done + n - 1) + ") i");
    }
  }

 private:
  PGconn* m_connection;
};

// --- the three receivers behind one interface: block until the next payload ---

struct receiver {
  virtual ~receiver() = default;
  virtual std::string next() = 0;
  virtual long rss_kib() = 0;
};

long rss_kib_of(const std::string& pid) {
  std::ifstream status{"/proc/" + pid + "/status"};
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0)
      return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

class raw_libpq_receiver : public receiver {
 public:
  raw_libpq_receiver(const std::string& url, const std::string& channel)
      : m_connection(PQconnectdb(url.c_str())) {
    if (PQstatus(m_connection) != CONNECTION_OK)
      throw std::runtime_error(PQerrorMessage(m_connection));
    PQclear(PQexec(m_connection, ("LISTEN \"" + channel + "\"").c_str()));
  }
  ~raw_libpq_receiver() override { PQfinish(m_connection); }
  std::string next() override {
    for (;;) {
      if (PGnotify* n = PQnotifies(m_connection)) {
        std::string payload = n->extra;
        PQfreemem(n);
        return payload;
      }
      pollfd fd{PQsocket(m_connection), POLLIN, 0};
      ::poll(&fd, 1, -1);
      if (PQconsumeInput(m_connection) == 0)
        throw std::runtime_error(PQerrorMessage(m_connection));
    }
  }
  long rss_kib() override { return rss_kib_of("self"); }

 private:
  PGconn* m_connection;
};

class pgkit_receiver : public receiver {
 public:
  pgkit_receiver(const std::string& url, const std::string& channel) : m_listener(url) {
    m_listener.listen(channel);
  }
  std::string next() override { return m_listener.receive()->payload; }
  long rss_kib() override { return rss_kib_of("self"); }

 private:
  pgkit::listener m_listener;
};

// `pgkit listen --json CHANNEL` as a child process; payloads are read back from its lines.
class cli_receiver : public receiver {
 public:
  cli_receiver(const std::string& url, const std::string& channel) {
    int out[2], err[2];
    if (::pipe(out) != 0 || ::pipe(err) != 0)
      throw std::runtime_error("pipe");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    for (int fd : {out[0], out[1], err[0], err[1]})
      posix_spawn_file_actions_addclose(&actions, fd);
    std::vector<std::string> argv{PGKIT_BINARY, "listen", "--json", "--verbose",
                                  "--addr",     url,      channel};
    std::vector<char*> args;
    for (auto& arg : argv)
      args.push_back(arg.data());
    args.push_back(nullptr);
    if (::posix_spawn(&m_pid, args[0], &actions, nullptr, args.data(), environ) != 0)
      throw std::runtime_error("cannot run " + argv[0]);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    ::close(err[1]);
    m_out = out[0];
    m_err = err[0];
    std::string diagnostics;
    char buffer[4096];
    while (diagnostics.find("listening on") == std::string::npos) {
      auto n = ::read(m_err, buffer, sizeof buffer);
      if (n <= 0)
        throw std::runtime_error("pgkit listen did not start: " + diagnostics);
      diagnostics.append(buffer, static_cast<std::size_t>(n));
    }
  }
  ~cli_receiver() override {
    ::kill(m_pid, SIGTERM);
    int status = 0;
    ::waitpid(m_pid, &status, 0);
    ::close(m_out);
    ::close(m_err);
  }
  std::string next() override {
    for (;;) {
      auto newline = m_buffer.find('\n', m_start);
      if (newline != std::string::npos) {
        std::string line = m_buffer.substr(m_start, newline - m_start);
        m_start = newline + 1;
        if (m_start > 65536) {
          m_buffer.erase(0, m_start);
          m_start = 0;
        }
        // {"channel":"...","payload":"N","pid":...}: the payloads here are plain numbers.
        auto key = line.find("\"payload\":\"");
        auto end = line.find('"', key + 11);
        return line.substr(key + 11, end - key - 11);
      }
      char chunk[65536];
      auto n = ::read(m_out, chunk, sizeof chunk);
      if (n <= 0)
        throw std::runtime_error("pgkit listen ended");
      m_buffer.append(chunk, static_cast<std::size_t>(n));
    }
  }
  long rss_kib() override { return rss_kib_of(std::to_string(m_pid)); }

 private:
  pid_t m_pid = 0;
  int m_out = -1;
  int m_err = -1;
  std::string m_buffer;
  std::size_t m_start = 0;
};

// --- measurements ---

struct latency {
  double p50_us;
  double p99_us;
};

latency measure_latency(receiver& listening, sender& sending, const std::string& channel,
                        int samples) {
  std::vector<double> taken;
  for (int i = 0; i < samples + 200; ++i) {
    auto started = steady::now();
    sending.notify(channel, std::to_string(i));
    if (listening.next() != std::to_string(i))
      throw std::runtime_error("out of order");
    if (i >= 200)  // warm-up
      taken.push_back(micros(steady::now() - started));
  }
  std::sort(taken.begin(), taken.end());
  return {taken[taken.size() / 2], taken[taken.size() * 99 / 100]};
}

double measure_throughput(receiver& listening, const std::string& url, const std::string& channel,
                          long count) {
  auto started = steady::now();
  std::thread burster{[&] {
    sender sending{url};
    sending.burst(channel, 1, count);
  }};
  for (long i = 1; i <= count; ++i) {
    if (listening.next() != std::to_string(i))
      throw std::runtime_error("out of order at " + std::to_string(i));
  }
  auto seconds = std::chrono::duration<double>(steady::now() - started).count();
  burster.join();
  return static_cast<double>(count) / seconds;
}

// RSS after every tenth of `count` notifications.
std::vector<long> measure_rss(receiver& listening, const std::string& url,
                              const std::string& channel, long count) {
  std::vector<long> samples{listening.rss_kib()};
  std::atomic<bool> failed{false};
  std::thread burster{[&] {
    try {
      sender sending{url};
      sending.burst(channel, 1, count);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "sender: %s\n", e.what());
      failed = true;
    }
  }};
  for (long i = 1; i <= count && !failed; ++i) {
    listening.next();
    if (i % (count / 10) == 0)
      samples.push_back(listening.rss_kib());
  }
  burster.join();
  return samples;
}

std::unique_ptr<receiver> make(const std::string& kind, const std::string& url,
                               const std::string& channel) {
  if (kind == "libpq")
    return std::make_unique<raw_libpq_receiver>(url, channel);
  if (kind == "pgkit")
    return std::make_unique<pgkit_receiver>(url, channel);
  return std::make_unique<cli_receiver>(url, channel);
}

}  // namespace

int main(int argc, char** argv) {
  std::string url;
  long rss_count = 1000000;
  long throughput_count = 200000;
  int samples = 5000;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--rss-notifications" && i + 1 < argc) {
      rss_count = std::atol(argv[++i]);
    } else if (arg == "--throughput-notifications" && i + 1 < argc) {
      throughput_count = std::atol(argv[++i]);
    } else if (arg == "--latency-samples" && i + 1 < argc) {
      samples = std::atoi(argv[++i]);
    } else {
      url = arg;
    }
  }
  if (url.empty()) {
    std::fprintf(stderr,
                 "usage: bench_listen URL [--latency-samples N] [--throughput-notifications N] "
                 "[--rss-notifications N]\n");
    return 2;
  }
  try {
    sender sending{url};
    const char* kinds[] = {"libpq", "pgkit", "cli"};
    const char* names[] = {"raw libpq loop (baseline)", "pgkit::listener receive()",
                           "pgkit listen --json (stdout)"};
    latency latencies[3];
    double rates[3];
    for (int k = 0; k < 3; ++k) {
      std::string channel = std::string{"bench_"} + kinds[k];
      auto listening = make(kinds[k], url, channel);
      latencies[k] = measure_latency(*listening, sending, channel, samples);
      rates[k] = measure_throughput(*listening, url, channel, throughput_count);
    }
    std::printf("LISTEN/NOTIFY, %d latency samples, %ld notifications for throughput\n\n", samples,
                throughput_count);
    std::printf("%-30s %10s %10s %14s %8s %8s %8s\n", "receiver", "p50 us", "p99 us", "notif/s",
                "p50 x", "p99 x", "rate x");
    for (int k = 0; k < 3; ++k) {
      std::printf("%-30s %10.1f %10.1f %14.0f %8.2f %8.2f %8.2f\n", names[k], latencies[k].p50_us,
                  latencies[k].p99_us, rates[k], latencies[k].p50_us / latencies[0].p50_us,
                  latencies[k].p99_us / latencies[0].p99_us, rates[k] / rates[0]);
    }
    if (rss_count > 0) {
      std::printf("\nresident memory (KiB) every %ld of %ld notifications\n", rss_count / 10,
                  rss_count);
      for (int k = 0; k < 3; ++k) {
        std::string channel = std::string{"rss_"} + kinds[k];
        auto listening = make(kinds[k], url, channel);
        auto rss = measure_rss(*listening, url, channel, rss_count);
        std::printf("%-30s", names[k]);
        for (long value : rss)
          std::printf(" %6ld", value);
        std::printf("   (growth after the first tenth: %+ld KiB)\n",
                    rss.size() > 1 ? rss.back() - rss[1] : 0L);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_listen: %s\n", e.what());
    return 1;
  }
  return 0;
}
