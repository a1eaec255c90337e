#include "common/drivers/async_accept_loop.hpp"

#include <sys/socket.h>

#include <new>
#include <utility>

#include "common/drivers/drained_read.hpp"
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
      strand_(asio::make_strand(io)),
      acceptor_(io, protocol_of(listen_fd), listen_fd),
      retry_(io),
      host_(host),
      open_connections_(std::move(open_connections)),
      serve_(std::move(serve)),
      policy_(max_connections) {
  enable_queue_reports(listen_fd);  // for every connection it accepts: a client's FIN is seen
}

void AsyncAcceptLoop::start() {
  asio::dispatch(strand_, [this] { accept(); });
}

void AsyncAcceptLoop::accept() {
  waiting_ = true;
  // The handler is bound to the strand. (An executor passed as async_accept's first argument
  // is the accepted socket's, not the handler's: the handler then ran on any thread, racing
  // with stop(), and every connection's own handlers went through this one strand.)
  acceptor_.async_accept(asio::bind_executor(
      strand_, [this](const asio::error_code& error, asio::ip::tcp::socket socket) {
        waiting_ = false;
        on_accept(error, std::move(socket));
        end_if_stopped();
      }));
}

void AsyncAcceptLoop::stop(const std::vector<std::shared_ptr<AsyncConnection>>& open,
                           std::function<void()> ended) {
  ended_ = std::move(ended);
  asio::error_code ignored;
  acceptor_.non_blocking(true, ignored);
  const auto protocol = acceptor_.local_endpoint(ignored).protocol();
  take_queued_connections(acceptor_.native_handle(), [&](UniqueFd client) {
    serve_or_drop(asio::ip::tcp::socket(io_, protocol, client.release()));  // it owns it now
  });
  acceptor_.close(ignored);
  retry_.cancel();
  for (const auto& connection : open) {
    connection->close_if_idle();
  }
  end_if_stopped();
}

void AsyncAcceptLoop::end_if_stopped() {
  if (ended_ && !waiting_) {
    std::exchange(ended_, nullptr)();
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
      accept();
    } else {
      pause_then_accept();
    }
    return;
  }
  if (ended_) {
    // Accepted by the kernel before the listener closed, after the queue was taken: as
    // take_queued_connections() does, served if its request came, else closed (a clean FIN).
    asio::error_code unknown;
    if (socket.available(unknown) > 0) {
      serve_or_drop(std::move(socket));
    }
    return;
  }
  if (host_.stopping() || policy_.admit(open_connections_())) {
    serve_or_drop(std::move(socket));
  } else {
    asio::error_code ignored;
    socket.close(ignored);
    host_.metrics().connection_rejected();
  }
  accept();
}

// The connection's objects cannot be had: it is closed (the socket ends with the argument
// `serve_` took it in), and the loop goes on. An exception that left this handler would leave
// io_context::run() and end the whole server.
void AsyncAcceptLoop::serve_or_drop(asio::ip::tcp::socket socket) {
  try {
    serve_(std::move(socket));
  } catch (const std::bad_alloc&) {
    host_.metrics().connection_rejected();
  }
}

// Out of descriptors or memory: a pause, rather than a spin on a full table.
void AsyncAcceptLoop::pause_then_accept() {
  waiting_ = true;
  retry_.expires_after(kAcceptPause);
  retry_.async_wait(asio::bind_executor(strand_, [this](const asio::error_code& cancelled) {
    waiting_ = false;
    if (!cancelled && !ended_) {
      accept();
    }
    end_if_stopped();
  }));
}

}  // namespace echolab
