// The accept loop of a server on an Asio io_context (the pool, each hybrid worker), around its
// listening socket: a failed accept() is tried again at once or after kAcceptPause, as
// AcceptPolicy says (after a pause whatever the failure: an event loop has no other way to
// serve); a connection over --max-connections is closed and counted as rejected; one accepted
// just as the shutdown began is served like the rest of the queue, not reset; and running out
// of memory while taking a connection on costs that connection only.
//
// Its handlers and stop() run on a strand: in the pool's shared io_context any thread may run
// an accept's completion while another stops the loop, and the acceptor is not thread-safe.
#pragma once

#include <asio.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "common/drivers/async_connection.hpp"
#include "common/server/accept_policy.hpp"

namespace echolab {

class AsyncAcceptLoop {
 public:
  // `host` tells whether the shutdown began and counts the rejections; `open_connections`
  // counts what `max_connections` (0: no cap) holds against: the server's connections, or
  // every worker's; `serve` takes each connection admitted. They outlive the loop.
  AsyncAcceptLoop(asio::io_context& io, int listen_fd, std::size_t max_connections,
                  AsyncConnectionHost& host, std::function<std::size_t()> open_connections,
                  std::function<void(asio::ip::tcp::socket)> serve);

  using Strand = asio::strand<asio::io_context::executor_type>;

  void start();

  // Where stop() must run, and the server's shutdown with it (so that every connection
  // admitted before it is among `open`).
  [[nodiscard]] const Strand& strand() const { return strand_; }

  // The middle of the graceful shutdown, once host.stopping() is true: the connections still
  // queued go to `serve` first, each with a request waiting that it answers before it closes
  // (taken before the idle ones close, or the last of those to close would stop the server
  // first); then the listener closes, no accept is tried again, and every connection of `open`
  // that is idle closes. Requests in flight finish. `ended` runs on the strand once no accept
  // is left to complete: an accept the kernel finished just before the listener closed still
  // reaches `serve`, and the server must not stop its event loop before that.
  void stop(const std::vector<std::shared_ptr<AsyncConnection>>& open, std::function<void()> ended);

 private:
  void accept();
  void on_accept(const asio::error_code& error, asio::ip::tcp::socket socket);
  void pause_then_accept();
  void serve_or_drop(asio::ip::tcp::socket socket);
  void end_if_stopped();

  asio::io_context& io_;
  Strand strand_;
  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer retry_;
  bool waiting_ = false;         // an accept or a pause is in progress; on the strand
  std::function<void()> ended_;  // set by stop(), run once nothing is waiting
  AsyncConnectionHost& host_;
  std::function<std::size_t()> open_connections_;
  std::function<void(asio::ip::tcp::socket)> serve_;
  AcceptPolicy policy_;  // on the strand
};

}  // namespace echolab
