#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <system_error>

#include "bench/floor/answers.hpp"
#include "bench/floor/event_loops.hpp"

namespace echolab::floor {
namespace {

struct Connection {
  int socket = -1;
  bool sending = false;  // the operation in flight: a send, else a receive
  RequestEndCounter request_ends;
  AnswerQueue answers;
  // Owned by the kernel while a receive is in flight, hence one per connection (4 KiB: a
  // bounded cost per connection, as the epoll loop's one shared buffer is not).
  std::array<char, 4096> buffer{};
};

// An accept's completion carries this instead of a connection.
constexpr std::uint64_t kAcceptTag = 0;

class IoUringLoop {
 public:
  explicit IoUringLoop(int listener) : listener_(listener) {
    // Completions beyond the queue wait in the kernel's overflow list (IORING_FEAT_NODROP),
    // so 10,000 connections fit a queue of 4,096. One thread submits and reaps, so the
    // completions' task work can wait for this loop's next wait (DEFER_TASKRUN, Linux 6.1)
    // instead of being queued to the task under a lock from the network's softirq: without
    // it, perf showed that lock's slow path (native_queued_spin_lock_slowpath under
    // io_run_task_work) as the floor's largest cost, and io_uring took 1.5x epoll's CPU per
    // request at 100 connections. Older kernels refuse the flags: then cooperative task
    // work (5.19), then none.
    for (const unsigned flags :
         {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, IORING_SETUP_COOP_TASKRUN, 0U}) {
      io_uring_params params{};
      params.flags = flags;
      const int error = io_uring_queue_init_params(4096, &ring_, &params);
      if (error == 0) {
        return;
      }
      if (error != -EINVAL || flags == 0) {
        throw std::system_error(-error, std::generic_category(), "io_uring_queue_init");
      }
    }
  }
  IoUringLoop(const IoUringLoop&) = delete;
  IoUringLoop& operator=(const IoUringLoop&) = delete;
  IoUringLoop(IoUringLoop&&) = delete;
  IoUringLoop& operator=(IoUringLoop&&) = delete;
  ~IoUringLoop() { io_uring_queue_exit(&ring_); }

  [[noreturn]] void run() {
    post_accept();
    for (;;) {
      io_uring_submit_and_wait(&ring_, 1);
      io_uring_cqe* completion = nullptr;
      unsigned head = 0;
      unsigned seen = 0;
      io_uring_for_each_cqe(&ring_, head, completion) {
        complete(completion->user_data, completion->res);
        ++seen;
      }
      io_uring_cq_advance(&ring_, seen);
    }
  }

 private:
  io_uring_sqe* submission() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    while (sqe == nullptr) {  // the submission queue is full: hand it to the kernel
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

  void post_accept() {
    io_uring_sqe* sqe = submission();
    io_uring_prep_accept(sqe, listener_, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, kAcceptTag);
  }

  void post_receive(Connection& connection) {
    connection.sending = false;
    io_uring_sqe* sqe = submission();
    io_uring_prep_recv(sqe, connection.socket, connection.buffer.data(), connection.buffer.size(),
                       0);
    io_uring_sqe_set_data(sqe, &connection);
  }

  void post_send(Connection& connection) {
    connection.sending = true;
    const auto bytes = connection.answers.next(repeated_answers());
    io_uring_sqe* sqe = submission();
    io_uring_prep_send(sqe, connection.socket, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    io_uring_sqe_set_data(sqe, &connection);
  }

  void complete(std::uint64_t tag, int result) {
    if (tag == kAcceptTag) {
      accepted(result);
      return;
    }
    // NOLINTNEXTLINE(performance-no-int-to-ptr): the tag is the connection posted with it
    auto* connection = reinterpret_cast<Connection*>(tag);
    if (result <= 0) {  // closed by the client, or failed: either way it is over
      ::close(connection->socket);
      delete connection;  // NOLINT(cppcoreguidelines-owning-memory): owned by its operation
      return;
    }
    if (connection->sending) {
      connection->answers.sent(static_cast<std::size_t>(result));
    } else {
      connection->answers.add(connection->request_ends.feed(
          {connection->buffer.data(), static_cast<std::size_t>(result)}));
    }
    if (connection->answers.empty()) {
      post_receive(*connection);
    } else {
      post_send(*connection);
    }
  }

  // A failed accept (EMFILE and the like) is posted again: the floor is not defended against
  // running out of descriptors.
  void accepted(int socket) {
    post_accept();
    if (socket < 0) {
      return;
    }
    const int one = 1;
    setsockopt(socket, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // NOLINTNEXTLINE(cppcoreguidelines-owning-memory): owned by its one operation in flight
    auto* connection = new Connection{};
    connection->socket = socket;
    post_receive(*connection);
  }

  int listener_;
  io_uring ring_{};
};

}  // namespace

void run_io_uring_loop(int listener) { IoUringLoop(listener).run(); }

}  // namespace echolab::floor
