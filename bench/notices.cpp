// What pgkit's notice routing costs per statement. Every connection pgkit opens carries a
// notice receiver and a libpq event procedure that keeps the server's last words for
// connection_lost errors (core/notices.hpp); the event procedure is called for every result.
// Baseline: the same statements through raw libpq on a connection without them, alternating
// rounds in one run so that both see the same machine.
//   bench_notices [URL]

#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/notices.hpp"
#include "support.hpp"

namespace {

using steady = std::chrono::steady_clock;

// Runs `count` prepared single-row statements and returns statements per second.
double statements_per_second(PGconn* connection, int count) {
  auto start = steady::now();
  for (int i = 0; i < count; ++i) {
    PGresult* result = PQexecPrepared(connection, "one", 0, nullptr, nullptr, nullptr, 0);
    if (PQresultStatus(result) != PGRES_TUPLES_OK) {
      std::fprintf(stderr, "bench_notices: %s", PQerrorMessage(connection));
      std::exit(1);
    }
    PQclear(result);
  }
  return count / std::chrono::duration<double>(steady::now() - start).count();
}

void prepare(PGconn* connection) {
  PQclear(PQprepare(connection, "one", "SELECT 1", 0, nullptr));
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  bench::server server{argc, argv, "bench_notices"};
  PGconn* raw = PQconnectdb(server.url().c_str());
  if (PQstatus(raw) != CONNECTION_OK) {
    std::fprintf(stderr, "bench_notices: %s", PQerrorMessage(raw));
    return 1;
  }
  // The same connection settings; only the routing differs, installed as connect() does.
  PGconn* routed = PQconnectdb(server.url().c_str());
  if (PQstatus(routed) != CONNECTION_OK) {
    std::fprintf(stderr, "bench_notices: %s", PQerrorMessage(routed));
    return 1;
  }
  pgkit::detail::route_notices(routed);
  prepare(raw);
  prepare(routed);
  constexpr int rounds = 15;
  constexpr int per_round = 5000;
  std::vector<double> baseline;
  std::vector<double> pgkit;
  statements_per_second(raw, 500);  // warm both up
  statements_per_second(routed, 500);
  for (int round = 0; round < rounds; ++round) {
    // Alternate which goes first, so that neither always follows the other.
    if (round % 2 == 0) {
      baseline.push_back(statements_per_second(raw, per_round));
      pgkit.push_back(statements_per_second(routed, per_round));
    } else {
      pgkit.push_back(statements_per_second(routed, per_round));
      baseline.push_back(statements_per_second(raw, per_round));
    }
  }
  double base = median(baseline);
  double routed_rate = median(pgkit);
  std::printf("statements per second, median of %d rounds of %d (SELECT 1, prepared):\n", rounds,
              per_round);
  std::printf("  raw libpq connection                  %10.0f\n", base);
  std::printf("  the same with pgkit's notice routing   %10.0f   %.3fx\n", routed_rate,
              routed_rate / base);
  PQfinish(raw);
  PQfinish(routed);
  return 0;
}
