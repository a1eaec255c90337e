// One connection of the pool server: a chain of asynchronous reads and writes, beside a
// second chain, the deadline timer (common/protocol/client_deadline.hpp: idle, header, body and
// send timeouts). Any of the N pool threads may run either, so a mutex makes the connection's
// handlers take turns.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <memory>
#include <mutex>

#include "common/protocol/client_deadline.hpp"
#include "common/protocol/session.hpp"

namespace echolab {

class PoolServer;

class PoolConnection : public std::enable_shared_from_this<PoolConnection> {
 public:
  PoolConnection(asio::ip::tcp::socket socket, PoolServer& server);

  void start();
  void close_if_idle();  // on shutdown: only between requests, and nothing received

 private:
  using Clock = std::chrono::steady_clock;

  // Each runs with mutex_ held.
  void read();
  void on_read(std::unique_lock<std::mutex>& lock, const asio::error_code& error,
               std::size_t bytes);
  bool feed(std::size_t bytes);
  void perform_faults(std::unique_lock<std::mutex>& lock);
  void write_output();
  void write_rest(std::size_t sent);
  void on_write(const asio::error_code& error, std::size_t bytes);
  void arm_timer(Clock::time_point at);
  void arm_timer_if_earlier();
  void on_timer();
  void time_out(TimeoutKind kind);
  void linger();
  [[nodiscard]] bool bytes_waiting() const;  // received by the kernel, not yet read
  void close();

  // Why not a strand, Asio's usual answer: a strand routes every completion through its own
  // queue, and measured at 1,000 connections that cost a fifth of the throughput (79k
  // against 101k req/s, medians of 3). The read/write chain has one operation in flight at a
  // time; only the deadline timer (rare) and the shutdown's close_if_idle (once) can meet
  // it, so this lock is almost never contended.
  std::mutex mutex_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  PoolServer& server_;
  Session session_;
  ClientDeadline deadline_;
  Clock::time_point timer_at_;  // when the timer fires; it is moved only to an earlier time
  FeedResult pending_;          // the batch being written, reported once it is sent
  Clock::time_point batch_started_;
  bool closed_ = false;
  bool lingering_ = false;         // after an error answer: reading to drop, until EOF or timer
  bool performing_fault_ = false;  // mutex_ is let go meanwhile: a request is in progress
  std::array<char, 16 * 1024> buffer_{};
};

}  // namespace echolab
