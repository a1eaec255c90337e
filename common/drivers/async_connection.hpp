// One connection on an Asio io_context: a chain of asynchronous reads and writes, beside a
// second chain, the deadline timer (common/protocol/client_deadline.hpp: idle, header, body and
// send timeouts). Any thread running the io_context may run either, so a mutex makes the
// connection's handlers take turns. The asynchronous counterpart of blocking_connection: a
// server that runs event loops (the pool, the hybrid workers) owns these through an
// AsyncConnectionHost.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common/metrics/observer.hpp"
#include "common/protocol/client_deadline.hpp"
#include "common/protocol/session.hpp"
#include "common/server/server_options.hpp"

namespace echolab {

class AsyncConnection;

// What a connection needs of the server that owns it. The server outlives its connections.
class AsyncConnectionHost {
 public:
  [[nodiscard]] virtual const ServerOptions& options() const = 0;
  // One virtual call per event: the pool counts into its stripes, a hybrid worker into its
  // scoreboard slot.
  [[nodiscard]] virtual ServerObserver& metrics() = 0;
  // True once a graceful shutdown began: a connection closes after its current answer.
  [[nodiscard]] virtual bool stopping() const = 0;
  virtual void connection_ended(AsyncConnection* connection) = 0;

 protected:
  ~AsyncConnectionHost() = default;
};

class AsyncConnection : public std::enable_shared_from_this<AsyncConnection> {
 public:
  AsyncConnection(asio::ip::tcp::socket socket, AsyncConnectionHost& host);

  void start();
  void close_if_idle();  // on shutdown: only between requests, and nothing received

 private:
  using Clock = std::chrono::steady_clock;

  // Each runs with mutex_ held.
  template <typename Work>
  void closing_on_out_of_memory(Work work);
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
  enum class ReadInFlight { no, yes };
  void linger(ReadInFlight read_in_flight);
  [[nodiscard]] bool bytes_waiting() const;  // received by the kernel, not yet read
  void close();

  // Why not a strand, Asio's usual answer: a strand routes every completion through its own
  // queue, and measured in the pool at 1,000 connections that cost a quarter of the
  // throughput (73k against 99k req/s, medians of 3; docs/pool.md). The read/write
  // chain has one operation in flight at a time; only the deadline timer (rare) and the
  // shutdown's close_if_idle (once) can meet it, so this lock is almost never contended.
  std::mutex mutex_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  AsyncConnectionHost& host_;
  Session session_;
  ClientDeadline deadline_;
  Clock::time_point timer_at_;  // when the timer fires; it is moved only to an earlier time
  FeedResult pending_;          // the batch being written, reported once it is sent
  Clock::time_point batch_started_;
  double batch_handled_s_ = 0;  // from its bytes read until its answers were ready
  bool closed_ = false;
  bool lingering_ = false;         // after an error answer: reading to drop, until EOF or timer
  bool performing_fault_ = false;  // mutex_ is let go meanwhile: a request is in progress
  std::array<char, 16 * 1024> buffer_{};
};

// A server's open connections, for its shutdown to reach them; each removes itself when it ends.
using OpenConnections = std::unordered_map<AsyncConnection*, std::weak_ptr<AsyncConnection>>;

// The connections of `open` still alive, held so that none ends under the shutdown's feet.
std::vector<std::shared_ptr<AsyncConnection>> still_open(const OpenConnections& open);

}  // namespace echolab
