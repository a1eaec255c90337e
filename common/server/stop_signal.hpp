// A broadcast "stop" that blocking workers can poll() on beside their socket.
// Closing the write end of a pipe makes the read end readable (EOF) for every poller at
// once and for good, in every thread that holds it.
#pragma once

#include "common/posix/unique_fd.hpp"

namespace echolab {

class StopSignal {
 public:
  StopSignal();

  [[nodiscard]] int fd() const { return read_end_.get(); }
  void broadcast();  // idempotent; async-signal-safe

 private:
  UniqueFd read_end_;
  UniqueFd write_end_;
};

}  // namespace echolab
