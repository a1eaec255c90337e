// One connection of the pool server: a chain of asynchronous reads and writes, beside a
// second chain, the idle timer. Any of the N pool threads may run either, so a mutex makes
// the connection's handlers take turns.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <memory>
#include <mutex>

#include "common/session.hpp"

namespace echolab {

class PoolServer;

class PoolConnection : public std::enable_shared_from_this<PoolConnection> {
 public:
  PoolConnection(asio::ip::tcp::socket socket, PoolServer& server);

  void start();
  void close_if_idle();  // on shutdown: only between requests

 private:
  // Each runs with mutex_ held.
  void read();
  void on_read(std::unique_lock<std::mutex>& lock, const asio::error_code& error,
               std::size_t bytes);
  void perform_faults(std::unique_lock<std::mutex>& lock);
  void write_output();
  void on_write(const asio::error_code& error, std::size_t bytes);
  void watch_idle();
  void on_idle_timer();
  void close();

  // Why not a strand, Asio's usual answer: a strand routes every completion through its own
  // queue, and measured at 1,000 connections that cost a quarter of the throughput (79k
  // against 101k req/s, medians of 3). The read/write chain has one operation in flight at a
  // time; only the idle timer (rare) and the shutdown's close_if_idle (once) can meet it, so
  // this lock is almost never contended.
  std::mutex mutex_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer idle_timer_;
  PoolServer& server_;
  Session session_;
  FeedResult pending_;  // the batch being written, reported once it is sent
  std::chrono::steady_clock::time_point batch_started_;
  std::chrono::steady_clock::time_point last_activity_;
  bool closed_ = false;
  bool performing_fault_ = false;  // mutex_ is let go meanwhile: a request is in progress
  std::array<char, 16 * 1024> buffer_{};
};

}  // namespace echolab
