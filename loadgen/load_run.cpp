#include "loadgen/load_run.hpp"

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include "loadgen/load_metrics.hpp"
#include "loadgen/load_worker.hpp"
#include "loadgen/resource_limits.hpp"
#include "loadgen/run_report.hpp"
#include "loadgen/stall_watch.hpp"

namespace echolab::load {
namespace {

int refuse_to_start(const std::string& why) {
  std::cerr << "echolab-load: " << why << '\n';
  return 2;
}

std::optional<asio::ip::tcp::endpoint> resolve(const Target& target, std::string& why) {
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  asio::error_code error;
  const auto results = resolver.resolve(target.host, std::to_string(target.port), error);
  if (error || results.empty()) {
    why = "cannot resolve " + target.host + ": " + (error ? error.message() : "no address");
    return std::nullopt;
  }
  return results.begin()->endpoint();
}

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return to > from ? std::chrono::duration<double>(to - from).count() : 0.0;
}

// Owns the threads for the length of a run and prints the progress line once a second.
class LoadRun {
 public:
  LoadRun(RunPlan plan, LoadMetricsEndpoint* metrics)
      : plan_(std::move(plan)), metrics_(metrics), stall_watch_(plan_.options.stall_threshold) {}

  RunReport execute() {
    wait_for_start();
    plan_.start = Clock::now();
    window_start_ = WallClock::now();
    plan_.hold_start = plan_.start + plan_.options.ramp;
    for (std::size_t i = 0; i < plan_.options.threads; ++i) {
      workers_.push_back(std::make_unique<LoadWorker>(plan_, gauge_, i, plan_.options.threads));
    }
    if (metrics_ != nullptr) {
      metrics_->follow([this] { return live_series(); });
    }
    for (auto& worker : workers_) {
      threads_.emplace_back([&worker] { worker->run(); });
    }
    watch_until_done();
    const auto stopped = Clock::now();
    connections_open_at_end_ = static_cast<std::uint64_t>(gauge_.open());
    stall_watch_.finish(stopped - plan_.start);
    window_end_ = WallClock::now();
    for (auto& worker : workers_) {
      worker->stop(stopped);
    }
    for (auto& thread : threads_) {
      thread.join();
    }
    RunReport result = report(stopped);
    if (metrics_ != nullptr) {
      metrics_->follow([final_series = final_series(result)] { return final_series; });
    }
    return result;
  }

 private:
  [[nodiscard]] LoadSeries live_series() const {
    LoadSeries series;
    for (const auto& worker : workers_) {
      series.add(worker->live());
    }
    series.connections_open = gauge_.open();
    return series;
  }

  // The live counts once every thread has stopped, plus the connects still unanswered at the
  // end, which only the merged report can tell from ordinary ones: the JSON's totals.
  [[nodiscard]] LoadSeries final_series(const RunReport& result) const {
    LoadSeries series = live_series();
    const auto unfinished = static_cast<std::size_t>(ErrorKind::connect_unfinished);
    series.errors[unfinished] = result.stats.errors[unfinished];
    return series;
  }

  // Replicas started with the same --start-at measure the same window. The wall clock is
  // read again after each sleep, so a clock stepped meanwhile (NTP) still starts on time.
  void wait_for_start() const {
    const auto& start_at = plan_.options.start_at;
    if (!start_at || WallClock::now() >= *start_at) {
      return;
    }
    if (!plan_.options.quiet) {
      std::cerr << "echolab-load: waiting until " + iso8601_utc(*start_at) + " to start\n";
    }
    while (WallClock::now() < *start_at) {
      std::this_thread::sleep_for(
          std::min<WallClock::duration>(*start_at - WallClock::now(), std::chrono::seconds(1)));
    }
  }

  void watch_until_done() {
    asio::io_context io(1);
    asio::steady_timer end_of_run(io, plan_.start + plan_.options.run_time());
    asio::steady_timer progress(io);
    asio::steady_timer stall_look(io);
    asio::steady_timer connections_sample(io);
    asio::signal_set signals(io, SIGINT, SIGTERM);
    // The last progress tick may be queued already when the run ends, so cancelling the
    // timer is not enough: the tick checks `finished_` too.
    end_of_run.async_wait([&](const asio::error_code&) {
      finished_ = true;
      signals.cancel();
      progress.cancel();
      stall_look.cancel();
      connections_sample.cancel();
    });
    signals.async_wait([&](const asio::error_code& error, int) {
      if (!error) {
        interrupted_ = true;
        finished_ = true;
        end_of_run.cancel();
        progress.cancel();
        stall_look.cancel();
        connections_sample.cancel();
      }
    });
    if (!plan_.options.quiet) {
      tick(progress, 1);
    }
    look_for_stalls(stall_look);
    sample_connections(connections_sample, 1);
    io.run();
  }

  // The connections open as second `second` begins: those open at the end of the one before.
  void sample_connections(asio::steady_timer& timer, int second) {
    timer.expires_at(plan_.start + std::chrono::seconds(second));
    timer.async_wait([this, &timer, second](const asio::error_code& error) {
      if (!error && !finished_) {
        connections_open_by_second_.push_back(static_cast<std::uint64_t>(gauge_.open()));
        sample_connections(timer, second + 1);
      }
    });
  }

  // Answers are good replies and replies found bad: a server that answers wrongly has not
  // stalled (its errors fail the run anyway).
  void look_for_stalls(asio::steady_timer& timer) {
    std::uint64_t answers = 0;
    std::uint64_t outstanding = 0;
    for (const auto& worker : workers_) {
      const LiveCounters& live = worker->live();
      answers += live.requests.load(std::memory_order_relaxed) +
                 live.errors_by_kind[static_cast<std::size_t>(ErrorKind::bad_reply)].load(
                     std::memory_order_relaxed) +
                 live.errors_by_kind[static_cast<std::size_t>(ErrorKind::oversized_reply)].load(
                     std::memory_order_relaxed);
      outstanding += live.outstanding.load(std::memory_order_relaxed);
    }
    stall_watch_.observe(Clock::now() - plan_.start, answers, outstanding);
    timer.expires_after(StallWatch::period_for(plan_.options.stall_threshold));
    timer.async_wait([this, &timer](const asio::error_code& error) {
      if (!error && !finished_) {
        look_for_stalls(timer);
      }
    });
  }

  void tick(asio::steady_timer& progress, int second) {
    progress.expires_at(plan_.start + std::chrono::seconds(second));
    progress.async_wait([this, &progress, second](const asio::error_code& error) {
      if (!error && !finished_) {
        print_progress(second);
        tick(progress, second + 1);
      }
    });
  }

  void print_progress(int second) {
    std::uint64_t requests = 0;
    std::uint64_t errors = 0;
    for (const auto& worker : workers_) {
      requests += worker->live().requests.load(std::memory_order_relaxed);
      errors += worker->live().errors.load(std::memory_order_relaxed);
    }
    const char* phase = "";
    if (plan_.options.hold) {
      phase = Clock::now() < plan_.hold_start ? "  ramp" : "  hold";
    }
    std::ostringstream line;
    line << '[' << std::setw(4) << second << "s] " << std::setw(7) << gauge_.open() << " open  "
         << std::setw(9) << requests - last_requests_ << " req/s  " << errors << " errors" << phase;
    if (const auto silent = stall_watch_.ongoing()) {
      line << std::fixed << std::setprecision(1) << "  stalled "
           << std::chrono::duration<double>(*silent).count() << 's';
    }
    line << '\n';
    std::cerr << line.str();  // one write, so that a line is never split
    last_requests_ = requests;
  }

  RunReport report(Clock::time_point stopped) {
    RunReport result;
    result.options = plan_.options;
    for (const auto& worker : workers_) {
      result.stats.merge(worker->stats());
    }
    result.stats.count_unfinished_connects(plan_.options.target.to_string());
    for (const auto& worker : workers_) {
      result.series.merge(worker->series());
    }
    result.series.count_errors_at_end(ErrorKind::connect_unfinished,
                                      result.stats.error_count(ErrorKind::connect_unfinished));
    // The seconds the once-a-second sample did not reach (the last, and any the watching
    // thread was too late for at the end) get the count at the end of the run.
    const std::size_t seconds = result.series.seconds().size();
    for (std::size_t second = 0; second < seconds; ++second) {
      result.series.set_connections_open(second, second < connections_open_by_second_.size()
                                                     ? connections_open_by_second_[second]
                                                     : connections_open_at_end_);
    }
    result.duration_s = seconds_between(plan_.start, stopped);
    result.hold_s = plan_.options.hold ? seconds_between(plan_.hold_start, stopped) : 0.0;
    result.connections_open_peak = static_cast<std::uint64_t>(gauge_.peak());
    result.interrupted = interrupted_;
    result.window_start = window_start_;
    result.window_end = window_end_;
    result.stalls = stall_watch_.stalls();
    return result;
  }

  RunPlan plan_;
  LoadMetricsEndpoint* metrics_;  // null without --metrics-listen
  StallWatch stall_watch_;        // read and written by the watching thread only
  ConnectionGauge gauge_;
  std::vector<std::unique_ptr<LoadWorker>> workers_;
  std::vector<std::thread> threads_;
  std::uint64_t last_requests_ = 0;
  // Read by the watching thread as each second ends, and once more when the run does.
  std::vector<std::uint64_t> connections_open_by_second_;
  std::uint64_t connections_open_at_end_ = 0;
  bool interrupted_ = false;
  bool finished_ = false;
  WallClock::time_point window_start_{};
  WallClock::time_point window_end_{};
};

}  // namespace

int run_load(const LoadOptions& options) {
  // A send to a socket the server has reset must be a counted error, not a fatal signal.
  if (std::signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
    return refuse_to_start("cannot ignore SIGPIPE");
  }

  const std::size_t connections = options.shard_connections();
  const auto limits = current_limits(descriptors_needed(connections, options.threads));
  if (const auto problem = limits_problem(limits, connections, options.threads)) {
    return refuse_to_start(*problem);
  }
  std::string why;
  const auto endpoint = resolve(options.target, why);
  if (!endpoint) {
    return refuse_to_start(why);
  }
  // Opened before the run so that a bad path fails in a second, not after the whole run.
  std::ofstream json_file;
  if (!options.json_path.empty()) {
    json_file.open(options.json_path);
    if (!json_file) {
      return refuse_to_start("cannot write --json " + options.json_path);
    }
  }

  // Bound before the wait for --start-at, so that a Prometheus finds it from the start.
  std::unique_ptr<LoadMetricsEndpoint> metrics;
  if (options.metrics_listen) {
    try {
      metrics = std::make_unique<LoadMetricsEndpoint>(*options.metrics_listen, options);
    } catch (const std::runtime_error& error) {
      return refuse_to_start(error.what());
    }
  }

  RunPlan plan{.options = options, .requests = build_requests(options), .endpoint = *endpoint};
  LoadRun run(std::move(plan), metrics.get());
  const RunReport report = run.execute();

  write_summary(std::cout, report);
  std::cout.flush();
  if (const auto failure = report.failure()) {
    std::cerr << "echolab-load: " << *failure << '\n';
  }
  if (json_file.is_open()) {
    write_json(json_file, report);
    json_file.close();
    if (!json_file) {
      std::cerr << "echolab-load: writing --json " << options.json_path << " failed\n";
      return 2;
    }
  }
  if (metrics) {
    std::this_thread::sleep_for(options.metrics_linger);
  }
  return report.exit_status();
}

}  // namespace echolab::load
