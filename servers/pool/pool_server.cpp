#include "servers/pool/pool_server.hpp"

#include <sys/socket.h>

#include <thread>
#include <vector>

#include "common/log.hpp"
#include "servers/pool/pool_connection.hpp"

namespace echolab {
namespace {

asio::ip::tcp protocol_of(int listen_fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  getsockname(listen_fd, reinterpret_cast<sockaddr*>(&address), &length);
  return address.ss_family == AF_INET6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4();
}

}  // namespace

PoolServer::PoolServer(asio::io_context& io, const PoolOptions& options, StripedMetrics& metrics,
                       int listen_fd)
    : io_(io),
      options_(options),
      metrics_(metrics),
      acceptor_(io, protocol_of(listen_fd), listen_fd),
      signals_(io, SIGINT, SIGTERM),
      accept_retry_(io),
      shutdown_deadline_(io) {
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

int PoolServer::run() {
  wait_for_signal();
  accept();
  log_event("start", {{"listen", options_.server.listen.to_string()},
                      {"metrics", options_.server.metrics_listen.to_string()},
                      {"threads", options_.threads},
                      {"io_contexts", extra_contexts_.size() + 1},
                      {"fault_injection", options_.server.protocol.fault_injection}});
  std::vector<std::thread> threads;
  threads.reserve(options_.threads);
  for (std::size_t i = 0; i < options_.threads; ++i) {
    asio::io_context& context = i == 0 || extra_contexts_.empty() ? io_ : *extra_contexts_[i - 1];
    const auto created = std::chrono::steady_clock::now();
    threads.emplace_back([this, &context, created] { run_thread(context, created); });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  log_event("shutdown", {{"phase", "done"}});
  return 0;
}

void PoolServer::run_thread(asio::io_context& context,
                            std::chrono::steady_clock::time_point created) {
  metrics_.worker_spawned(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - created).count());
  metrics_.workers_changed(+1, 0);
  context.run();
  metrics_.workers_changed(-1, 0);
}

// Shared mode: the socket stays on the one io_context, any of whose N threads may run its
// handlers (PoolConnection serializes them). Per-thread mode: it moves to the next context
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

void PoolServer::accept() {
  acceptor_.async_accept([this](const asio::error_code& error, asio::ip::tcp::socket socket) {
    on_accept(error, std::move(socket));
  });
}

void PoolServer::on_accept(const asio::error_code& error, asio::ip::tcp::socket socket) {
  if (error == asio::error::operation_aborted || stopping()) {
    return;
  }
  if (error) {
    // Out of descriptors: back off briefly rather than spin on a full table.
    log_error("limit_reached", {{"limit", "accept"}, {"error", error.message()}});
    accept_retry_.expires_after(std::chrono::milliseconds(10));
    accept_retry_.async_wait([this](const asio::error_code&) { accept(); });
    return;
  }
  {
    std::unique_lock lock(connections_mutex_);
    if (connections_.size() >= options_.server.max_connections) {
      lock.unlock();
      asio::error_code ignored;
      socket.close(ignored);
      metrics_.connection_rejected();
      if (!std::exchange(logged_full_, true)) {
        log_event("limit_reached",
                  {{"limit", "max-connections"}, {"value", options_.server.max_connections}});
      }
      accept();
      return;
    }
    logged_full_ = false;
    auto connection = std::make_shared<PoolConnection>(in_next_context(std::move(socket)), *this);
    connections_.emplace(connection.get(), connection);
    lock.unlock();
    metrics_.connection_accepted();
    connection->start();
  }
  accept();
}

void PoolServer::connection_ended(PoolConnection* connection) {
  metrics_.connection_closed();
  const std::lock_guard lock(connections_mutex_);
  connections_.erase(connection);
  if (stopping() && connections_.empty()) {
    stop_all();
  }
}

void PoolServer::wait_for_signal() {
  signals_.async_wait([this](const asio::error_code& error, int /*signal*/) {
    if (!error) {
      shut_down();
    }
  });
}

// Stop accepting, close idle connections, let requests in flight finish, and stop the pool
// when the last connection ends or --shutdown-timeout passes.
void PoolServer::shut_down() {
  stopping_ = true;
  asio::error_code ignored;
  acceptor_.close(ignored);
  accept_retry_.cancel();
  std::vector<std::shared_ptr<PoolConnection>> open;
  {
    const std::lock_guard lock(connections_mutex_);
    log_event("shutdown", {{"phase", "draining"}, {"connections", connections_.size()}});
    if (connections_.empty()) {
      stop_all();
      return;
    }
    for (const auto& [raw, weak] : connections_) {
      if (auto connection = weak.lock()) {
        open.push_back(std::move(connection));
      }
    }
  }
  for (const auto& connection : open) {
    connection->close_if_idle();
  }
  shutdown_deadline_.expires_after(options_.server.shutdown_timeout);
  shutdown_deadline_.async_wait([this](const asio::error_code& error) {
    if (!error) {
      log_event("shutdown", {{"phase", "timeout"}});
      stop_all();
    }
  });
}

}  // namespace echolab
