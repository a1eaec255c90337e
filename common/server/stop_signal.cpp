#include "common/server/stop_signal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <system_error>

namespace echolab {

StopSignal::StopSignal() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::generic_category(), "pipe2 for the stop signal");
  }
  read_end_.reset(fds[0]);
  write_end_.reset(fds[1]);
}

void StopSignal::broadcast() { write_end_.reset(); }

}  // namespace echolab
