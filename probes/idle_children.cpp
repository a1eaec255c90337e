#include "probes/idle_children.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>

#include "probes/anonymous_pages.hpp"
#include "probes/probe_error.hpp"

namespace echolab::probe {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::seconds kReadyTimeout{30};

// Reads one byte per child from `fd` until `count` have arrived; a child that dies first
// leaves the pipe at end of file or the wait at its deadline, and both are errors.
void wait_for_ready_bytes(int fd, int count) {
  const auto deadline = Clock::now() + kReadyTimeout;
  int received = 0;
  char buffer[256];
  while (received < count) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd readable{fd, POLLIN, 0};
    const int ready = left.count() > 0 ? ::poll(&readable, 1, static_cast<int>(left.count())) : 0;
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) throw_system_error("poll");
    if (ready == 0) {
      throw ProbeError("only " + std::to_string(received) + " of " + std::to_string(count) +
                       " children were ready within " + std::to_string(kReadyTimeout.count()) +
                       " s");
    }
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) throw ProbeError("a child exited before it was ready");
    received += static_cast<int>(got);
  }
}

}  // namespace

IdleChildren::IdleChildren(int count, std::size_t touch_bytes,
                           const std::function<void()>& before_ready) {
  Pipe ready;
  children_.reserve(static_cast<std::size_t>(count));
  for (int index = 0; index < count; ++index) {
    children_.push_back(fork_child([&] {
      release_.close_write();
      ready.close_read();
      AnonymousPages own(touch_bytes / AnonymousPages::page_size());
      own.write_every_page();
      if (before_ready) before_ready();
      if (!write_byte(ready.write_fd(), 'r')) return 1;
      char byte = 0;
      (void)read_byte(release_.read_fd(), byte);  // returns at end of file
      return 0;
    }));
  }
  // The children hold the write end now: once they all exit, the read end sees end of file.
  ready.close_write();
  wait_for_ready_bytes(ready.read_fd(), count);
}

void IdleChildren::release_and_reap() {
  release_.close_write();
  for (ChildProcess& child : children_) child.wait_for_exit();
  children_.clear();
}

}  // namespace echolab::probe
