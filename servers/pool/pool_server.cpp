#include "servers/pool/pool_server.hpp"

#include <poll.h>

#include <thread>
#include <vector>

#include "common/server/log.hpp"
#include "common/server/server_main.hpp"
#include "common/server/shutdown_signals.hpp"

namespace echolab {
namespace {

// After --shutdown-timeout the io_contexts are stopped; a pool thread not back from its handler
// this long after that is stuck in it (a /sleep) and is left behind.
constexpr std::chrono::milliseconds kGraceAfterStop{250};

}  // namespace

PoolServer::PoolServer(asio::io_context& io, const PoolOptions& options, StripedMetrics& metrics,
                       int listen_fd)
    : io_(io),
      options_(options),
      metrics_(metrics),
      accept_loop_(
          io, listen_fd, options.server.max_connections, *this,
          [this] {
            const std::lock_guard lock(connections_mutex_);
            return connections_.size();
          },
          [this](asio::ip::tcp::socket socket) { serve(std::move(socket)); }) {
  if (options_.threads == 0) {
    options_.threads = std::max(1u, std::thread::hardware_concurrency());
  }
  if (options_.context_per_thread) {
    for (std::size_t i = 1; i < options_.threads; ++i) {
      extra_contexts_.push_back(std::make_unique<asio::io_context>(1));
    }
    // A context with nothing to do would return from run() at once: keep each running
    // until the shutdown.
    keep_running_.push_back(asio::make_work_guard(io_));
    for (const auto& context : extra_contexts_) {
      keep_running_.push_back(asio::make_work_guard(*context));
    }
  }
}

int PoolServer::run(int signal_fd) {
  accept_loop_.start();
  log_event("start", {{"listen", options_.server.listen.to_string()},
                      {"metrics", options_.server.metrics_listen.to_string()},
                      {"threads", options_.threads},
                      {"io_contexts", extra_contexts_.size() + 1},
                      {"fault_injection", options_.server.protocol.fault_injection}});
  std::vector<std::thread> threads;
  threads.reserve(options_.threads);
  running_threads_ = options_.threads;
  for (std::size_t i = 0; i < options_.threads; ++i) {
    asio::io_context& context = i == 0 || extra_contexts_.empty() ? io_ : *extra_contexts_[i - 1];
    const auto created = std::chrono::steady_clock::now();
    threads.emplace_back([this, &context, created] { run_thread(context, created); });
  }
  wait_for_shutdown_signal(signal_fd);
  if (!drain()) {
    // A thread stuck in a handler still uses the connections, this object and the metrics:
    // returning would free them under it, so the process leaves without unwinding.
    exit_without_unwinding(0);
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  log_event("shutdown", {{"phase", "done"}, {"drained", true}});
  return 0;
}

// The signal is taken here, on the main thread, and not by a handler in the io_context: when
// every pool thread is blocked in a handler, nothing in the io_context runs, and the deadline
// must hold all the same.
void PoolServer::wait_for_shutdown_signal(int signal_fd) {
  for (;;) {
    pollfd entry{signal_fd, POLLIN, 0};
    if (poll(&entry, 1, -1) > 0 && shutdown_requested(signal_fd)) {
      return;
    }
  }
}

// Starts the shutdown in the io_context and waits up to --shutdown-timeout for the pool to
// stop; then stops the io_contexts, which returns every thread that is between handlers.
// False when a thread is still stuck in one after that.
bool PoolServer::drain() {
  asio::post(accept_loop_.strand(), [this] { shut_down(); });
  std::unique_lock lock(threads_mutex_);
  const auto all_returned = [this] { return running_threads_ == 0; };
  if (threads_returned_.wait_for(lock, options_.server.shutdown_timeout, all_returned)) {
    return true;
  }
  log_event("shutdown", {{"phase", "timeout"}, {"threads_busy", running_threads_}});
  stop_all();
  if (threads_returned_.wait_for(lock, kGraceAfterStop, all_returned)) {
    return true;
  }
  log_event("shutdown", {{"phase", "done"},
                         {"drained", false},
                         {"threads_left", running_threads_},
                         {"note", "threads stuck in a handler: exiting without unwinding"}});
  return false;
}

void PoolServer::run_thread(asio::io_context& context,
                            std::chrono::steady_clock::time_point created) {
  metrics_.worker_spawned(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - created).count());
  metrics_.workers_changed(+1, 0);
  context.run();
  metrics_.workers_changed(-1, 0);
  const std::lock_guard lock(threads_mutex_);
  --running_threads_;
  threads_returned_.notify_all();
}

// Shared mode: the socket stays on the one io_context, any of whose N threads may run its
// handlers (AsyncConnection serializes them). Per-thread mode: it moves to the next context
// round-robin. Accepted on the acceptor's context and moved after, rather than accepted
// straight into the other context: an accept still pending at exit would otherwise hold a
// socket of a context destroyed before it.
asio::ip::tcp::socket PoolServer::in_next_context(asio::ip::tcp::socket socket) {
  if (extra_contexts_.empty()) {
    return socket;
  }
  const std::size_t index = next_context_++ % (extra_contexts_.size() + 1);
  if (index == 0) {
    return socket;
  }
  const auto protocol = socket.local_endpoint().protocol();
  return {*extra_contexts_[index - 1], protocol, socket.release()};
}

void PoolServer::stop_all() {
  io_.stop();
  for (const auto& context : extra_contexts_) {
    context->stop();
  }
}

void PoolServer::serve(asio::ip::tcp::socket socket) {
  auto connection = std::make_shared<AsyncConnection>(in_next_context(std::move(socket)), *this);
  {
    const std::lock_guard lock(connections_mutex_);
    connections_.emplace(connection.get(), connection);
  }
  metrics_.connection_accepted();
  connection->start();
}

void PoolServer::connection_ended(AsyncConnection* connection) {
  metrics_.connection_closed();
  const std::lock_guard lock(connections_mutex_);
  connections_.erase(connection);
  if (accepting_ended_ && connections_.empty()) {
    stop_all();
  }
}

// On the accept loop's strand. Take the connections still queued, stop accepting, close the
// idle ones, let requests in flight finish, and stop the pool when the last connection ends
// after the last accept completed (or, from drain(), when --shutdown-timeout passes).
void PoolServer::shut_down() {
  stopping_ = true;
  std::vector<std::shared_ptr<AsyncConnection>> open;
  {
    const std::lock_guard lock(connections_mutex_);
    log_event("shutdown", {{"phase", "draining"}, {"connections", connections_.size()}});
    open = still_open(connections_);
  }
  accept_loop_.stop(open, [this] {
    const std::lock_guard lock(connections_mutex_);
    accepting_ended_ = true;
    if (connections_.empty()) {
      stop_all();
    }
  });
}

}  // namespace echolab
