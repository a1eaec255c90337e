// One thread of echolab-load: its own io_context (Asio's io_context-per-thread pattern, so
// the threads share nothing while the run goes on) and its share of the connections.
#pragma once

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <cstddef>
#include <memory>
#include <vector>

#include "loadgen/client_connection.hpp"
#include "loadgen/worker_context.hpp"

namespace echolab::load {

class LoadWorker {
 public:
  // Takes connections worker_index, worker_index + worker_count, ... of the plan.
  LoadWorker(const RunPlan& plan, ConnectionGauge& gauge, std::size_t worker_index,
             std::size_t worker_count);
  ~LoadWorker();
  LoadWorker(const LoadWorker&) = delete;
  LoadWorker& operator=(const LoadWorker&) = delete;
  LoadWorker(LoadWorker&&) = delete;
  LoadWorker& operator=(LoadWorker&&) = delete;

  // The thread's body; returns once stop() has closed every connection.
  void run();
  // Safe from any thread. From this call on no connection acts on what its socket brings;
  // the connections close in the thread soon after, accounting for what was in flight when
  // the run ended at `run_end`.
  void stop(Clock::time_point run_end);

  [[nodiscard]] const LiveCounters& live() const { return context_.live; }
  // Complete once run() has returned.
  [[nodiscard]] const LoadStats& stats() const { return context_.stats; }
  [[nodiscard]] const SecondSeries& series() const { return context_.series; }

 private:
  void open_due_connections();
  void sweep_timeouts();

  // Declared first so that it is destroyed last, after every socket and timer that uses it.
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> keep_running_;
  WorkerContext context_;
  asio::steady_timer ramp_timer_;
  asio::steady_timer sweep_timer_;
  std::vector<std::unique_ptr<ClientConnection>> connections_;  // in the order they open
  std::vector<Clock::time_point> open_times_;
  std::size_t opened_ = 0;
};

}  // namespace echolab::load
