// The thread-pool model: one asio::io_context run by N threads, asynchronous accept, read
// and write driving the same Session as the other servers. A handler that blocks (a /sleep)
// holds one of the N threads: with N blocked, nobody is served. That is the lesson.
// --io-context-per-thread switches to Asio's server2 pattern: N io_contexts of one thread
// each, connections dealt out round-robin, no shared reactor lock.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "common/drivers/async_accept_loop.hpp"
#include "common/drivers/async_connection.hpp"
#include "common/metrics/striped_metrics.hpp"
#include "common/server/server_options.hpp"

namespace echolab {

struct PoolOptions {
  ServerOptions server = default_options(Model::pool);
  std::size_t threads = 0;  // 0 = one per CPU
  bool context_per_thread = false;
};

class PoolServer final : public AsyncConnectionHost {
 public:
  PoolServer(asio::io_context& io, const PoolOptions& options, StripedMetrics& metrics,
             int listen_fd);

  // Runs the io_context on the pool's threads until a shutdown signal arrives on `signal_fd`
  // (open_shutdown_signalfd()), then drains; returns the exit code.
  int run(int signal_fd);

  // AsyncConnectionHost: called by connections.
  [[nodiscard]] const ServerOptions& options() const override { return options_.server; }
  [[nodiscard]] StripedMetrics& metrics() override { return metrics_; }
  [[nodiscard]] bool stopping() const override { return stopping_.load(std::memory_order_relaxed); }
  void connection_ended(AsyncConnection* connection) override;

 private:
  void serve(asio::ip::tcp::socket socket);
  void wait_for_shutdown_signal(int signal_fd);
  bool drain();
  void shut_down();
  void run_thread(asio::io_context& context, std::chrono::steady_clock::time_point created);
  asio::ip::tcp::socket in_next_context(asio::ip::tcp::socket socket);
  void stop_all();

  asio::io_context& io_;  // accepts and takes the signals; in the shared mode, runs everything
  std::vector<std::unique_ptr<asio::io_context>> extra_contexts_;  // per-thread mode only
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> keep_running_;
  std::size_t next_context_ = 0;  // touched by the accept handler only
  PoolOptions options_;
  StripedMetrics& metrics_;
  AsyncAcceptLoop accept_loop_;
  std::atomic<bool> stopping_ = false;
  std::mutex threads_mutex_;
  std::condition_variable threads_returned_;
  std::size_t running_threads_ = 0;  // pool threads not yet back from run(); threads_mutex_
  std::mutex connections_mutex_;
  // Every open connection, for the shutdown to reach them; guarded by connections_mutex_.
  OpenConnections connections_;
  bool accepting_ended_ = false;  // no accept left to complete; connections_mutex_
};

}  // namespace echolab
