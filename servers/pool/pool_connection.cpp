#include "servers/pool/pool_connection.hpp"

#include "common/fault.hpp"
#include "servers/pool/drained_read.hpp"
#include "servers/pool/pool_server.hpp"

namespace echolab {

PoolConnection::PoolConnection(asio::ip::tcp::socket socket, PoolServer& server)
    : socket_(std::move(socket)),
      idle_timer_(socket_.get_executor()),
      server_(server),
      session_(server.options().protocol) {}

void PoolConnection::start() {
  // As in the blocking servers: no Nagle delay behind the echo's one write per read.
  asio::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  socket_.non_blocking(true, ignored);  // write_some() below must never block a pool thread
  // On the socket's own context: with one io_context per thread it is not the acceptor's.
  asio::dispatch(socket_.get_executor(), [self = shared_from_this()] {
    const std::lock_guard lock(self->mutex_);
    self->last_activity_ = std::chrono::steady_clock::now();
    self->watch_idle();
    self->read();
  });
}

void PoolConnection::read() {
  socket_.async_read_some(
      DrainedReadBuffer(buffer_.data(), buffer_.size()),
      [self = shared_from_this()](const asio::error_code& error, std::size_t bytes) {
        std::unique_lock lock(self->mutex_);
        self->on_read(lock, error, bytes);
      });
}

void PoolConnection::on_read(std::unique_lock<std::mutex>& lock, const asio::error_code& error,
                             std::size_t bytes) {
  if (error || closed_) {
    close();
    return;
  }
  StripedMetrics& metrics = server_.metrics();
  last_activity_ = std::chrono::steady_clock::now();
  batch_started_ = last_activity_;
  metrics.bytes_received(bytes);
  metrics.workers_changed(-1, +1);
  pending_ = session_.feed(std::span<const char>(buffer_.data(), bytes));
  perform_faults(lock);
  metrics.workers_changed(+1, -1);
  if (session_.output().empty()) {
    session_.close_after_flush() ? close() : read();
    return;
  }
  write_output();
}

// An answer nearly always fits in the socket's send buffer, so it is sent here and now;
// on_write() then runs in this same handler instead of being queued as a completion, which
// saves a round trip through the io_context's queue (and its lock) per request. What the
// socket does not take at once goes out asynchronously.
void PoolConnection::write_output() {
  const std::string& output = session_.output();
  asio::error_code error;
  const std::size_t sent = socket_.write_some(asio::buffer(output), error);
  if ((!error && sent == output.size()) ||
      (error && error != asio::error::would_block && error != asio::error::try_again)) {
    on_write(error, sent);
    return;
  }
  asio::async_write(
      socket_, asio::buffer(output.data() + sent, output.size() - sent),
      [self = shared_from_this(), sent](const asio::error_code& write_error, std::size_t written) {
        const std::lock_guard write_lock(self->mutex_);
        self->on_write(write_error, sent + written);
      });
}

void PoolConnection::on_write(const asio::error_code& error, std::size_t bytes) {
  StripedMetrics& metrics = server_.metrics();
  metrics.bytes_sent(bytes);
  session_.output_sent(bytes);
  if (pending_.requests > 0) {
    metrics.requests_served(
        session_.protocol(), pending_.requests,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - batch_started_).count());
  }
  for (const int status : pending_.error_statuses) {
    metrics.request_error(status);
  }
  if (error || closed_ || session_.close_after_flush() || (server_.stopping() && session_.idle())) {
    close();
    return;
  }
  read();
}

// A fault blocks this pool thread on purpose, as a slow call in a handler would: that is the
// lesson of /sleep. The lock is let go meanwhile, so that the idle timer and the shutdown do
// not block a second pool thread behind it; the flag tells them a request is in progress.
// Nothing else can run: the read/write chain has no operation in flight.
void PoolConnection::perform_faults(std::unique_lock<std::mutex>& lock) {
  if (pending_.faults.empty()) {
    return;
  }
  performing_fault_ = true;
  lock.unlock();
  for (const FaultAction& fault : pending_.faults) {
    perform(fault);
  }
  lock.lock();
  performing_fault_ = false;
}

// The Asio deadline pattern: the timer is re-armed only when it fires, not on every read,
// so a busy connection costs no timer operations.
void PoolConnection::watch_idle() {
  idle_timer_.expires_at(last_activity_ + server_.options().idle_timeout);
  idle_timer_.async_wait([self = shared_from_this()](const asio::error_code& error) {
    if (!error) {
      const std::lock_guard lock(self->mutex_);
      self->on_idle_timer();
    }
  });
}

void PoolConnection::on_idle_timer() {
  if (closed_) {
    return;
  }
  const bool idle_too_long =
      std::chrono::steady_clock::now() >= last_activity_ + server_.options().idle_timeout;
  if (idle_too_long && !performing_fault_) {
    close();
  } else {
    watch_idle();
  }
}

void PoolConnection::close_if_idle() {
  asio::dispatch(socket_.get_executor(), [self = shared_from_this()] {
    const std::lock_guard lock(self->mutex_);
    if (!self->performing_fault_ && self->session_.idle() && self->session_.output().empty()) {
      self->close();
    }
  });
}

void PoolConnection::close() {
  if (std::exchange(closed_, true)) {
    return;
  }
  asio::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  idle_timer_.cancel();
  server_.connection_ended(this);
}

}  // namespace echolab
