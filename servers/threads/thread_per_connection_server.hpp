// The thread-per-connection model: an acceptor starts one thread per connection, which
// serves it with blocking I/O and exits. Nothing else is shared between connections.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <unordered_map>

#include "common/drivers/blocking_connection.hpp"
#include "common/metrics/striped_metrics.hpp"
#include "common/posix/unique_fd.hpp"
#include "common/server/accept_policy.hpp"
#include "common/server/server_options.hpp"
#include "common/server/stop_signal.hpp"

namespace echolab {

struct ThreadsOptions {
  ServerOptions server = default_options(Model::threads);
  std::size_t stack_size = 0;        // bytes; 0 = the system's default (ulimit -s)
  std::size_t max_threads = 10'000;  // more connections wait in the listen backlog
};

class ThreadPerConnectionServer {
 public:
  ThreadPerConnectionServer(const ThreadsOptions& options, StripedMetrics& metrics);

  // Accepts until a shutdown signal arrives on `signal_fd`, then drains; returns the exit code.
  int run(UniqueFd listener, int signal_fd);

 private:
  struct ThreadStart;
  static void* thread_main(void* start);

  bool wait_for_free_thread(int signal_fd);
  void start_thread(UniqueFd client, const BlockingConnectionSettings& settings);
  void back_off_after_failed_start(int client_fd, int error);
  void serve(ThreadStart& start);
  void release_socket(int client_fd);
  void drain();
  [[nodiscard]] std::size_t open_connections();

  ThreadsOptions options_;
  StripedMetrics& metrics_;
  BlockingConnectionSettings connection_settings_;
  BlockingConnectionSettings queued_settings_;  // for the queue's last connections at shutdown
  StopSignal stop_;
  std::mutex mutex_;
  std::condition_variable thread_exited_;
  std::size_t active_threads_ = 0;  // guarded by mutex_
  // Every connection's socket, by its number: owned here rather than by its thread, for the
  // shutdown to cut what is left at its deadline (release_socket); guarded by mutex_.
  std::unordered_map<int, UniqueFd> open_sockets_;
  bool thread_start_failing_ = false;  // the acceptor's own: one log line per episode
  bool at_thread_cap_ = false;         // the acceptor's own: one log line per episode
  AcceptPolicy accept_policy_;         // the acceptor's own
};

}  // namespace echolab
