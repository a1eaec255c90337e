#include "probes/pipe.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <array>
#include <cerrno>

#include "probes/probe_error.hpp"

namespace echolab::probe {
Pipe::Pipe() {
  std::array<int, 2> ends{};
  if (::pipe2(ends.data(), O_CLOEXEC) != 0) throw_system_error("pipe2");
  read_.reset(ends[0]);
  write_.reset(ends[1]);
}

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
