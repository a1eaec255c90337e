// One connection of the pool server: a chain of asynchronous reads and writes on its own
// strand, so the N pool threads never run two of its handlers at once.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <memory>

#include "common/session.hpp"

namespace echolab {

class PoolServer;

class PoolConnection : public std::enable_shared_from_this<PoolConnection> {
 public:
  PoolConnection(asio::ip::tcp::socket socket, PoolServer& server);

  void start();
  void close_if_idle();  // on shutdown: only between requests

 private:
  void read();
  void on_read(const asio::error_code& error, std::size_t bytes);
  void on_write(const asio::error_code& error, std::size_t bytes);
  void watch_idle();
  void close();

  asio::ip::tcp::socket socket_;
  asio::steady_timer idle_timer_;
  PoolServer& server_;
  Session session_;
  FeedResult pending_;  // the batch being written, reported once it is sent
  std::chrono::steady_clock::time_point batch_started_;
  std::chrono::steady_clock::time_point last_activity_;
  bool closed_ = false;
  std::array<char, 16 * 1024> buffer_{};
};

}  // namespace echolab
