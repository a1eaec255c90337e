#include "loadgen/client_connection.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <string>

namespace echolab::load {
namespace {

// A connection that fails before it made progress waits before the next attempt, doubling
// from 1 ms up to 100 ms, so that a dead server (or one that drops every connection at once)
// costs a bounded number of counted errors rather than a busy loop.
constexpr std::chrono::nanoseconds kFirstBackoff = std::chrono::milliseconds(1);
constexpr std::chrono::nanoseconds kMaxBackoff = std::chrono::milliseconds(100);

ErrorKind classify(const asio::error_code& error) {
  if (error == asio::error::connection_refused) {
    return ErrorKind::refused;
  }
  if (error == asio::error::connection_reset || error == asio::error::connection_aborted ||
      error == asio::error::broken_pipe || error == asio::error::eof) {
    return ErrorKind::reset;
  }
  if (error == asio::error::timed_out) {
    return ErrorKind::timeout;
  }
  return ErrorKind::other;
}

// True when the kernel has completed the connect while its completion still waits in the
// event loop's queue (this thread did not get the CPU in time): the server did answer it, and a
// connect judged unfinished must be one the server left unanswered.
bool handshake_done(int socket_fd) {
  pollfd ready{socket_fd, POLLOUT, 0};
  if (::poll(&ready, 1, 0) != 1 || (ready.revents & POLLOUT) == 0) {
    return false;
  }
  int error = 0;
  socklen_t length = sizeof error;
  return ::getsockopt(socket_fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0;
}

}  // namespace

ClientConnection::ClientConnection(WorkerContext& context)
    : context_(context), socket_(context.io), timer_(context.io) {}

void ClientConnection::open(Clock::time_point /*now*/) { connect(); }

void ClientConnection::close(Clock::time_point run_end) {
  if (state_ == State::connecting) {
    ++context_.stats.connects_pending;
    if (!handshake_done(socket_.native_handle())) {
      context_.stats.unfinished_connect_ns.push_back(
          nanoseconds_between(connect_started_, run_end));
    }
  } else if (state_ == State::open) {
    on_open_at_end(run_end);
  }
  on_end(run_end);
  drop_socket();
  state_ = State::stopped;
}

void ClientConnection::connect() {
  asio::error_code error;
  socket_.open(context_.plan.endpoint.protocol(), error);
  if (!error) {
    socket_.set_option(asio::ip::tcp::no_delay(true), error);
  }
  if (!error) {
    socket_.non_blocking(true, error);
  }
  if (error) {
    fail(error, "socket");
    return;
  }
  state_ = State::connecting;
  connect_started_ = Clock::now();
  socket_.async_connect(context_.plan.endpoint, for_this_socket(&ClientConnection::on_connected));
}

void ClientConnection::on_connected(const asio::error_code& error) {
  if (error) {
    fail(error, "connect");
    return;
  }
  connected_at_ = Clock::now();
  context_.stats.connect_ns.record(nanoseconds_between(connect_started_, connected_at_));
  ++context_.stats.connects;
  context_.gauge.opened();
  counted_open_ = true;
  progressed_since_connect_ = false;
  state_ = State::open;
  on_open();
}

void ClientConnection::check_timeout(Clock::time_point now) {
  const auto timeout = context_.plan.options.timeout;
  if (state_ == State::connecting && now - connect_started_ > timeout) {
    fail(ErrorKind::timeout, "connect to " + context_.plan.options.target.to_string() +
                                 " took over " + milliseconds_text(timeout));
  } else if (state_ == State::open) {
    check_open_timeout(now);
  }
}

void ClientConnection::fail(const asio::error_code& error, const char* during) {
  fail(classify(error), std::string(during) + " " + context_.plan.options.target.to_string() +
                            ": " + error.message());
}

void ClientConnection::fail(ErrorKind kind, std::string_view message) {
  const bool had_progressed = state_ == State::open && progressed_since_connect_;
  context_.stats.count_error(kind, message);
  // An error is rare, so reading the clock for its second costs nothing that matters.
  context_.series.count_error(Clock::now(), kind);
  context_.live.count_error(kind);
  reconnect(had_progressed);
}

void ClientConnection::reconnect(bool at_once) {
  drop_socket();
  if (context_.stopping()) {
    return;
  }
  if (at_once) {
    connect();
    return;
  }
  backoff_ = std::clamp(backoff_ * 2, kFirstBackoff, kMaxBackoff);
  timer_.expires_after(backoff_);
  timer_.async_wait(for_this_socket(&ClientConnection::on_backoff_over));
}

void ClientConnection::made_progress() {
  progressed_since_connect_ = true;
  backoff_ = std::chrono::nanoseconds::zero();
}

void ClientConnection::on_backoff_over(const asio::error_code& error) {
  if (!error) {
    connect();
  }
}

void ClientConnection::drop_socket() {
  ++generation_;
  asio::error_code ignored;
  socket_.close(ignored);
  timer_.cancel();
  if (counted_open_) {
    context_.gauge.closed();
    counted_open_ = false;
  }
  state_ = State::idle;
}

}  // namespace echolab::load
