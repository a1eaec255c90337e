#include "common/blocking_connection.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <memory>

#include "common/duration.hpp"
#include "common/fault.hpp"
#include "common/session.hpp"

namespace echolab {
namespace {

// On the heap, not the stack: a thread started with a 64 KiB stack must still fit.
constexpr std::size_t kReadBufferBytes = std::size_t{16} * 1024;

enum class Wait { readable, timed_out, stop };

bool stop_signalled(const BlockingConnectionSettings& settings) {
  return settings.stop_requested != nullptr && *settings.stop_requested != 0;
}

// Waits for the client, for a stop request (only while no request is in flight), or for
// the idle timeout.
Wait wait_for_client(int socket_fd, const BlockingConnectionSettings& settings, bool idle) {
  pollfd fds[2] = {{socket_fd, POLLIN, 0}, {settings.stop_fd, POLLIN, 0}};
  const nfds_t count = idle && settings.stop_fd >= 0 ? 2 : 1;
  const timespec timeout = to_timespec(settings.idle_timeout);
  for (;;) {
    if (idle && stop_signalled(settings)) {
      return Wait::stop;
    }
    const int ready = ppoll(fds, count, &timeout, settings.wait_mask);
    if (ready < 0 && errno == EINTR) {
      continue;  // a signal: a stop request is seen above
    }
    if (ready == 0) {
      return Wait::timed_out;
    }
    if (count == 2 && fds[1].revents != 0) {
      return Wait::stop;
    }
    return Wait::readable;
  }
}

bool send_all(int socket_fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t sent = send(socket_fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(sent));
  }
  return true;
}

void report(ServerObserver& observer, const Session& session, const FeedResult& result,
            std::chrono::steady_clock::duration handling) {
  if (result.requests > 0) {
    observer.requests_served(session.protocol(), result.requests,
                             std::chrono::duration<double>(handling).count());
  }
  for (const int status : result.error_statuses) {
    observer.request_error(status);
  }
}

}  // namespace

ConnectionEnd serve_blocking_connection(int socket_fd, const BlockingConnectionSettings& settings,
                                        ServerObserver& observer) {
  const std::unique_ptr<int, void (*)(int*)> closer(&socket_fd, [](int* fd) { close(*fd); });
  // An echo answers each read with one write; with Nagle on, a short write behind a long one
  // would wait for the client's delayed ACK (40 ms). Fails harmlessly on non-TCP sockets.
  const int one = 1;
  setsockopt(socket_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  Session session(settings.protocol);
  const auto buffer = std::make_unique<char[]>(kReadBufferBytes);
  for (;;) {
    switch (wait_for_client(socket_fd, settings, session.idle())) {
      case Wait::stop:
        return ConnectionEnd::shutdown;
      case Wait::timed_out:
        return ConnectionEnd::idle_timeout;
      case Wait::readable:
        break;
    }
    const ssize_t received = recv(socket_fd, buffer.get(), kReadBufferBytes, 0);
    if (received == 0) {
      return ConnectionEnd::client_closed;
    }
    if (received < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        continue;
      }
      return ConnectionEnd::io_error;
    }
    observer.bytes_received(static_cast<std::size_t>(received));
    const auto started = std::chrono::steady_clock::now();
    const FeedResult result =
        session.feed(std::span<const char>(buffer.get(), static_cast<std::size_t>(received)));
    for (const FaultAction& fault : result.faults) {
      perform(fault);
    }
    const std::string& output = session.output();
    if (!send_all(socket_fd, output)) {
      return ConnectionEnd::io_error;
    }
    observer.bytes_sent(output.size());
    session.output_sent(output.size());
    report(observer, session, result, std::chrono::steady_clock::now() - started);
    if (session.close_after_flush()) {
      return result.error_statuses.empty() ? ConnectionEnd::client_closed
                                           : ConnectionEnd::protocol_error;
    }
  }
}

}  // namespace echolab
