// One hybrid worker process: a single thread running one asio::io_context, accepting from its
// listening socket and serving every connection it takes with the pool's asynchronous driver
// (common/drivers/async_connection). It counts into its scoreboard slot and stops gracefully
// on SIGTERM, which the master forwards (or the kernel sends when the master dies).
#pragma once

#include <sys/types.h>

#include <asio.hpp>
#include <cstddef>
#include <memory>
#include <vector>

#include "common/drivers/async_accept_loop.hpp"
#include "common/drivers/async_connection.hpp"
#include "common/metrics/scoreboard.hpp"
#include "servers/hybrid/hybrid_options.hpp"
#include "servers/hybrid/worker_observer.hpp"

namespace echolab::hybrid {

struct WorkerSetup {
  const HybridOptions* options = nullptr;
  Scoreboard* scoreboard = nullptr;  // mapped before the fork: shared with the master
  std::size_t slot = 0;
  int listener_fd = -1;           // the socket this worker accepts from
  std::vector<int> fds_to_close;  // the master's other descriptors (other workers' sockets)
  pid_t master_pid = 0;
};

// In the forked child: serves until SIGTERM and a drain, then leaves the process (never
// returns into the master's code).
[[noreturn]] void run_worker(const WorkerSetup& setup);

class HybridWorker final : public AsyncConnectionHost {
 public:
  HybridWorker(asio::io_context& io, const WorkerSetup& setup, int signal_fd);

  // Accepts and serves until a shutdown signal and the drain that follows; returns when the
  // last connection ended or --shutdown-timeout passed.
  void run();

  // AsyncConnectionHost: called by connections.
  [[nodiscard]] const ServerOptions& options() const override { return options_.server; }
  [[nodiscard]] ServerObserver& metrics() override { return observer_; }
  [[nodiscard]] bool stopping() const override { return stopping_; }
  void connection_ended(AsyncConnection* connection) override;

 private:
  [[nodiscard]] std::size_t open_connections_of_every_worker() const;
  void serve(asio::ip::tcp::socket socket);
  void wait_for_signal();
  void shut_down();

  asio::io_context& io_;
  const HybridOptions& options_;
  Scoreboard& scoreboard_;
  ScoreboardSlot& slot_;
  WorkerObserver observer_;
  AsyncAcceptLoop accept_loop_;
  asio::steady_timer shutdown_deadline_;
  asio::posix::stream_descriptor signals_;
  std::array<char, 128> signal_info_{};  // one signalfd_siginfo
  bool stopping_ = false;
  bool accepting_ended_ = false;  // no accept left to complete
  // Every open connection, for the shutdown to reach them. One thread: no lock.
  OpenConnections connections_;
};

}  // namespace echolab::hybrid
