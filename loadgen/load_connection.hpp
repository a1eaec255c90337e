// One client connection of echolab-load: connect, send the prebuilt request (or a pipelined
// batch), check the replies, and start over on a new socket after any failure, so that a
// failing server costs counted errors but never stops the run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "loadgen/client_connection.hpp"
#include "loadgen/reply_checker.hpp"
#include "loadgen/schedule.hpp"
#include "loadgen/worker_context.hpp"

namespace echolab::load {

class LoadConnection final : public ClientConnection {
 public:
  // `index` numbers the connection among all threads' (it sets its open-loop phase).
  LoadConnection(WorkerContext& context, std::size_t index);

  void open(Clock::time_point now) override;

 private:
  void on_open() override;
  void check_open_timeout(Clock::time_point now) override;
  void on_open_at_end(Clock::time_point run_end) override;
  void on_end(Clock::time_point run_end) override;

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
  // Keeps the thread's live count of outstanding requests in step with this connection's.
  void set_outstanding(std::size_t requests);

  std::size_t index_;
  std::unique_ptr<ReplyChecker> checker_;
  // Sized for one batch of replies, so a read usually takes them all in one system call.
  std::vector<char> receive_buffer_;
  std::size_t outstanding_ = 0;  // requests sent whose replies are still owed
  Clock::time_point sent_at_;
  Clock::time_point latency_origin_;  // the intended send time of the outstanding batch
  OpenLoopSchedule schedule_;
  bool scheduled_ = false;  // open loop and hold, once open() has set the schedule
  std::uint64_t next_request_ = 0;
};

}  // namespace echolab::load
