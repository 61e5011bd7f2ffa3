// bench/query: the query toolkit against what a user would write without it.
//  - stream_query over N rows (10 million by default) against a hand-written libpq loop in the
//    same mode (single-row, or chunked when the libpq loaded at run time is 17 or newer: run it
//    with LD_LIBRARY_PATH at a libpq 17 to measure that path), and pgkit's resident memory growth
//    after the first tenth of the rows; best of 5 rounds (PGKIT_BENCH_STREAM_ROUNDS), and the
//    client's CPU time per row (this process's, so time the host gives to others does not
//    count: the steadier figure of pgkit's own cost on a shared machine);
//  - copy_in of M rows (1 million by default; an int, a text, a timestamptz) against
//    `psql -c "\copy ..."` of the same data as CSV and against multi-row INSERTs of 1000 rows.
// Each figure is the best of the rounds, the variants interleaved; ratios are pgkit / baseline.
//   bench_query [URL]   (default: $PGKIT_BENCH_URL, $DATABASE_URL, else a throwaway server)
//  - pgkit::pipeline of K small INSERTs (1000 by default) against the same INSERTs sent one
//    round trip at a time (execute_no_data) and against a hand-written libpq pipeline loop;
//    best of 10 rounds each.
//   PGKIT_BENCH_STREAM_ROWS, PGKIT_BENCH_COPY_ROWS, PGKIT_BENCH_PIPELINE_STATEMENTS change the
//   counts.

#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <pgkit/pgkit.hpp>

#include "support.hpp"
#include "wire/wire.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
constexpr int k_rounds = 2;

long count_from_env(const char* name, long fallback) {
  auto text = bench::env(name);
  return text.empty() ? fallback : std::stol(text);
}

// Resident memory of this process in bytes.
std::uint64_t resident_bytes() {
  std::ifstream statm{"/proc/self/statm"};
  std::uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

double seconds_since(clock_type::time_point started) {
  return std::chrono::duration<double>(clock_type::now() - started).count();
}

// CPU time of this process (all threads) in nanoseconds.
double cpu_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) * 1e9 + static_cast<double>(now.tv_nsec);
}

// A stream's figures: rows per second of wall time, and the client's CPU nanoseconds per row.
struct stream_figures {
  double rows_per_second = 0;
  double cpu_ns_per_row = 0;
  std::uint64_t growth_after_tenth = 0;
};

std::string stream_sql(long rows) {
  return "SELECT g, 'row number ' || g, now() FROM generate_series(1, " + std::to_string(rows) +
         ") AS g";
}

// The baseline: what a careful hand-written libpq loop does, in the same row mode.
stream_figures libpq_stream(PGconn* conn, long rows) {
  auto started = clock_type::now();
  auto cpu_started = cpu_ns();
  std::string sql = stream_sql(rows);
  if (PQsendQueryParams(conn, sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0) == 0)
    throw std::runtime_error(PQerrorMessage(conn));
  if (auto chunked = pgkit::detail::chunked_rows_function())
    chunked(conn, 256);
  else
    PQsetSingleRowMode(conn);
  std::uint64_t bytes = 0;
  long seen = 0;
  while (PGresult* result = PQgetResult(conn)) {
    const int count = PQntuples(result);
    const int columns = PQnfields(result);
    for (int row = 0; row < count; ++row, ++seen) {
      // Each value read as the pgkit side reads it: NULL or not, then its text and length.
      for (int column = 0; column < columns; ++column) {
        if (PQgetisnull(result, row, column) != 0)
          continue;
        const char* value = PQgetvalue(result, row, column);
        bytes += static_cast<std::uint64_t>(PQgetlength(result, row, column)) + (*value == '\0');
      }
    }
    PQclear(result);
  }
  if (seen != rows || bytes == 0)
    throw std::runtime_error("the libpq loop saw the wrong number of rows");
  stream_figures figures;
  figures.rows_per_second = static_cast<double>(rows) / seconds_since(started);
  figures.cpu_ns_per_row = (cpu_ns() - cpu_started) / static_cast<double>(rows);
  return figures;
}

stream_figures pgkit_stream(pqxx::connection& conn, long rows) {
  auto started = clock_type::now();
  auto cpu_started = cpu_ns();
  std::uint64_t bytes = 0;
  std::uint64_t at_tenth = 0;
  std::uint64_t peak = 0;
  // The resident size is sampled every 100 000 rows with a countdown (no division per row: the
  // baseline's loop has none), and first after a tenth of the rows.
  const long tenth = std::max(1L, rows / 10);
  long until_sample = tenth;
  bool tenth_seen = false;
  auto outcome =
      pgkit::stream_query(conn, stream_sql(rows), {}, {}, [&](const pgkit::row_view& row) {
        for (std::size_t column = 0; column < row.size(); ++column)
          if (auto value = row.get(column))
            bytes += value->size() + (value->data()[0] == '\0');  // libpq's text ends in NUL
        if (--until_sample == 0) {
          until_sample = 100000;
          if (!tenth_seen)
            at_tenth = resident_bytes();
          else
            peak = std::max(peak, resident_bytes());
          tenth_seen = true;
        }
        return pgkit::row_action::next;
      });
  stream_figures figures;
  figures.rows_per_second = static_cast<double>(outcome.rows) / seconds_since(started);
  figures.cpu_ns_per_row = (cpu_ns() - cpu_started) / static_cast<double>(rows);
  peak = std::max(peak, resident_bytes());
  if (static_cast<long>(outcome.rows) != rows || bytes == 0)
    throw std::runtime_error("stream_query saw the wrong number of rows");
  figures.growth_after_tenth = peak > at_tenth ? peak - at_tenth : 0;
  return figures;
}

struct copy_row {
  std::string number, text, at;
};

std::vector<copy_row> copy_data(long rows) {
  std::vector<copy_row> data;
  data.reserve(static_cast<std::size_t>(rows));
  for (long i = 0; i < rows; ++i) {
    data.push_back({std::to_string(i), "customer note " + std::to_string(i * 7919 % 100000),
                    "2024-05-" + std::to_string(1 + i % 28) + " 12:34:56+00"});
  }
  return data;
}

void reset_table(pqxx::connection& conn) {
  pgkit::execute_no_data(conn, "DROP TABLE IF EXISTS bench_copy");
  pgkit::execute_no_data(conn, "CREATE TABLE bench_copy (n int, t text, at timestamptz)");
}

double pgkit_copy(pqxx::connection& conn, const std::vector<copy_row>& data) {
  reset_table(conn);
  auto started = clock_type::now();
  pgkit::copy_in copy{conn, "bench_copy", {"n", "t", "at"}};
  pgkit::params row(3);
  for (const auto& entry : data) {
    row[0] = entry.number;
    row[1] = entry.text;
    row[2] = entry.at;
    copy.write_row(row);
  }
  auto copied = copy.finish();
  double rate = static_cast<double>(copied) / seconds_since(started);
  if (copied != data.size())
    throw std::runtime_error("copy_in copied the wrong number of rows");
  return rate;
}

double psql_copy(pqxx::connection& conn, const std::string& url, const std::string& csv,
                 std::size_t rows) {
  reset_table(conn);
  auto started = clock_type::now();
  std::string command = "psql -X -q -v ON_ERROR_STOP=1 '" + url +
                        "' -c \"\\copy bench_copy (n, t, at) FROM '" + csv + "' (FORMAT csv)\"";
  if (std::system(command.c_str()) != 0)
    throw std::runtime_error("psql \\copy failed");
  return static_cast<double>(rows) / seconds_since(started);
}

double libpq_inserts(PGconn* conn, const std::vector<copy_row>& data, pqxx::connection& admin) {
  constexpr std::size_t batch = 1000;
  reset_table(admin);
  std::string sql = "INSERT INTO bench_copy (n, t, at) VALUES ";
  for (std::size_t i = 0; i < batch; ++i) {
    sql += (i == 0 ? "(" : ", (") + ("$" + std::to_string(3 * i + 1)) + "::int, $" +
           std::to_string(3 * i + 2) + ", $" + std::to_string(3 * i + 3) + "::timestamptz)";
  }
  auto started = clock_type::now();
  PQclear(PQprepare(conn, "bench_insert", sql.c_str(), 0, nullptr));
  std::vector<const char*> values(3 * batch);
  for (std::size_t from = 0; from + batch <= data.size(); from += batch) {
    for (std::size_t i = 0; i < batch; ++i) {
      values[3 * i] = data[from + i].number.c_str();
      values[3 * i + 1] = data[from + i].text.c_str();
      values[3 * i + 2] = data[from + i].at.c_str();
    }
    PGresult* result = PQexecPrepared(conn, "bench_insert", static_cast<int>(values.size()),
                                      values.data(), nullptr, nullptr, 0);
    if (PQresultStatus(result) != PGRES_COMMAND_OK)
      throw std::runtime_error(PQresultErrorMessage(result));
    PQclear(result);
  }
  PQclear(PQexec(conn, "DEALLOCATE bench_insert"));
  return static_cast<double>(data.size() / batch * batch) / seconds_since(started);
}

constexpr int k_pipeline_rounds = 10;
const char* const k_pipeline_insert = "INSERT INTO bench_pipeline (n, t) VALUES ($1, $2)";

void reset_pipeline_table(pqxx::connection& conn) {
  pgkit::execute_no_data(conn, "DROP TABLE IF EXISTS bench_pipeline");
  pgkit::execute_no_data(conn, "CREATE TABLE bench_pipeline (n int, t text)");
}

double pipeline_pgkit(pqxx::connection& conn, long statements) {
  reset_pipeline_table(conn);
  auto started = clock_type::now();
  pgkit::pipeline batch{conn};
  for (long i = 0; i < statements; ++i)
    batch.add(k_pipeline_insert, {std::to_string(i), "note " + std::to_string(i)});
  auto results = batch.collect();
  double rate = static_cast<double>(statements) / seconds_since(started);
  for (const auto& each : results) {
    if (each.outcome != pgkit::pipeline_outcome::ok)
      throw std::runtime_error("a pipelined INSERT failed");
  }
  return rate;
}

double one_at_a_time(pqxx::connection& conn, long statements) {
  reset_pipeline_table(conn);
  auto started = clock_type::now();
  for (long i = 0; i < statements; ++i)
    pgkit::execute_no_data(conn, k_pipeline_insert,
                           {std::to_string(i), "note " + std::to_string(i)});
  return static_cast<double>(statements) / seconds_since(started);
}

// The baseline: libpq's pipeline mode by hand (libpq 14 or newer at build time).
double pipeline_libpq(PGconn* raw, pqxx::connection& admin, long statements) {
#ifdef LIBPQ_HAS_PIPELINING
  reset_pipeline_table(admin);
  auto started = clock_type::now();
  if (PQenterPipelineMode(raw) != 1)
    throw std::runtime_error(PQerrorMessage(raw));
  for (long i = 0; i < statements; ++i) {
    const std::string number = std::to_string(i);
    const std::string note = "note " + number;
    const char* values[2] = {number.c_str(), note.c_str()};
    if (PQsendQueryParams(raw, k_pipeline_insert, 2, nullptr, values, nullptr, nullptr, 0) == 0)
      throw std::runtime_error(PQerrorMessage(raw));
  }
  PQpipelineSync(raw);
  long done = 0;
  for (;;) {
    PGresult* result = PQgetResult(raw);
    if (result == nullptr)
      continue;  // the end of one statement's results
    const auto status = PQresultStatus(result);
    PQclear(result);
    if (status == PGRES_PIPELINE_SYNC)
      break;
    if (status != PGRES_COMMAND_OK)
      throw std::runtime_error("a libpq pipelined INSERT failed");
    ++done;
  }
  PQexitPipelineMode(raw);
  if (done != statements)
    throw std::runtime_error("the libpq pipeline saw the wrong number of results");
  return static_cast<double>(statements) / seconds_since(started);
#else
  (void)raw;
  (void)admin;
  (void)statements;
  return 0;
#endif
}

void print_row(const std::string& what, double pgkit_rate, double baseline_rate) {
  std::printf("%-44s %12.0f %12.0f %7.2fx\n", what.c_str(), pgkit_rate, baseline_rate,
              pgkit_rate / baseline_rate);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    bench::server server{argc, argv, "bench_query"};
    const long stream_rows = count_from_env("PGKIT_BENCH_STREAM_ROWS", 10'000'000);
    const long copy_rows = count_from_env("PGKIT_BENCH_COPY_ROWS", 1'000'000);
    auto conn = pgkit::connect(server.url());
    PGconn* raw = PQconnectdb(server.url().c_str());
    if (PQstatus(raw) != CONNECTION_OK)
      throw std::runtime_error(PQerrorMessage(raw));
    const std::string mode{pgkit::detail::row_mode()};
    std::printf("%-44s %12s %12s %8s\n", "rows/s (best of the rounds)", "pgkit", "baseline",
                "ratio");

    const long stream_rounds = count_from_env("PGKIT_BENCH_STREAM_ROUNDS", 5);
    stream_figures best_libpq, best_pgkit;
    best_libpq.cpu_ns_per_row = best_pgkit.cpu_ns_per_row = 1e18;
    std::uint64_t worst_growth = 0;
    auto keep_best = [](stream_figures& best, const stream_figures& figures) {
      best.rows_per_second = std::max(best.rows_per_second, figures.rows_per_second);
      best.cpu_ns_per_row = std::min(best.cpu_ns_per_row, figures.cpu_ns_per_row);
    };
    // Each side goes first in every other round.
    for (long round = 0; round < stream_rounds; ++round) {
      if (round % 2 == 0)
        keep_best(best_libpq, libpq_stream(raw, stream_rows));
      auto figures = pgkit_stream(*conn, stream_rows);
      keep_best(best_pgkit, figures);
      worst_growth = std::max(worst_growth, figures.growth_after_tenth);
      if (round % 2 == 1)
        keep_best(best_libpq, libpq_stream(raw, stream_rows));
    }
    print_row("stream_query " + std::to_string(stream_rows) + " rows vs libpq (" + mode + ")",
              best_pgkit.rows_per_second, best_libpq.rows_per_second);
    // Rows per client CPU second: the ratio is libpq's CPU per row over pgkit's.
    print_row("  rows per client CPU second", 1e9 / best_pgkit.cpu_ns_per_row,
              1e9 / best_libpq.cpu_ns_per_row);
    std::printf("%-44s %12.3f MiB (must stay under 1 MiB)\n",
                "  stream_query RSS growth after 1/10",
                static_cast<double>(worst_growth) / (1024.0 * 1024.0));

    auto data = copy_data(copy_rows);
    auto dir = std::filesystem::temp_directory_path() /
               ("pgkit-bench-query-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const std::string csv = (dir / "rows.csv").string();
    {
      std::ofstream out{csv};
      for (const auto& entry : data)
        out << entry.number << ',' << entry.text << ',' << entry.at << '\n';
    }
    double best_copy = 0, best_psql = 0;
    for (int round = 0; round < k_rounds; ++round) {
      best_psql = std::max(best_psql, psql_copy(*conn, server.url(), csv, data.size()));
      best_copy = std::max(best_copy, pgkit_copy(*conn, data));
    }
    double inserts = libpq_inserts(raw, data, *conn);
    print_row("copy_in " + std::to_string(copy_rows) + " rows vs psql \\copy (CSV)", best_copy,
              best_psql);
    print_row("copy_in " + std::to_string(copy_rows) + " rows vs 1000-row INSERTs", best_copy,
              inserts);
    // The ceiling for any client: the server's own COPY ingestion (psql) against the INSERTs.
    print_row("  psql \\copy vs 1000-row INSERTs (the server's limit)", best_psql, inserts);

    const long statements = count_from_env("PGKIT_BENCH_PIPELINE_STATEMENTS", 1000);
    double best_pipeline = 0, best_single = 0, best_raw_pipeline = 0;
    for (int round = 0; round < k_pipeline_rounds; ++round) {
      best_raw_pipeline = std::max(best_raw_pipeline, pipeline_libpq(raw, *conn, statements));
      best_pipeline = std::max(best_pipeline, pipeline_pgkit(*conn, statements));
      best_single = std::max(best_single, one_at_a_time(*conn, statements));
    }
    const std::string inserts_label = std::to_string(statements) + " INSERTs";
    print_row("pipeline " + inserts_label + " vs one round trip each", best_pipeline, best_single);
    if (best_raw_pipeline > 0)
      print_row("pipeline " + inserts_label + " vs libpq's pipeline", best_pipeline,
                best_raw_pipeline);
    else
      std::printf("%-44s (built against libpq < 14: no baseline)\n",
                  "pipeline vs libpq's pipeline");
    pgkit::execute_no_data(*conn, "DROP TABLE bench_pipeline");

    reset_table(*conn);
    pgkit::execute_no_data(*conn, "DROP TABLE bench_copy");
    std::filesystem::remove_all(dir);
    PQfinish(raw);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_query: " << e.what() << '\n';
    return 1;
  }
}
