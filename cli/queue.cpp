// `pgkit queue enqueue|stats|retry|cancel|work`: the job queue from the shell. `enqueue` prints
// the new job's id, `stats` counts jobs per queue and state, `retry` and `cancel` change one
// job (or every discarded job of a queue), and `work` runs a command per job with its payload
// on stdin (exit 0: done, else failed), like `listen --exec` does per notification.

#include <signal.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "child_command.hpp"
#include "commands.hpp"
#include "context.hpp"
#include "core/utf8.hpp"
#include "number_option.hpp"
#include "pgkit/error.hpp"
#include "pgkit/queue.hpp"

namespace pgkit::cli {
namespace {

using std::chrono::milliseconds;

// The longest a worker waits for running commands after SIGINT or SIGTERM.
constexpr milliseconds k_stop_deadline{30000};

queue_store open_store(context& ctx) {
  queue_options options;
  options.schema = ctx.schema();
  return queue_store{ctx.connect_pool(), options};
}

std::string checked_queue(const std::string& queue) {
  if (queue.empty() || queue.size() > 128)
    throw usage_error("a queue name must be 1 to 128 bytes long", "run 'pgkit queue --help'");
  check_utf8("QUEUE", queue);
  return queue;
}

// Reads "2026-12-06T17:00:00Z", "2026-12-06 17:00:00.5+01:00" and the like: a time needs its
// zone, because the server and the caller may not share one.
std::chrono::system_clock::time_point parse_run_at(const std::string& text) {
  auto refuse = [&text]() -> std::chrono::system_clock::time_point {
    throw usage_error("--run-at '" + text + "' is not a time with a zone",
                      "write it as 2026-12-06T17:00:00Z or 2026-12-06T18:00:00+01:00");
  };
  std::tm fields{};
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d%*1[T ]%2d:%2d:%2d%n", &fields.tm_year, &fields.tm_mon,
                  &fields.tm_mday, &fields.tm_hour, &fields.tm_min, &fields.tm_sec,
                  &consumed) != 6) {
    return refuse();
  }
  std::string_view rest = std::string_view{text}.substr(static_cast<std::size_t>(consumed));
  long long micros = 0;
  if (!rest.empty() && rest.front() == '.') {
    rest.remove_prefix(1);
    int digits = 0;
    while (!rest.empty() && rest.front() >= '0' && rest.front() <= '9') {
      if (digits < 6) {
        micros = micros * 10 + (rest.front() - '0');
        ++digits;
      }
      rest.remove_prefix(1);
    }
    for (; digits < 6; ++digits)
      micros *= 10;
  }
  long offset_seconds = 0;
  if (rest == "Z" || rest == "z") {
  } else if (rest.size() >= 3 && (rest.front() == '+' || rest.front() == '-')) {
    int hours = 0, minutes = 0;
    std::string zone{rest.substr(1)};
    if (std::sscanf(zone.c_str(), "%2d:%2d", &hours, &minutes) < 1 || hours > 23 || minutes > 59)
      return refuse();
    offset_seconds = (hours * 3600L + minutes * 60L) * (rest.front() == '-' ? -1 : 1);
  } else {
    return refuse();
  }
  if (fields.tm_mon < 1 || fields.tm_mon > 12 || fields.tm_mday < 1 || fields.tm_mday > 31 ||
      fields.tm_hour > 23 || fields.tm_min > 59 || fields.tm_sec > 60) {
    return refuse();
  }
  fields.tm_year -= 1900;
  fields.tm_mon -= 1;
  auto seconds = ::timegm(&fields) - offset_seconds;
  return std::chrono::system_clock::time_point{
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds{seconds} + std::chrono::microseconds{micros})};
}

// ---- enqueue

struct enqueue_cli_options {
  std::string queue;
  std::optional<std::string> payload;  // std::nullopt: read stdin
  std::optional<std::string> run_at;
  std::optional<milliseconds> delay;
  int priority = 0;
  std::size_t max_attempts = 20;
  std::optional<std::string> unique_key;
};

int run_enqueue(const enqueue_cli_options& options, context& ctx) {
  enqueue_options settings;
  if (options.run_at && options.delay)
    throw usage_error("--run-at and --delay both say when the job is due", "give one of them");
  if (options.run_at)
    settings.run_at = parse_run_at(*options.run_at);
  settings.delay = options.delay.value_or(milliseconds{0});
  settings.priority = options.priority;
  settings.max_attempts = static_cast<int>(options.max_attempts);
  settings.unique_key = options.unique_key;
  std::string payload;
  if (options.payload) {
    payload = *options.payload;
  } else {
    payload.assign(std::istreambuf_iterator<char>{std::cin}, std::istreambuf_iterator<char>{});
  }
  auto store = open_store(ctx);
  auto id = store.enqueue(options.queue, payload, settings);
  const auto& out = ctx.out();
  if (out.json())
    out.document({{"id", id}, {"queue", options.queue}});
  else
    out.data(std::to_string(id) + "\n");
  return exit_ok;
}

void setup_enqueue(CLI::App& command, const global_options& globals, int& exit_status) {
  auto options = std::make_shared<enqueue_cli_options>();
  command
      .add_option_function<std::string>(
          "queue", [options](const std::string& queue) { options->queue = checked_queue(queue); },
          "the queue")
      ->required();
  command.add_option("payload", options->payload,
                     "the job's payload (bytes or JSON text); default: read from stdin");
  command.add_option("--run-at", options->run_at, "when the job is due, e.g. 2026-12-06T17:00:00Z")
      ->option_text("TIME");
  add_seconds_option(command, "--delay", options->delay, zero_seconds::allowed,
                     "due this long from now, default 0");
  add_integer_option(command, "--priority", options->priority, -1000000, 1000000,
                     "lower runs first among due jobs, default 0");
  add_count_option(command, "--max-attempts", options->max_attempts, 1, 1000,
                   "runs at most this often, then the job is discarded, default 20");
  command
      .add_option("--unique-key", options->unique_key,
                  "add no second job with this key to the queue until the first one ends; "
                  "print the first one's id")
      ->option_text("KEY");
  command.callback([options, &globals, &exit_status] {
    context ctx{globals};
    exit_status = run_enqueue(*options, ctx);
  });
}

// ---- stats

int run_stats(context& ctx) {
  auto store = open_store(ctx);
  auto counts = store.stats();
  std::map<std::string, std::map<job_state, std::uint64_t>> by_queue;
  for (const auto& count : counts)
    by_queue[count.queue][count.state] = count.jobs;
  const job_state states[] = {job_state::available, job_state::running, job_state::completed,
                              job_state::discarded, job_state::cancelled};
  const auto& out = ctx.out();
  if (out.json()) {
    nlohmann::ordered_json queues = nlohmann::ordered_json::object();
    for (const auto& [queue, per_state] : by_queue) {
      nlohmann::ordered_json row = nlohmann::ordered_json::object();
      for (auto state : states) {
        auto found = per_state.find(state);
        row[std::string{to_string(state)}] = found == per_state.end() ? 0 : found->second;
      }
      queues[queue] = row;
    }
    out.document({{"schema", store.schema()}, {"queues", queues}});
    return exit_ok;
  }
  std::string text = fmt::format("{:<24} {:>10} {:>10} {:>10} {:>10} {:>10}\n", "QUEUE",
                                 "available", "running", "completed", "discarded", "cancelled");
  for (const auto& [queue, per_state] : by_queue) {
    text += fmt::format("{:<24}", queue);
    for (auto state : states) {
      auto found = per_state.find(state);
      text += fmt::format(" {:>10}", found == per_state.end() ? 0 : found->second);
    }
    text += "\n";
  }
  out.data(text);
  return exit_ok;
}

// ---- retry and cancel

struct job_cli_options {
  std::optional<std::size_t> id;
  std::optional<std::string> all_discarded;  // retry only: the queue
};

int run_retry(const job_cli_options& options, context& ctx) {
  if (options.id.has_value() == options.all_discarded.has_value())
    throw usage_error("retry needs a job ID or --all-discarded QUEUE (one of them)",
                      "run 'pgkit queue retry --help'");
  auto store = open_store(ctx);
  const auto& out = ctx.out();
  if (options.all_discarded) {
    auto retried = store.retry_discarded(*options.all_discarded);
    if (out.json())
      out.document({{"queue", *options.all_discarded}, {"retried", retried}});
    else
      out.report(fmt::format("retried {} discarded job{} of queue {}", retried,
                             retried == 1 ? "" : "s", *options.all_discarded));
    return exit_ok;
  }
  auto id = static_cast<std::int64_t>(*options.id);
  if (!store.retry(id)) {
    auto found = store.find(id);
    throw error(error_kind::check_failed,
                found ? fmt::format("job {} is {}, not discarded or cancelled: nothing to retry",
                                    id, to_string(found->state))
                      : fmt::format("there is no job {}", id),
                "run 'pgkit queue stats' to see the jobs per state");
  }
  if (out.json())
    out.document({{"id", id}, {"retried", 1}});
  else
    out.report(fmt::format("job {} is due again", id));
  return exit_ok;
}

int run_cancel(const job_cli_options& options, context& ctx) {
  auto store = open_store(ctx);
  auto id = static_cast<std::int64_t>(*options.id);
  if (!store.cancel(id)) {
    auto found = store.find(id);
    throw error(
        error_kind::check_failed,
        found ? fmt::format("job {} is {} already: nothing to cancel", id, to_string(found->state))
              : fmt::format("there is no job {}", id),
        "only available and running jobs can be cancelled");
  }
  const auto& out = ctx.out();
  if (out.json())
    out.document({{"id", id}, {"cancelled", 1}});
  else
    out.report(fmt::format("job {} cancelled", id));
  return exit_ok;
}

CLI::Option* add_job_id(CLI::App& command, const std::shared_ptr<job_cli_options>& options) {
  return command.add_option_function<std::string>(
      "id",
      [options, name = command.get_name()](const std::string& text) {
        options->id =
            parse_count("queue " + name, "ID", text, 1, static_cast<std::size_t>(INT64_MAX));
      },
      "the job's id (as enqueue printed it)");
}

// ---- work

struct work_cli_options {
  std::string queue;
  std::size_t concurrency = 1;
  bool until_empty = false;
  milliseconds poll{1000};
  bool exec = false;  // the command is in global_options::trailing
};

int run_work(const work_cli_options& options, context& ctx) {
  const auto& command = ctx.globals().trailing;
  if (!options.exec || command.empty())
    throw usage_error("queue work needs --exec CMD", "put --exec last: --exec CMD [ARG...]");
  auto store = open_store(ctx);
  store.check();
  const auto& out = ctx.out();
  queue_worker_options settings;
  settings.threads = options.concurrency;
  settings.poll_interval = options.poll;
  settings.on_error = [&out](const pgkit::error& e) { out.warning(e.what(), e.hint()); };
  // SIGINT and SIGTERM are taken by this thread with sigtimedwait: blocked here before the
  // worker's threads start, so that they inherit the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigset_t previous;
  ::pthread_sigmask(SIG_BLOCK, &stop_signals, &previous);
  struct restore_mask {
    sigset_t mask;
    ~restore_mask() { ::pthread_sigmask(SIG_SETMASK, &mask, nullptr); }
  } restore{previous};
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  ::sigaction(SIGPIPE, &ignore, nullptr);

  queue_worker worker{store, settings};
  worker.handle(options.queue, [&command, &out](const job& claimed) {
    auto outcome = run_child_command(command, claimed.payload,
                                     {{"PGKIT_JOB_ID", std::to_string(claimed.id)},
                                      {"PGKIT_QUEUE", claimed.queue},
                                      {"PGKIT_ATTEMPT", std::to_string(claimed.attempt)}});
    if (!outcome.succeeded()) {
      auto what = "'" + command_text(command) + "' " + outcome.describe();
      out.warning(fmt::format("job {} failed: {}", claimed.id, what));
      throw std::runtime_error(what);
    }
  });
  out.detail("working on queue " + options.queue + " in schema " + store.schema());
  std::atomic<bool> done{false};
  std::thread runner;
  if (options.until_empty) {
    runner = std::thread([&worker, &done] {
      worker.run_until_empty();
      done = true;
    });
  } else {
    worker.start();
  }
  bool stopped_in_time = true;
  const timespec tick{0, 100 * 1000 * 1000};
  while (!done) {
    if (::sigtimedwait(&stop_signals, nullptr, &tick) > 0) {
      out.detail("stopping: waiting for running commands");
      stopped_in_time = worker.stop(k_stop_deadline);
      break;
    }
  }
  if (runner.joinable())
    runner.join();
  if (!options.until_empty)
    stopped_in_time = worker.stop(k_stop_deadline) && stopped_in_time;
  auto ran = worker.processed();
  auto failed = worker.failed();
  if (out.json()) {
    out.document({{"queue", options.queue}, {"ran", ran}, {"failed", failed}});
  } else {
    out.report(fmt::format("ran {} job{} of queue {} ({} failed)", ran, ran == 1 ? "" : "s",
                           options.queue, failed));
  }
  if (!stopped_in_time) {
    throw error(error_kind::timeout,
                "commands still running after " + duration_text(k_stop_deadline),
                "their jobs run again after their timeout");
  }
  return exit_ok;
}

void setup_work(CLI::App& command, const global_options& globals, int& exit_status) {
  auto options = std::make_shared<work_cli_options>();
  command
      .add_option_function<std::string>(
          "queue", [options](const std::string& queue) { options->queue = checked_queue(queue); },
          "the queue whose jobs to run")
      ->required();
  add_count_option(command, "--concurrency", options->concurrency, 1, 256,
                   "commands running at once, default 1");
  command.add_flag("--until-empty", options->until_empty,
                   "exit when no job is due, instead of waiting for more");
  add_seconds_option(command, "--poll", options->poll, zero_seconds::refused,
                     "look for due jobs this often when not woken by NOTIFY, default 1");
  command
      .add_flag("--exec", options->exec,
                "run CMD for each job, payload on stdin, PGKIT_JOB_ID, PGKIT_QUEUE and "
                "PGKIT_ATTEMPT set; exit 0 completes the job, else it fails; must come last")
      ->option_text("CMD [ARG...]");
  command.callback([options, &globals, &exit_status] {
    context ctx{globals};
    exit_status = run_work(*options, ctx);
  });
}

}  // namespace

void setup_queue(CLI::App& command, const global_options& globals, int& exit_status) {
  command.require_subcommand(1);
  auto* enqueue = command.add_subcommand("enqueue", "add a job to QUEUE and print its id");
  enqueue->fallthrough();
  setup_enqueue(*enqueue, globals, exit_status);

  auto* stats = command.add_subcommand("stats", "count the jobs of each queue per state");
  stats->fallthrough();
  stats->callback([&globals, &exit_status] {
    context ctx{globals};
    exit_status = run_stats(ctx);
  });

  auto* retry = command.add_subcommand("retry", "make a discarded or cancelled job due again");
  retry->fallthrough();
  auto retry_options = std::make_shared<job_cli_options>();
  add_job_id(*retry, retry_options);
  retry
      ->add_option("--all-discarded", retry_options->all_discarded,
                   "retry every discarded job of QUEUE")
      ->option_text("QUEUE");
  retry->callback([retry_options, &globals, &exit_status] {
    context ctx{globals};
    exit_status = run_retry(*retry_options, ctx);
  });

  auto* cancel = command.add_subcommand("cancel", "cancel an available or running job");
  cancel->fallthrough();
  auto cancel_options = std::make_shared<job_cli_options>();
  add_job_id(*cancel, cancel_options)->required();
  cancel->callback([cancel_options, &globals, &exit_status] {
    context ctx{globals};
    exit_status = run_cancel(*cancel_options, ctx);
  });

  auto* work = command.add_subcommand("work", "run a command for each job of QUEUE");
  work->fallthrough();
  setup_work(*work, globals, exit_status);
}

}  // namespace pgkit::cli
