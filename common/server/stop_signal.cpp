#include "common/server/stop_signal.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <system_error>

namespace echolab {

StopSignal::StopSignal() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::generic_category(), "pipe2 for the stop signal");
  }
  read_fd_ = fds[0];
  write_fd_ = fds[1];
}

StopSignal::~StopSignal() {
  broadcast();
  close(read_fd_);
}

void StopSignal::broadcast() {
  if (write_fd_ >= 0) {
    close(write_fd_);
    write_fd_ = -1;
  }
}

void StopSignal::close_write_end_in_child() { broadcast(); }

bool StopSignal::stopped() const {
  pollfd entry{read_fd_, POLLIN, 0};
  return poll(&entry, 1, 0) > 0;
}

}  // namespace echolab
