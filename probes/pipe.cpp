#include "probes/pipe.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>

#include "probes/probe_error.hpp"

namespace echolab::probe {
namespace {

void close_fd(int& fd) noexcept {
  if (fd < 0) return;
  // Linux releases the descriptor even when close() reports EINTR, so it is never retried.
  (void)::close(fd);
  fd = -1;
}

}  // namespace

Pipe::Pipe() {
  if (::pipe2(fds_, O_CLOEXEC) != 0) throw_system_error("pipe2");
}

Pipe::~Pipe() {
  close_read();
  close_write();
}

void Pipe::close_read() noexcept { close_fd(fds_[0]); }

void Pipe::close_write() noexcept { close_fd(fds_[1]); }

bool write_byte(int fd, char byte) noexcept {
  for (;;) {
    const ssize_t written = ::write(fd, &byte, 1);
    if (written == 1) return true;
    if (written < 0 && errno == EINTR) continue;
    return false;
  }
}

bool read_byte(int fd, char& byte) noexcept {
  for (;;) {
    const ssize_t got = ::read(fd, &byte, 1);
    if (got == 1) return true;
    if (got < 0 && errno == EINTR) continue;
    return false;
  }
}

bool read_byte_within(int fd, char& byte, std::chrono::milliseconds timeout) noexcept {
  pollfd readable{fd, POLLIN, 0};
  for (;;) {
    const int ready = ::poll(&readable, 1, static_cast<int>(timeout.count()));
    if (ready > 0) return read_byte(fd, byte);
    if (ready < 0 && errno == EINTR) continue;
    return false;
  }
}

}  // namespace echolab::probe
