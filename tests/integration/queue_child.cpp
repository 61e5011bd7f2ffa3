// A worker process for the queue's tests, so that tests can run several and kill one.
//   queue_child URL work QUEUE THREADS     runs jobs until stdin closes; each job's handler
//                                          inserts its id into table ran (id bigint)
//   queue_child URL hang QUEUE -           a worker (named "hanging worker") whose handler prints
//                                          "claimed ID" and never returns
//   queue_child URL tick NAME QUEUE MS     carries schedule NAME (interval MS) until stdin closes
// It prints "ready" once started and "stopped" after a graceful stop.

#include <pqxx/pqxx>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "pgkit/config.hpp"
#include "pgkit/pool.hpp"
#include "pgkit/queue.hpp"

int main(int argc, char** argv) {
  if (argc < 6) {
    std::cerr << "usage: queue_child URL work|hang|tick ARGS...\n";
    return 2;
  }
  try {
    std::string url = argv[1];
    std::string mode = argv[2];
    auto config = pgkit::config_from_url(url, "child");
    config.pool_size = 10;
    auto connections = std::make_shared<pgkit::pool>(config);
    pgkit::queue_store store{connections};
    pgkit::queue_worker_options options;
    options.poll_interval = std::chrono::milliseconds{50};
    if (mode == "hang") {
      options.worker_name = "hanging worker";
      pgkit::queue_worker worker{store, options};
      worker.handle(argv[3], [](const pgkit::job& claimed) {
        std::cout << "claimed " << claimed.id << std::endl;
        for (;;)
          std::this_thread::sleep_for(std::chrono::seconds{1});
      });
      worker.start();
      std::this_thread::sleep_for(std::chrono::minutes{5});
      return 0;
    }
    if (mode == "work") {
      options.threads = std::stoul(argv[4]);
      options.batch_size = 4;
    } else {
      pgkit::queue_schedule schedule;
      schedule.name = argv[3];
      schedule.queue = argv[4];
      schedule.interval = std::chrono::milliseconds{std::stoll(argv[5])};
      options.schedules.push_back(schedule);
    }
    options.on_error = [](const pgkit::error& e) {
      std::cerr << "error: " << e.what() << std::endl;
    };
    pgkit::queue_worker worker{store, options};
    if (mode == "work") {
      worker.handle(argv[3], [&url](const pgkit::job& claimed) {
        thread_local pqxx::connection connection{url};
        pqxx::work tx{connection};
        tx.exec("INSERT INTO ran (id) VALUES (" + std::to_string(claimed.id) + ")");
        tx.commit();
      });
    }
    worker.start();
    std::cout << "ready" << std::endl;
    std::string line;
    while (std::getline(std::cin, line)) {
    }
    bool finished = worker.stop(std::chrono::seconds{10});
    std::cout << (finished ? "stopped" : "still running") << std::endl;
    return finished ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "queue_child: " << e.what() << std::endl;
    return 1;
  }
}
