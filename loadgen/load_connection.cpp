#include "loadgen/load_connection.hpp"

#include <asio/write.hpp>

#include <algorithm>
#include <span>
#include <utility>

namespace echolab::load {
namespace {

// A read that fills the buffer is followed by more reads within the same handler, but only
// this many: a server that sends faster than its replies are checked must not keep the
// thread from its other connections, nor from the end of the run.
constexpr std::size_t kExtraReadsPerTurn = 16;

}  // namespace

LoadConnection::LoadConnection(WorkerContext& context, std::size_t index)
    : ClientConnection(context),
      index_(index),
      checker_(make_reply_checker(context.plan.options.protocol, context.plan.requests.payload,
                                  context.plan.options.max_response_bytes)),
      receive_buffer_(receive_buffer_bytes(context.plan)) {}

void LoadConnection::open(Clock::time_point now) {
  const LoadOptions& options = context_.plan.options;
  if (options.mode() == LoopMode::open) {
    schedule_ = OpenLoopSchedule::for_connection(now, *options.rate, options.connections, index_);
  } else if (options.mode() == LoopMode::hold) {
    schedule_ = OpenLoopSchedule(now, options.interval);
  }
  scheduled_ = options.mode() != LoopMode::closed;
  connect();
}

void LoadConnection::on_open() {
  set_outstanding(0);
  checker_->restart();
  receive();
  const LoadOptions& options = context_.plan.options;
  if (options.mode() != LoopMode::closed) {
    send_when_due();
  } else if (options.new_connection_per_request) {
    // Connection churn: the cost of the new connection is part of the request's latency.
    send_batch(connect_started());
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
  set_outstanding(context_.plan.requests.requests_per_batch);
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
  for (std::size_t extra = 0; length == room && extra < kExtraReadsPerTurn; ++extra) {
    if (context_.stopping()) {
      return;  // bytes that arrive after the end of the run are not the run's
    }
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
  const auto socket_generation = generation();
  ReplyScan scan = checker_->scan(bytes);
  if (scan.replies > outstanding_) {
    fail(ErrorKind::bad_reply, "more replies than requests sent");
    return false;
  }
  count_replies(scan.replies, now);
  if (scan.bad) {
    fail(scan.oversized ? ErrorKind::oversized_reply : ErrorKind::bad_reply, scan.problem);
    return false;
  }
  if (scan.replies > 0 && outstanding_ == 0) {
    after_replies(scan.server_closes);
  }
  return socket_generation == generation();
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
  context_.series.record_replies(now, replies, latency);
  context_.live.count_replies(replies, latency);
  set_outstanding(outstanding_ - replies);
  made_progress();
}

void LoadConnection::after_replies(bool server_closes) {
  const LoadOptions& options = context_.plan.options;
  if (server_closes || options.new_connection_per_request) {
    reconnect(true);
  } else if (options.mode() == LoopMode::closed) {
    send_batch(Clock::now());
  } else {
    send_when_due();
  }
}

void LoadConnection::set_outstanding(std::size_t requests) {
  if (requests >= outstanding_) {
    LiveCounters::add(context_.live.outstanding, requests - outstanding_);
  } else {
    LiveCounters::subtract(context_.live.outstanding, outstanding_ - requests);
  }
  outstanding_ = requests;
}

void LoadConnection::check_open_timeout(Clock::time_point now) {
  if (outstanding_ > 0 && now - sent_at_ > context_.plan.options.timeout) {
    fail(ErrorKind::timeout, "no reply within " + milliseconds_text(context_.plan.options.timeout));
  }
}

void LoadConnection::on_open_at_end(Clock::time_point /*run_end*/) {
  context_.stats.requests_unfinished += outstanding_;
}

void LoadConnection::on_end(Clock::time_point run_end) {
  if (!scheduled_) {
    return;  // the closed loop owes nothing on a schedule; nor does a connection not yet opened
  }
  // Every request before next_request_ was sent (a connection that falls behind sends the
  // late ones at once, never skips them). A request sent a moment past `run_end`, before
  // the thread saw the end, is due too.
  const std::uint64_t due = std::max(schedule_.due_by(run_end), next_request_);
  context_.stats.requests_due += due;
  context_.stats.requests_unsent += due - next_request_;
}

}  // namespace echolab::load
