#include "common/drivers/blocking_connection.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <memory>
#include <new>
#include <optional>
#include <utility>

#include "common/drivers/lingering.hpp"
#include "common/drivers/perform_fault.hpp"
#include "common/posix/memory_scan.hpp"
#include "common/posix/unique_fd.hpp"
#include "common/protocol/session.hpp"

namespace echolab {
namespace {

using Clock = std::chrono::steady_clock;

// On the heap, not the stack: a thread started with a 64 KiB stack must still fit.
constexpr std::size_t kReadBufferBytes = std::size_t{16} * 1024;

enum class Wait { ready, timed_out, stop };

timespec until(Clock::time_point deadline) {
  const auto left = std::max(Clock::duration::zero(), deadline - Clock::now());
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(left);
  return {static_cast<time_t>(seconds.count()),
          static_cast<long>(std::chrono::nanoseconds(left - seconds).count())};
}

bool bytes_waiting(int socket_fd) {
  pollfd fd{socket_fd, POLLIN, 0};
  return poll(&fd, 1, 0) > 0;
}

// Drops what the client still sends after an error answer (or bytes left unread behind an
// answer to close), for at most `linger`, so that closing with unread bytes does not reset the
// connection before the client has read the answer (nginx's lingering close). Half-closed
// first: the client sees the end of the answer.
void linger_close(int socket_fd, std::chrono::milliseconds linger, char* buffer) {
  shutdown(socket_fd, SHUT_WR);
  const Clock::time_point deadline = Clock::now() + linger;
  // Checked before each wait: past the deadline ppoll() still reports bytes a client keeps
  // sending, and the loop would never end.
  while (Clock::now() < deadline) {
    pollfd fd{socket_fd, POLLIN, 0};
    const timespec timeout = until(deadline);
    const int ready = ppoll(&fd, 1, &timeout, nullptr);
    if (ready < 0 && errno == EINTR) {
      continue;
    }
    if (ready <= 0 || recv(socket_fd, buffer, kReadBufferBytes, 0) <= 0) {
      return;
    }
  }
}

class BlockingConnection {
 public:
  BlockingConnection(int socket_fd, const BlockingConnectionSettings& settings,
                     ServerObserver& observer)
      : socket_fd_(socket_fd),
        settings_(settings),
        observer_(observer),
        session_(settings.protocol, scan_own_memory),
        deadline_(settings.timeouts, Clock::now()),
        buffer_(std::make_unique<char[]>(kReadBufferBytes)) {}

  ConnectionEnd serve();

 private:
  [[nodiscard]] bool stop_signalled() const {
    return settings_.stop_requested != nullptr && *settings_.stop_requested != 0;
  }
  Wait wait_for_client();
  ConnectionEnd time_out();
  std::optional<ConnectionEnd> answer(const FeedResult& result, Clock::time_point started);
  enum class Sent { all, timed_out, failed };
  Sent send_output();

  int socket_fd_;
  const BlockingConnectionSettings& settings_;
  ServerObserver& observer_;
  Session session_;
  ClientDeadline deadline_;
  std::unique_ptr<char[]> buffer_;
};

// Waits for the client until its deadline, or for a stop request while no request is in
// flight. A stop does not drop what the kernel has already received: bytes waiting on the
// socket are a request to answer before the connection closes.
Wait BlockingConnection::wait_for_client() {
  const bool idle = session_.idle();
  pollfd fds[2] = {{socket_fd_, POLLIN, 0}, {settings_.stop_fd, POLLIN, 0}};
  const nfds_t count = idle && settings_.stop_fd >= 0 ? 2 : 1;
  for (;;) {
    if (idle && stop_signalled()) {
      return bytes_waiting(socket_fd_) ? Wait::ready : Wait::stop;
    }
    const timespec timeout = until(deadline_.next().at);
    const int ready = ppoll(fds, count, &timeout, settings_.wait_mask);
    if (ready < 0 && errno == EINTR) {
      continue;  // a signal: a stop request is seen above
    }
    if (ready == 0) {
      return Wait::timed_out;
    }
    if (fds[0].revents != 0) {
      return Wait::ready;
    }
    if (count == 2 && fds[1].revents != 0) {
      return Wait::stop;
    }
  }
}

// Sends the whole output, waiting for the client to take it no longer than the send
// deadline allows. MSG_DONTWAIT: a send that blocked could outlast every deadline. A client
// that is gone (EPIPE, ECONNRESET) is a failure, not a slow reader.
BlockingConnection::Sent BlockingConnection::send_output() {
  std::string_view bytes = session_.output();
  if (bytes.empty()) {
    return Sent::all;
  }
  std::size_t total = 0;
  Sent outcome = Sent::all;
  bool waited = false;
  while (!bytes.empty()) {
    const ssize_t sent = send(socket_fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent >= 0) {
      bytes.remove_prefix(static_cast<std::size_t>(sent));
      total += static_cast<std::size_t>(sent);
      if (waited) {
        deadline_.sent(static_cast<std::size_t>(sent));
      }
      continue;
    }
    if (errno == EINTR) {
      continue;
    }
    if (!std::exchange(waited, true)) {
      deadline_.sending(Clock::now());
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      outcome = Sent::failed;
      break;
    }
    pollfd fd{socket_fd_, POLLOUT, 0};
    const timespec timeout = until(deadline_.next().at);
    if (ppoll(&fd, 1, &timeout, settings_.wait_mask) == 0) {
      outcome = Sent::timed_out;
      break;
    }
  }
  observer_.bytes_sent(total);
  session_.output_sent(total);
  if (outcome == Sent::all) {
    deadline_.send_done(Clock::now());
  }
  return outcome;
}

// The client was too slow: a request it had begun is answered 408 (one attempt, no waiting
// on a client that is already late), then the connection closes.
ConnectionEnd BlockingConnection::time_out() {
  const TimeoutKind kind = deadline_.next().kind;
  observer_.connection_timed_out(kind);
  if (kind == TimeoutKind::send) {
    return ConnectionEnd::timed_out;
  }
  const FeedResult result = session_.time_out();
  const std::string& output = session_.output();
  if (!output.empty()) {
    const ssize_t sent =
        send(socket_fd_, output.data(), output.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    observer_.bytes_sent(sent > 0 ? static_cast<std::size_t>(sent) : 0);
    report_feed(observer_, session_.protocol(), result, kUntimed);
    linger_close(socket_fd_, settings_.timeouts.linger, buffer_.get());
  }
  return ConnectionEnd::timed_out;
}

// Carries out the faults, sends the answers and reports them; returns how the connection
// ends, or nothing while it goes on.
std::optional<ConnectionEnd> BlockingConnection::answer(const FeedResult& result,
                                                        Clock::time_point started) {
  for (const FaultAction& fault : result.faults) {
    perform(fault);
  }
  // The server's handling time, until the answers are ready: how fast the client reads them
  // is the send deadline's business, not the duration histogram's.
  const double handled_s = std::chrono::duration<double>(Clock::now() - started).count();
  switch (send_output()) {
    case Sent::all:
      break;
    case Sent::timed_out:
      observer_.connection_timed_out(TimeoutKind::send);
      return ConnectionEnd::timed_out;
    case Sent::failed:
      return ConnectionEnd::io_error;
  }
  report_feed(observer_, session_.protocol(), result, handled_s);
  if (!session_.close_after_flush()) {
    return std::nullopt;
  }
  const bool asked_to_close = result.error_statuses.empty();
  if (!asked_to_close || close_could_reset_answer(socket_fd_)) {
    linger_close(socket_fd_, settings_.timeouts.linger, buffer_.get());
  }
  return asked_to_close ? ConnectionEnd::client_closed : ConnectionEnd::protocol_error;
}

ConnectionEnd BlockingConnection::serve() {
  for (;;) {
    switch (wait_for_client()) {
      case Wait::stop:
        return ConnectionEnd::shutdown;
      case Wait::timed_out:
        return time_out();
      case Wait::ready:
        break;
    }
    const ssize_t received = recv(socket_fd_, buffer_.get(), kReadBufferBytes, 0);
    if (received == 0) {
      return ConnectionEnd::client_closed;
    }
    if (received < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        continue;
      }
      return ConnectionEnd::io_error;
    }
    const auto bytes = static_cast<std::size_t>(received);
    observer_.bytes_received(bytes);
    const Clock::time_point started = Clock::now();
    if (deadline_.lifetime_over(started)) {
      session_.end_keep_alive();
    }
    const FeedResult result = session_.feed(std::span<const char>(buffer_.get(), bytes));
    deadline_.received(bytes, session_.phase(), result.requests > 0, started);
    if (const auto end = answer(result, started)) {
      return *end;
    }
  }
}

}  // namespace

ConnectionEnd serve_blocking_connection(UniqueFd socket, const BlockingConnectionSettings& settings,
                                        ServerObserver& observer) {
  return serve_blocking_connection(socket.get(), settings, observer);
}

ConnectionEnd serve_blocking_connection(int socket_fd, const BlockingConnectionSettings& settings,
                                        ServerObserver& observer) {
  // An echo answers each read with one write; with Nagle on, a short write behind a long one
  // would wait for the client's delayed ACK (40 ms). Fails harmlessly on non-TCP sockets.
  const int one = 1;
  setsockopt(socket_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // Out of memory costs this connection only (the Session answers 503 where it can); the
  // worker, thread or process, goes on.
  try {
    BlockingConnection connection(socket_fd, settings, observer);
    return connection.serve();
  } catch (const std::bad_alloc&) {
    return ConnectionEnd::io_error;
  }
}

BlockingConnectionSettings settings_for_queued(BlockingConnectionSettings settings) {
  settings.stop_fd = -1;
  settings.wait_mask = nullptr;
  settings.stop_requested = nullptr;
  settings.timeouts.idle = std::min(settings.timeouts.idle, kQueuedIdle);
  return settings;
}

}  // namespace echolab
