#include "loadgen/load_connection.hpp"

#include <asio/write.hpp>

#include <algorithm>
#include <span>
#include <utility>

namespace echolab::load {
namespace {

// A connection that fails before it got a reply waits before the next attempt, doubling from
// 1 ms up to 100 ms, so that a dead server (or one that drops every connection at once) costs
// a bounded number of counted errors rather than a busy loop.
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

std::string milliseconds_text(std::chrono::nanoseconds time) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(time).count()) +
         " ms";
}

std::uint64_t nanoseconds_between(Clock::time_point from, Clock::time_point to) {
  return to > from ? static_cast<std::uint64_t>((to - from).count()) : 0;
}

}  // namespace

LoadConnection::LoadConnection(WorkerContext& context, std::size_t index)
    : context_(context),
      index_(index),
      socket_(context.io),
      timer_(context.io),
      checker_(make_reply_checker(context.plan.options.protocol, context.plan.requests.payload)),
      receive_buffer_(receive_buffer_bytes(context.plan)) {}

template <typename Handler>
auto LoadConnection::for_this_socket(Handler handler) {
  return [this, generation = generation_, handler](auto&&... arguments) {
    if (generation == generation_ && !context_.stopping) {
      (this->*handler)(std::forward<decltype(arguments)>(arguments)...);
    }
  };
}

void LoadConnection::open(Clock::time_point now) {
  const LoadOptions& options = context_.plan.options;
  if (options.mode() == LoopMode::open) {
    schedule_ = OpenLoopSchedule::for_connection(now, *options.rate, options.connections, index_);
  } else if (options.mode() == LoopMode::hold) {
    schedule_ = OpenLoopSchedule(now, options.interval);
  }
  connect();
}

void LoadConnection::close() {
  drop_socket();
  state_ = State::stopped;
}

void LoadConnection::connect() {
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
  socket_.async_connect(context_.plan.endpoint, for_this_socket(&LoadConnection::on_connected));
}

void LoadConnection::on_connected(const asio::error_code& error) {
  if (error) {
    fail(error, "connect");
    return;
  }
  const auto now = Clock::now();
  context_.stats.connect_ns.record(nanoseconds_between(connect_started_, now));
  ++context_.stats.connects;
  context_.gauge.opened();
  counted_open_ = true;
  replied_since_connect_ = false;
  state_ = State::open;
  checker_->restart();
  receive();
  start_requests();
}

void LoadConnection::start_requests() {
  const LoadOptions& options = context_.plan.options;
  if (options.mode() != LoopMode::closed) {
    send_when_due();
  } else if (options.new_connection_per_request) {
    // Connection churn: the cost of the new connection is part of the request's latency.
    send_batch(connect_started_);
  } else {
    send_batch(Clock::now());
  }
}

void LoadConnection::send_when_due() {
  const Clock::time_point due = schedule_.due(next_request_);
  if (due <= Clock::now()) {
    send_batch(due);
    return;
  }
  timer_.expires_at(due);
  timer_.async_wait(for_this_socket(&LoadConnection::on_send_time));
}

void LoadConnection::on_send_time(const asio::error_code& error) {
  if (!error) {
    send_batch(schedule_.due(next_request_));
  }
}

void LoadConnection::send_batch(Clock::time_point latency_origin) {
  const std::string& batch = context_.plan.requests.batch;
  ++next_request_;
  latency_origin_ = latency_origin;
  sent_at_ = Clock::now();
  outstanding_ = context_.plan.requests.requests_per_batch;
  context_.stats.bytes_sent += batch.size();
  // Requests are small: one non-blocking send nearly always takes the whole batch, which
  // saves a trip through the event loop. Only a full socket buffer goes the async way.
  asio::error_code error;
  const std::size_t written = socket_.write_some(asio::buffer(batch), error);
  if (error == asio::error::would_block) {
    error.clear();
  }
  if (error) {
    fail(error, "send");
    return;
  }
  if (written < batch.size()) {
    asio::async_write(socket_, asio::buffer(batch.data() + written, batch.size() - written),
                      for_this_socket(&LoadConnection::on_written));
  }
}

void LoadConnection::on_written(const asio::error_code& error, std::size_t /*bytes*/) {
  if (error) {
    fail(error, "send");
  }
}

void LoadConnection::receive() {
  // async_read_some rather than a readiness wait: Asio then reads in its reactor and leaves
  // the epoll registration alone, one system call per reply batch fewer.
  socket_.async_read_some(asio::buffer(receive_buffer_),
                          for_this_socket(&LoadConnection::on_received));
}

void LoadConnection::on_received(const asio::error_code& error, std::size_t length) {
  const auto now = Clock::now();
  if (error == asio::error::eof) {
    handle_end_of_stream(now);
    return;
  }
  if (error) {
    fail(error, "receive");
    return;
  }
  if (!handle_bytes(std::span<const char>(receive_buffer_.data(), length), now)) {
    return;
  }
  std::size_t room = receive_buffer_.size();
  std::vector<char>& spill = context_.spill_buffer;
  while (length == room) {
    asio::error_code read_error;
    length = socket_.read_some(asio::buffer(spill), read_error);
    if (read_error == asio::error::would_block) {
      break;
    }
    if (read_error == asio::error::eof) {
      handle_end_of_stream(now);
      return;
    }
    if (read_error) {
      fail(read_error, "receive");
      return;
    }
    if (!handle_bytes(std::span<const char>(spill.data(), length), now)) {
      return;
    }
    room = spill.size();
  }
  receive();
}

bool LoadConnection::handle_bytes(std::span<const char> bytes, Clock::time_point now) {
  context_.stats.bytes_received += bytes.size();
  const auto generation = generation_;
  ReplyScan scan = checker_->scan(bytes);
  if (scan.replies > outstanding_) {
    fail(ErrorKind::bad_reply, "more replies than requests sent");
    return false;
  }
  count_replies(scan.replies, now);
  if (scan.bad) {
    fail(ErrorKind::bad_reply, scan.problem);
    return false;
  }
  if (scan.replies > 0 && outstanding_ == 0) {
    after_replies(scan.server_closes);
  }
  return generation == generation_;
}

void LoadConnection::handle_end_of_stream(Clock::time_point now) {
  const ReplyScan scan = checker_->scan_end();
  count_replies(std::min(scan.replies, outstanding_), now);
  if (outstanding_ == 0 && scan.replies > 0) {
    after_replies(true);
    return;
  }
  fail(ErrorKind::reset, outstanding_ > 0 ? "connection closed by the server before the reply"
                                          : "connection closed by the server");
}

void LoadConnection::count_replies(std::size_t replies, Clock::time_point now) {
  if (replies == 0) {
    return;
  }
  LoadStats& stats = context_.stats;
  const std::uint64_t latency = nanoseconds_between(latency_origin_, now);
  const bool during_hold =
      context_.plan.options.hold && latency_origin_ >= context_.plan.hold_start;
  for (std::size_t i = 0; i < replies; ++i) {
    stats.latency_ns.record(latency);
    if (during_hold) {
      stats.hold_latency_ns.record(latency);
    }
  }
  stats.requests += replies;
  LiveCounters::add(context_.live.requests, replies);
  outstanding_ -= replies;
  replied_since_connect_ = true;
  backoff_ = std::chrono::nanoseconds::zero();
}

void LoadConnection::after_replies(bool server_closes) {
  const LoadOptions& options = context_.plan.options;
  if (server_closes || options.new_connection_per_request) {
    drop_socket();
    connect();
  } else if (options.mode() == LoopMode::closed) {
    send_batch(Clock::now());
  } else {
    send_when_due();
  }
}

void LoadConnection::check_timeout(Clock::time_point now) {
  const auto timeout = context_.plan.options.timeout;
  if (state_ == State::connecting && now - connect_started_ > timeout) {
    fail(ErrorKind::timeout, "connect to " + context_.plan.options.target.to_string() +
                                 " took over " + milliseconds_text(timeout));
  } else if (state_ == State::open && outstanding_ > 0 && now - sent_at_ > timeout) {
    fail(ErrorKind::timeout, "no reply within " + milliseconds_text(timeout));
  }
}

void LoadConnection::fail(const asio::error_code& error, const char* during) {
  fail(classify(error), std::string(during) + " " + context_.plan.options.target.to_string() +
                            ": " + error.message());
}

void LoadConnection::fail(ErrorKind kind, std::string_view message) {
  const bool had_worked = state_ == State::open && replied_since_connect_;
  context_.stats.count_error(kind, message);
  LiveCounters::add(context_.live.errors, 1);
  drop_socket();
  if (context_.stopping) {
    return;
  }
  if (had_worked) {
    connect();
  } else {
    backoff_ = std::clamp(backoff_ * 2, kFirstBackoff, kMaxBackoff);
    reconnect_after(backoff_);
  }
}

void LoadConnection::reconnect_after(std::chrono::nanoseconds delay) {
  timer_.expires_after(delay);
  timer_.async_wait(for_this_socket(&LoadConnection::on_backoff_over));
}

void LoadConnection::on_backoff_over(const asio::error_code& error) {
  if (!error) {
    connect();
  }
}

void LoadConnection::drop_socket() {
  ++generation_;
  asio::error_code ignored;
  socket_.close(ignored);
  timer_.cancel();
  if (counted_open_) {
    context_.gauge.closed();
    counted_open_ = false;
  }
  state_ = State::idle;
  outstanding_ = 0;
}

}  // namespace echolab::load
