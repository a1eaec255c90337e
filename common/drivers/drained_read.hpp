// A read buffer that tells Asio's reactor what a short read means on a TCP socket, so that an
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
// For TCP on Linux a short receive is just as telling: recv() copies everything queued, up to
// the buffer's size (it even processes the backlog first), so a read that returns less than
// the buffer has drained the socket, and any byte that arrives later raises a new edge (Asio
// registers every socket with EPOLLET). nginx relies on the same rule (ngx_unix_recv marks the
// connection not ready after a short read). The specialization below says so, for reads into
// a DrainedReadBuffer only; the rest of Asio is untouched.
//
// It reaches into asio::detail, whose layout can change between releases, so it is compiled
// for the release it was written and tested against (Debian 12's 1.22.1); any other release
// gets the plain buffer and Asio's own behaviour.
#pragma once

#include <asio.hpp>
#include <cstddef>

namespace echolab {

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

// The receive of reactive_socket_recv_op_base::do_perform, with a short read reported as
// exhausting the socket. An explicit specialization is a member: it reads the operation's
// private fields as the original does.
template <>
inline asio::detail::reactor_op::status
asio::detail::reactive_socket_recv_op_base<echolab::DrainedReadBuffer>::do_perform(
    reactor_op* base) {
  auto* operation = static_cast<reactive_socket_recv_op_base*>(base);
  const asio::mutable_buffer& buffer = operation->buffers_.buffer();
  const bool stream = (operation->state_ & socket_ops::stream_oriented) != 0;
  if (!socket_ops::non_blocking_recv1(operation->socket_, buffer.data(), buffer.size(),
                                      operation->flags_, stream, operation->ec_,
                                      operation->bytes_transferred_)) {
    return not_done;
  }
  const bool drained = stream && operation->bytes_transferred_ < buffer.size();
  return drained ? done_and_exhausted : done;
}

#endif
