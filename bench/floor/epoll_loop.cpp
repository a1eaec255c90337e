#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <system_error>
#include <vector>

#include "bench/floor/answers.hpp"
#include "bench/floor/event_loops.hpp"
#include "common/posix/unique_fd.hpp"

namespace echolab::floor {
namespace {

struct Connection {
  UniqueFd socket;
  RequestEndCounter request_ends;
  AnswerQueue answers;
  bool waiting_to_send = false;  // registered for EPOLLOUT instead of EPOLLIN
};

class EpollLoop {
 public:
  explicit EpollLoop(int listener) : listener_(listener), epoll_(epoll_create1(EPOLL_CLOEXEC)) {
    if (!epoll_) {
      throw std::system_error(errno, std::generic_category(), "epoll_create1");
    }
    watch(listener_, EPOLLIN, EPOLL_CTL_ADD);
  }

  [[noreturn]] void run() {
    std::array<epoll_event, 256> events{};
    for (;;) {
      const int ready = epoll_wait(epoll_.get(), events.data(), events.size(), -1);
      for (int i = 0; i < ready; ++i) {
        const int fd = events[i].data.fd;
        if (fd == listener_) {
          accept_all();
        } else {
          serve(fd);
        }
      }
    }
  }

 private:
  void watch(int fd, std::uint32_t events, int operation) {
    epoll_event event{};
    event.events = events;
    event.data.fd = fd;
    epoll_ctl(epoll_.get(), operation, fd, &event);
  }

  // Until the backlog is empty. A failure other than "no more" (EMFILE, ENOBUFS) leaves the
  // connection queued for the next wake-up: the floor is not defended against running out.
  void accept_all() {
    for (;;) {
      const int fd = accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        return;
      }
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (static_cast<std::size_t>(fd) >= connections_.size()) {
        connections_.resize(static_cast<std::size_t>(fd) + 1);
      }
      connections_[static_cast<std::size_t>(fd)] = Connection{UniqueFd(fd), {}, {}, false};
      watch(fd, EPOLLIN, EPOLL_CTL_ADD);
    }
  }

  void serve(int fd) {
    Connection& connection = connections_[static_cast<std::size_t>(fd)];
    if (connection.waiting_to_send || receive(connection)) {
      send_answers(connection);
    }
  }

  // False when the connection was closed.
  bool receive(Connection& connection) {
    const ssize_t got = recv(connection.socket.get(), buffer_.data(), buffer_.size(), 0);
    if (got > 0) {
      connection.answers.add(
          connection.request_ends.feed({buffer_.data(), static_cast<std::size_t>(got)}));
      return true;
    }
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
      return true;
    }
    close(connection);
    return false;
  }

  // Sends what the socket takes; the rest waits for EPOLLOUT, and reading waits with it, so
  // a client that sends and never reads holds one integer of answers, never a growing buffer.
  void send_answers(Connection& connection) {
    while (!connection.answers.empty()) {
      const auto bytes = connection.answers.next(repeated_answers());
      const ssize_t sent = send(connection.socket.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (sent < 0) {
        if (errno == EAGAIN || errno == EINTR) {
          set_waiting_to_send(connection, true);
        } else {
          close(connection);
        }
        return;
      }
      connection.answers.sent(static_cast<std::size_t>(sent));
    }
    set_waiting_to_send(connection, false);
  }

  void set_waiting_to_send(Connection& connection, bool waiting) {
    if (connection.waiting_to_send != waiting) {
      connection.waiting_to_send = waiting;
      watch(connection.socket.get(), waiting ? EPOLLOUT : EPOLLIN, EPOLL_CTL_MOD);
    }
  }

  // Closing the descriptor also takes it out of the epoll set (this process is its only holder).
  static void close(Connection& connection) { connection = Connection{}; }

  int listener_;
  UniqueFd epoll_;
  std::vector<Connection> connections_;  // indexed by descriptor
  // One for every connection: a read is consumed (its request ends counted) before the next.
  std::array<char, 16384> buffer_{};
};

}  // namespace

void run_epoll_loop(int listener) { EpollLoop(listener).run(); }

}  // namespace echolab::floor
