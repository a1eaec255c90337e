// One client connection of echolab-load: connect, send the prebuilt request (or a pipelined
// batch), check the replies, and start over on a new socket after any failure, so that a
// failing server costs counted errors but never stops the run.
#pragma once

#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "loadgen/reply_checker.hpp"
#include "loadgen/schedule.hpp"
#include "loadgen/worker_context.hpp"

namespace echolab::load {

class LoadConnection {
 public:
  // `index` numbers the connection among all threads' (it sets its open-loop phase).
  LoadConnection(WorkerContext& context, std::size_t index);

  // The first connect, at the moment the ramp gives this connection.
  void open(Clock::time_point now);
  // The end of the run: close without counting anything.
  void close();
  // Called a few times per --timeout by the thread's sweep.
  void check_timeout(Clock::time_point now);

 private:
  enum class State { idle, connecting, open, stopped };

  // Wraps a handler so that it does nothing once the socket it was started on is gone.
  template <typename Handler>
  auto for_this_socket(Handler handler);

  void connect();
  void on_connected(const asio::error_code& error);
  void start_requests();
  void send_when_due();
  void on_send_time(const asio::error_code& error);
  void send_batch(Clock::time_point latency_origin);
  void on_written(const asio::error_code& error, std::size_t bytes);
  void receive();
  void on_received(const asio::error_code& error, std::size_t length);
  // False when the connection was dropped while handling these bytes.
  bool handle_bytes(std::span<const char> bytes, Clock::time_point now);
  void handle_end_of_stream(Clock::time_point now);
  void count_replies(std::size_t replies, Clock::time_point now);
  void after_replies(bool server_closes);
  void fail(ErrorKind kind, std::string_view message);
  void fail(const asio::error_code& error, const char* during);
  void drop_socket();
  void reconnect_after(std::chrono::nanoseconds delay);
  void on_backoff_over(const asio::error_code& error);

  WorkerContext& context_;
  std::size_t index_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;  // open-loop send times and reconnect back-off
  std::unique_ptr<ReplyChecker> checker_;
  // Sized for one batch of replies, so a read usually takes them all in one system call.
  std::vector<char> receive_buffer_;
  State state_ = State::idle;
  std::uint32_t generation_ = 0;  // bumped with each socket; stale handlers compare it
  bool counted_open_ = false;
  bool replied_since_connect_ = false;  // a failure after a reply reconnects at once
  std::size_t outstanding_ = 0;         // requests sent whose replies are still owed
  Clock::time_point connect_started_;
  Clock::time_point sent_at_;
  Clock::time_point latency_origin_;  // the intended send time of the outstanding batch
  OpenLoopSchedule schedule_;
  std::uint64_t next_request_ = 0;
  std::chrono::nanoseconds backoff_{0};
};

}  // namespace echolab::load
