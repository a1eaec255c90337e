// A pipe, closed when it goes out of scope. The probes use one-byte messages over pipes as
// the handshake between a parent and the child or thread it started, so that processes and
// threads are timed with the same mechanism.
#pragma once

#include <chrono>

#include "common/posix/unique_fd.hpp"

namespace echolab::probe {

class Pipe {
 public:
  Pipe();

  int read_fd() const { return read_.get(); }
  int write_fd() const { return write_.get(); }
  void close_read() noexcept { read_.reset(); }
  void close_write() noexcept { write_.reset(); }

 private:
  UniqueFd read_;
  UniqueFd write_;
};

// Both retry on EINTR and report failure (or end of file) by returning false. They only make
// system calls, so a forked child may use them.
bool write_byte(int fd, char byte) noexcept;
bool read_byte(int fd, char& byte) noexcept;

// Waits at most `timeout` for one byte; false on timeout, end of file or error. A parent
// waiting for a child uses it so that a child that died cannot hang the probe.
bool read_byte_within(int fd, char& byte, std::chrono::milliseconds timeout) noexcept;

}  // namespace echolab::probe
