#include "common/drivers/async_accept_loop.hpp"

#include <sys/socket.h>

#include <utility>

#include "common/posix/unique_fd.hpp"
#include "common/server/shutdown_signals.hpp"

namespace echolab {
namespace {

// Asio adopts a listening socket only with its protocol given.
asio::ip::tcp protocol_of(int listen_fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  getsockname(listen_fd, reinterpret_cast<sockaddr*>(&address), &length);
  return address.ss_family == AF_INET6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4();
}

}  // namespace

AsyncAcceptLoop::AsyncAcceptLoop(asio::io_context& io, int listen_fd, std::size_t max_connections,
                                 AsyncConnectionHost& host,
                                 std::function<std::size_t()> open_connections,
                                 std::function<void(asio::ip::tcp::socket)> serve)
    : io_(io),
      acceptor_(io, protocol_of(listen_fd), listen_fd),
      retry_(io),
      host_(host),
      open_connections_(std::move(open_connections)),
      serve_(std::move(serve)),
      policy_(max_connections) {}

void AsyncAcceptLoop::start() {
  acceptor_.async_accept([this](const asio::error_code& error, asio::ip::tcp::socket socket) {
    on_accept(error, std::move(socket));
  });
}

void AsyncAcceptLoop::stop(const std::vector<std::shared_ptr<AsyncConnection>>& open) {
  asio::error_code ignored;
  acceptor_.non_blocking(true, ignored);
  const auto protocol = acceptor_.local_endpoint(ignored).protocol();
  take_queued_connections(acceptor_.native_handle(), [&](UniqueFd client) {
    serve_(asio::ip::tcp::socket(io_, protocol, client.release()));  // the socket owns it now
  });
  acceptor_.close(ignored);
  retry_.cancel();
  for (const auto& connection : open) {
    connection->close_if_idle();
  }
}

void AsyncAcceptLoop::on_accept(const asio::error_code& error, asio::ip::tcp::socket socket) {
  if (error == asio::error::operation_aborted) {
    return;
  }
  if (error) {
    if (host_.stopping()) {
      return;
    }
    if (policy_.failed(error.value()) == AcceptFailure::retry) {
      start();
    } else {
      pause_then_accept();
    }
    return;
  }
  if (host_.stopping()) {
    serve_(std::move(socket));
    return;
  }
  if (policy_.admit(open_connections_())) {
    serve_(std::move(socket));
  } else {
    asio::error_code ignored;
    socket.close(ignored);
    host_.metrics().connection_rejected();
  }
  start();
}

// Out of descriptors or memory: a pause, rather than a spin on a full table.
void AsyncAcceptLoop::pause_then_accept() {
  retry_.expires_after(kAcceptPause);
  retry_.async_wait([this](const asio::error_code& cancelled) {
    if (!cancelled) {
      start();
    }
  });
}

}  // namespace echolab
