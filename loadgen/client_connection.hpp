// What every client connection of echolab-load does around its socket, whatever it sends:
// connect and count the connect, drop the socket, reconnect at once or after a back-off,
// notice a connect that takes longer than --timeout, and account for the connection when the
// run ends. LoadConnection (requests and replies) and AttackConnection (the slow-clients
// attacks) build on it.
#pragma once

#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "loadgen/load_stats.hpp"
#include "loadgen/schedule.hpp"
#include "loadgen/worker_context.hpp"

namespace echolab::load {

class ClientConnection {
 public:
  virtual ~ClientConnection() = default;
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;
  ClientConnection(ClientConnection&&) = delete;
  ClientConnection& operator=(ClientConnection&&) = delete;

  // The first connect, at the moment the ramp gives this connection.
  virtual void open(Clock::time_point now);
  // The end of the run, which came at `run_end`: closes, and counts a connect still in
  // flight or what an open connection still had going.
  void close(Clock::time_point run_end);
  // Called a few times per --timeout by the thread's sweep.
  void check_timeout(Clock::time_point now);

 protected:
  explicit ClientConnection(WorkerContext& context);

  // The connect succeeded: start sending.
  virtual void on_open() = 0;
  // The sweep, on an open connection.
  virtual void check_open_timeout(Clock::time_point now) = 0;
  // The run ended while the connection was open.
  virtual void on_open_at_end(Clock::time_point run_end) = 0;
  // The run ended, whatever the connection was doing (open, connecting, or waiting to).
  virtual void on_end(Clock::time_point /*run_end*/) {}

  // Wraps a member function as a handler that does nothing once the socket it was started
  // on is gone or the run is over.
  template <typename Self, typename... Parameters>
  auto for_this_socket(void (Self::*handler)(Parameters...)) {
    return [this, self = static_cast<Self*>(this), generation = generation_,
            handler](auto&&... arguments) {
      if (generation == generation_ && !context_.stopping()) {
        (self->*handler)(std::forward<decltype(arguments)>(arguments)...);
      }
    };
  }

  void connect();
  // Counts the error, then reconnects: at once when the connection had made progress since
  // its connect (see made_progress()), after the back-off otherwise.
  void fail(ErrorKind kind, std::string_view message);
  void fail(const asio::error_code& error, const char* during);
  // Drops the socket and connects again, at once or after the back-off.
  void reconnect(bool at_once);
  // The connection did what it is for (a reply came): its next failure reconnects at once.
  void made_progress();
  void drop_socket();

  // Changes whenever the socket is dropped: a caller compares it to see whether a call it
  // made replaced the connection.
  [[nodiscard]] std::uint32_t generation() const { return generation_; }
  [[nodiscard]] Clock::time_point connect_started() const { return connect_started_; }
  [[nodiscard]] Clock::time_point connected_at() const { return connected_at_; }

  WorkerContext& context_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;  // the subclass's send times, and the reconnect back-off

 private:
  enum class State { idle, connecting, open, stopped };

  void on_connected(const asio::error_code& error);
  void on_backoff_over(const asio::error_code& error);

  State state_ = State::idle;
  std::uint32_t generation_ = 0;  // bumped with each socket; stale handlers compare it
  bool counted_open_ = false;
  bool progressed_since_connect_ = false;
  Clock::time_point connect_started_;
  Clock::time_point connected_at_;
  std::chrono::nanoseconds backoff_{0};
};

}  // namespace echolab::load
