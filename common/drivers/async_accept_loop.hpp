// The accept loop of a server on an Asio io_context (the pool, each hybrid worker), around its
// listening socket: a failed accept() is tried again at once or after kAcceptPause, as
// AcceptPolicy says (after a pause whatever the failure: an event loop has no other way to
// serve); a connection over --max-connections is closed and counted as rejected; and one
// accepted just as the shutdown began is served like the rest of the queue, not reset.
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

  void start();

  // The middle of the graceful shutdown, once host.stopping() is true: the connections still
  // queued go to `serve` first, each with a request waiting that it answers before it closes
  // (taken before the idle ones close, or the last of those to close would stop the server
  // first); then the listener closes, no accept is tried again, and every connection of `open`
  // that is idle closes. Requests in flight finish.
  void stop(const std::vector<std::shared_ptr<AsyncConnection>>& open);

 private:
  void on_accept(const asio::error_code& error, asio::ip::tcp::socket socket);
  void pause_then_accept();

  asio::io_context& io_;
  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer retry_;
  AsyncConnectionHost& host_;
  std::function<std::size_t()> open_connections_;
  std::function<void(asio::ip::tcp::socket)> serve_;
  AcceptPolicy policy_;  // touched by the accept handler only
};

}  // namespace echolab
