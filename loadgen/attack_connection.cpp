#include "loadgen/attack_connection.hpp"

#include <asio/write.hpp>

#include "loadgen/reply_checker.hpp"

namespace echolab::load {
namespace {

// The header line a slow-headers connection adds every interval.
constexpr std::string_view kHeaderLine = "X-a: b\r\n";

// A connection the server ended sooner than this reconnects after the back-off of a failed
// one, so that a server which sheds connections at once does not turn into a busy loop.
constexpr std::chrono::nanoseconds kHeldAWhile = std::chrono::milliseconds(100);

// The errors by which a server ends a connection; any other is a failure on our side.
bool ended_by_peer(const asio::error_code& error) {
  return error == asio::error::eof || error == asio::error::connection_reset ||
         error == asio::error::connection_aborted || error == asio::error::broken_pipe;
}

}  // namespace

AttackConnection::AttackConnection(WorkerContext& context) : ClientConnection(context) {}

void AttackConnection::on_open() {
  sent_ = 0;
  answer_length_ = 0;
  if (context_.plan.options.attack() == AttackMode::never_read) {
    flood();
    return;
  }
  read_answer();
  const auto socket_generation = generation();
  send_now(context_.plan.requests.batch);  // the head, unfinished
  if (socket_generation == generation()) {
    send_header_line();
  }
}

void AttackConnection::send_header_line() {
  timer_.expires_after(*context_.plan.options.slow_headers_interval);
  timer_.async_wait(for_this_socket(&AttackConnection::on_header_due));
}

void AttackConnection::on_header_due(const asio::error_code& error) {
  if (error) {
    return;
  }
  const auto socket_generation = generation();
  send_now(kHeaderLine);
  if (socket_generation == generation()) {
    send_header_line();
  }
}

void AttackConnection::send_now(std::string_view bytes) {
  asio::error_code error;
  const std::size_t written = socket_.write_some(asio::buffer(bytes), error);
  if (error == asio::error::would_block) {
    return;
  }
  if (error) {
    if (ended_by_peer(error)) {
      ended_by_server();
    } else {
      fail(error, "send");
    }
    return;
  }
  sent_ += written;
  context_.stats.bytes_sent += written;
}

void AttackConnection::read_answer() {
  socket_.async_read_some(
      asio::buffer(answer_.data() + answer_length_, answer_.size() - answer_length_),
      for_this_socket(&AttackConnection::on_answer));
}

void AttackConnection::on_answer(const asio::error_code& error, std::size_t length) {
  if (error && !ended_by_peer(error)) {
    fail(error, "receive");
    return;
  }
  answer_length_ += length;
  context_.stats.bytes_received += length;
  // A status line is all there is to learn; the rest of the answer does not matter.
  if (error || answer_length_ == answer_.size()) {
    ended_by_server();
    return;
  }
  read_answer();
}

void AttackConnection::flood() {
  asio::async_write(socket_, asio::buffer(context_.plan.requests.batch),
                    for_this_socket(&AttackConnection::on_flooded));
}

void AttackConnection::on_flooded(const asio::error_code& error, std::size_t bytes) {
  sent_ += bytes;
  context_.stats.bytes_sent += bytes;
  if (!error) {
    flood();
  } else if (ended_by_peer(error)) {
    ended_by_server();
  } else {
    fail(error, "send");
  }
}

void AttackConnection::ended_by_server() {
  const auto now = Clock::now();
  AttackStats& attack = context_.stats.attack;
  attack.held_ns.record(nanoseconds_between(connected_at(), now));
  attack.sent_bytes.record(sent_);
  ++attack.closed_by_server;
  if (const auto status = http_status_of(std::string_view(answer_.data(), answer_length_))) {
    ++attack.statuses[*status];
  }
  const bool held_a_while = now - connected_at() >= kHeldAWhile;
  if (held_a_while) {
    made_progress();
  }
  reconnect(held_a_while);
}

void AttackConnection::check_open_timeout(Clock::time_point /*now*/) {
  // No timeout on an open connection: how long the server lets it live is the measurement.
}

void AttackConnection::on_open_at_end(Clock::time_point /*run_end*/) {
  ++context_.stats.attack.still_open_at_end;
  context_.stats.attack.sent_bytes.record(sent_);
}

}  // namespace echolab::load
