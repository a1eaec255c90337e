// A read buffer that lets Asio's reactor skip the receive it would make in vain, so that an
// AsyncConnection makes two system calls per request, as nginx does, instead of three.
//
// Asio reads speculatively: async_read_some first tries recv() and waits for epoll only if
// that finds nothing. A request/response client sends nothing until it has its answer, so the
// recv() that follows each answer always finds nothing: one wasted system call per request.
// The reactor knows how to skip it: an operation that reports "done_and_exhausted" turns the
// speculative attempt off until epoll next reports the socket ready (the flag is set again by
// every event, under the descriptor's lock). Asio reports that for a short send but, for a
// receive, only at end of stream.
//
// Whether a receive left anything behind is for the kernel to say, not to guess: a short
// read has taken all the data, but not always the FIN queued behind it, and a FIN that came
// with the data raises no edge of its own (Asio registers every socket with EPOLLET), so a
// client's half-close would go unseen until the idle timeout. With TCP_INQ on the socket
// (enable_queue_reports(), on the listener: accepted sockets inherit it), recvmsg() reports
// the bytes still queued, and 1 when a FIN is (the kernel's own convention); the receive is
// reported exhausting only when that is 0. Without the report the receive is plain Asio's.
//
// It reaches into asio::detail, whose layout can change between releases, so it is compiled
// for the release it was written and tested against (Debian 12's 1.22.1); any other release
// gets the plain buffer and Asio's own behaviour.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <array>
#include <asio.hpp>
#include <cerrno>
#include <cstddef>
#include <cstring>

namespace echolab {

// Asks the kernel to report, with each recvmsg() on `socket_fd` or on the sockets it accepts,
// how many bytes are still queued. Fails harmlessly on a kernel before 4.18: reads are then
// Asio's own.
inline void enable_queue_reports(int socket_fd) {
  const int one = 1;
  setsockopt(socket_fd, IPPROTO_TCP, TCP_INQ, &one, sizeof one);
}

#if ASIO_VERSION == 102201

// A MutableBufferSequence of one buffer, a type of its own so that the specialization below
// applies to AsyncConnection's reads and nothing else.
class DrainedReadBuffer {
 public:
  using value_type = asio::mutable_buffer;
  using const_iterator = const asio::mutable_buffer*;

  DrainedReadBuffer(void* data, std::size_t size) : buffer_(data, size) {}
  [[nodiscard]] const_iterator begin() const { return &buffer_; }
  [[nodiscard]] const_iterator end() const { return &buffer_ + 1; }
  [[nodiscard]] const asio::mutable_buffer& buffer() const { return buffer_; }

 private:
  asio::mutable_buffer buffer_;
};

#else

using DrainedReadBuffer = asio::mutable_buffer;

#endif

}  // namespace echolab

#if ASIO_VERSION == 102201

namespace echolab::detail {

enum class Receive { would_block, done, done_and_drained };

// One non-blocking recvmsg() with Asio's conventions (EINTR retried, end of stream as eof);
// drained when the kernel reports nothing left queued, neither data nor a FIN.
inline Receive receive_reporting_queue(int socket_fd, const asio::mutable_buffer& buffer, int flags,
                                       asio::error_code& error, std::size_t& bytes) {
  iovec piece{buffer.data(), buffer.size()};
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int))> control{};
  for (;;) {
    msghdr message{};
    message.msg_iov = &piece;
    message.msg_iovlen = 1;
    message.msg_control = control.data();
    message.msg_controllen = control.size();
    const ssize_t received = recvmsg(socket_fd, &message, flags);
    if (received < 0 && errno == EINTR) {
      continue;
    }
    if (received < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return Receive::would_block;
    }
    if (received <= 0) {
      error = received == 0 ? asio::error::eof
                            : asio::error_code(errno, asio::error::get_system_category());
      bytes = 0;
      return Receive::done_and_drained;  // as Asio's own receive says of the end of a stream
    }
    error = {};
    bytes = static_cast<std::size_t>(received);
    for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr;
         header = CMSG_NXTHDR(&message, header)) {
      if (header->cmsg_level == SOL_TCP && header->cmsg_type == TCP_CM_INQ) {
        int queued = 0;
        std::memcpy(&queued, CMSG_DATA(header), sizeof queued);
        return queued == 0 ? Receive::done_and_drained : Receive::done;
      }
    }
    return Receive::done;  // no report: nothing is known of what is left
  }
}

}  // namespace echolab::detail

// The receive of reactive_socket_recv_op_base::do_perform, exhausting when the kernel says the
// socket is drained. An explicit specialization is a member: it reads the operation's private
// fields as the original does.
template <>
inline asio::detail::reactor_op::status
asio::detail::reactive_socket_recv_op_base<echolab::DrainedReadBuffer>::do_perform(
    reactor_op* base) {
  auto* operation = static_cast<reactive_socket_recv_op_base*>(base);
  switch (echolab::detail::receive_reporting_queue(operation->socket_, operation->buffers_.buffer(),
                                                   operation->flags_, operation->ec_,
                                                   operation->bytes_transferred_)) {
    case echolab::detail::Receive::would_block:
      return not_done;
    case echolab::detail::Receive::done:
      return done;
    case echolab::detail::Receive::done_and_drained:
      return (operation->state_ & socket_ops::stream_oriented) != 0 ? done_and_exhausted : done;
  }
  return done;
}

#endif
