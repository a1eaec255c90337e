#pragma once

#include <unistd.h>

#include <utility>

namespace echolab {

// Owns one file descriptor and closes it once, when destroyed or reset: every socket, pipe and
// memfd in echolab is held by one of these, so no path (an early return, an exception) leaks
// or double-closes a descriptor. Movable, not copyable; -1 means "owns nothing".
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  ~UniqueFd() { reset(); }

  [[nodiscard]] int get() const { return fd_; }
  [[nodiscard]] bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }

  // Gives the descriptor up without closing it (to a child's exec, or another owner).
  [[nodiscard]] int release() { return std::exchange(fd_, -1); }

  // Closes the descriptor held, if any, and holds `fd` instead. close() is not retried on
  // EINTR: on Linux the descriptor is released even then, and a retry could close another.
  void reset(int fd = -1) {
    if (fd_ >= 0 && fd_ != fd) {
      ::close(fd_);
    }
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace echolab
